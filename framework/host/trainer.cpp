#include "trainer.hpp"

#include <fmt/format.h>

#include <alignkit/online_method.hpp>

#include "offline_loop.hpp"
#include "run_state.hpp"

namespace alignkit {

namespace fs = std::filesystem;

void check_fresh_run_folder(const fs::path& run_dir) {
  const auto latest = latest_checkpoint(run_dir);
  if (!latest) return;
  const auto [step, max_steps] = checkpoint_progress(*latest);
  if (step >= max_steps) return;
  throw DiagnosticError(make_error(
      fmt::format("{} holds {} of an unfinished run (step {} of {}); a new run there would discard it",
                  run_dir.string(), latest->path.filename().string(), step, max_steps),
      fmt::format("resume it with `alignkit train --resume {}`, or choose another folder with --output or [run] "
                  "output_dir",
                  run_dir.string())));
}

std::optional<CheckpointFolder> resumable_checkpoint(const fs::path& run_dir) {
  if (!fs::is_regular_file(run_dir / "recipe.toml"))
    throw DiagnosticError(make_error(fmt::format("{} is not a run folder: it has no recipe.toml", run_dir.string()),
                                     "pass the folder a run wrote (runs/<name>, or its --output)"));
  auto latest = latest_checkpoint(run_dir);
  if (!latest)
    throw DiagnosticError(make_error(fmt::format("{} has no checkpoint to resume from", run_dir.string()),
                                     "a run writes one every [training] save_steps, when SIGINT or SIGTERM stops "
                                     "it, and at its end"));
  return latest;
}

TrainingOutcome train(const ValidatedRecipe& recipe, const fs::path& run_dir,
                      const std::optional<CheckpointFolder>& resume_from) {
  const auto* method = recipe.plugins.at("method");
  if (recipe.object<OnlineMethod>("method"))
    throw DiagnosticError(recipe.section("method").error(
        "name", fmt::format("'{}' is an online method (it learns from completions it samples); `alignkit train` runs "
                            "offline methods so far",
                            method->name)));
  return run_offline_loop(recipe, run_dir, resume_from);
}

}  // namespace alignkit
