// The run folder's training checkpoints: `checkpoint-STEP/` folders, each written whole or not at
// all (AtomicDirectory), found again by resume, and pruned to the recipe's save_total_limit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace alignkit {

struct CheckpointFolder {
  std::int64_t step = 0;
  std::filesystem::path path;
};

// Complete checkpoints in `run_dir`, by step. Temporary folders of an interrupted write and
// folders without trainer_state.json are not checkpoints.
std::vector<CheckpointFolder> list_checkpoints(const std::filesystem::path& run_dir);

std::optional<CheckpointFolder> latest_checkpoint(const std::filesystem::path& run_dir);

// Keeps the newest `keep` checkpoints (0: all). Each older one is first renamed to a hidden
// name, atomically, so a crash while deleting never leaves a half-deleted folder that looks
// like a checkpoint.
void prune_checkpoints(const std::filesystem::path& run_dir, std::int64_t keep);

// Removes every checkpoint and the leftovers of interrupted writes and deletions (a fresh run
// in a folder that held a finished one).
void remove_checkpoints(const std::filesystem::path& run_dir);

// Leftovers of interrupted checkpoint writes and deletions (hidden `.checkpoint-*` folders).
void remove_checkpoint_leftovers(const std::filesystem::path& run_dir);

}  // namespace alignkit
