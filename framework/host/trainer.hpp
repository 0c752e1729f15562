// Training a recipe: the entry point `alignkit train` calls, which runs the loop the recipe's
// method needs (offline_loop.hpp for Loss plugins), and the run folder's checks around it.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "plugin_registry.hpp"
#include "recipe_settings.hpp"
#include "recipe_validator.hpp"
#include "run_checkpoint.hpp"

namespace alignkit {

struct TrainingOutcome {
  std::int64_t steps = 0;         // the step the run reached
  std::int64_t resumed_from = 0;  // the checkpoint's step, when resumed
  int stopped_by_signal = 0;      // SIGINT or SIGTERM: stopped after a checkpoint, before the end
  std::map<std::string, double> last_logged;  // the last metrics line (train and eval)
  std::filesystem::path final_dir;            // <run>/final
};

// A fresh run may not start in a folder holding checkpoints of an unfinished run (it would discard
// them); throws DiagnosticError saying how to resume instead. Those of a finished run are removed
// when the fresh run starts.
void check_fresh_run_folder(const std::filesystem::path& run_dir);

// The checkpoint `alignkit train --resume RUN_DIR` continues from: the newest complete one.
// Throws DiagnosticError for a folder that is not a run folder or has no checkpoint.
std::optional<CheckpointFolder> resumable_checkpoint(const std::filesystem::path& run_dir);

// Runs the recipe's [training] to the end (or until SIGINT/SIGTERM, after a checkpoint), writing
// metrics, the plot, checkpoints and the final outputs into `run_dir`; from `resume_from` when
// given, with the same results as a run never interrupted. Progress goes to stderr. The recipe's
// plugin objects are those instantiate_plugins created.
TrainingOutcome train(const ValidatedRecipe& recipe, const std::filesystem::path& run_dir,
                      const std::optional<CheckpointFolder>& resume_from = std::nullopt);

}  // namespace alignkit
