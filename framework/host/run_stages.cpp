#include "run_stages.hpp"

#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <alignkit/atomic_file.hpp>
#include <alignkit/diagnostic.hpp>

#include "recipe_loader.hpp"
#include "run_checkpoint.hpp"
#include "trainer.hpp"

namespace alignkit {

namespace fs = std::filesystem;

namespace {

// Beside the stage's outputs, so that deleting final/ unfinishes the stage too.
fs::path finished_marker(const fs::path& stage_dir) { return stage_dir / "final" / ".stage-finished"; }

}  // namespace

bool stage_finished(const fs::path& stage_dir, std::int64_t max_steps) {
  const auto latest = latest_checkpoint(stage_dir);
  return latest && latest->step >= max_steps && fs::exists(finished_marker(stage_dir));
}

void mark_stage_finished(const fs::path& stage_dir) {
  write_file_atomically(finished_marker(stage_dir), "");
}

void reset_stage(const fs::path& stage_dir, bool fresh) {
  fs::remove(finished_marker(stage_dir));
  if (fresh && fs::is_directory(stage_dir)) remove_checkpoints(stage_dir);
}

void check_fresh_run_folders(const fs::path& run_dir) {
  check_fresh_run_folder(run_dir);
  // An earlier run of stages names them in its recipe.toml; a folder without one, or with a
  // single recipe, holds no stages.
  std::vector<std::string> names;
  try {
    const auto tree = load_recipe(run_dir / "recipe.toml");
    for (std::size_t i = 0; i < tree.stages.size(); ++i) names.push_back(stage_name(tree, i));
  } catch (const DiagnosticError&) {
    return;
  }
  const std::string* stopped_in = nullptr;
  bool started = false;
  for (const auto& name : names) {
    const bool finished = fs::exists(finished_marker(run_dir / name));
    started = started || finished || latest_checkpoint(run_dir / name).has_value();
    if (!finished && !stopped_in) stopped_in = &name;
  }
  if (!started || !stopped_in) return;
  throw DiagnosticError(make_error(
      fmt::format("{} holds an unfinished run of stages {}, stopped in stage '{}'; a new run there would discard it",
                  run_dir.string(), fmt::join(names, ", "), *stopped_in),
      fmt::format("resume it with `alignkit train --resume {}`, or choose another folder with --output or [run] "
                  "output_dir",
                  run_dir.string())));
}

}  // namespace alignkit
