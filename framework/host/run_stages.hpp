// The folder of a multi-stage run: RUN/recipe.toml, the whole run's effective recipe, and one
// folder per stage, RUN/<stage>/, each an ordinary run folder (recipe.toml, metrics, checkpoints,
// final/). What `train --resume` finds finished there, and what a fresh run may not discard.
#pragma once

#include <cstdint>
#include <filesystem>

namespace alignkit {

// A stage that ran to its end: marked once its final outputs are saved (a kill while saving
// them leaves it unfinished, and resuming saves them again), with its newest checkpoint at
// `max_steps` (a resume that raises max_steps continues it).
bool stage_finished(const std::filesystem::path& stage_dir, std::int64_t max_steps);
void mark_stage_finished(const std::filesystem::path& stage_dir);

// Before a stage starts or continues: it is not finished until it ends again. With `fresh`, its
// checkpoints (of an earlier, finished run in the folder) go too, so that a resume of the new
// run never continues them.
void reset_stage(const std::filesystem::path& stage_dir, bool fresh);

// A fresh run may not start in a folder holding an unfinished run: a single one
// (check_fresh_run_folder), or one of stages, some started and not all finished. Throws
// DiagnosticError saying how to resume it instead.
void check_fresh_run_folders(const std::filesystem::path& run_dir);

}  // namespace alignkit
