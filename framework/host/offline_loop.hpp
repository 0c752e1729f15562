// The offline loop: methods whose examples are given (SFT, DPO, KTO, reward modelling, ...),
// each a Loss plugin that combines the scores the loop computes as it declared.
#pragma once

#include <filesystem>
#include <optional>

#include "run_checkpoint.hpp"
#include "trainer.hpp"

namespace alignkit {

TrainingOutcome run_offline_loop(const ValidatedRecipe& recipe, const std::filesystem::path& run_dir,
                                 const std::optional<CheckpointFolder>& resume_from);

}  // namespace alignkit
