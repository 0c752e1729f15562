#include "reward_loss.hpp"

#include <stdexcept>

#include "loss_support.hpp"

namespace alignkit::losses {

LossResult reward_loss(const torch::Tensor& chosen, const torch::Tensor& rejected, const RewardSettings& settings) {
  LossResult result;
  result.loss = -torch::log_sigmoid(chosen - rejected).mean();
  if (settings.center_rewards_coefficient)
    result.loss = result.loss + *settings.center_rewards_coefficient * (chosen + rejected).pow(2).mean();
  // TRL takes min/mean/max over the model's [2N, 1] outputs: chosen and rejected together.
  const auto all = torch::cat({chosen, rejected}).detach();
  result.metrics = {mean_metric("accuracy", (chosen > rejected).to(torch::kFloat32)),
                    mean_metric("margin", chosen - rejected),
                    scalar_metric("min_reward", all.min()),
                    scalar_metric("mean_reward", all.mean()),
                    scalar_metric("max_reward", all.max())};
  return result;
}

LossRequirements RewardLoss::requirements() const {
  LossRequirements r;
  r.examples = ExampleLayout::paired;
  r.scoring = CompletionScoring::sequence_score;
  return r;
}

LossResult RewardLoss::compute(const LossBatch& batch) {
  const auto& chosen = batch.chosen.scores;
  const auto& rejected = batch.rejected.scores;
  if (!chosen.defined() || !rejected.defined() || chosen.dim() != 1 || !chosen.sizes().equals(rejected.sizes()))
    throw std::invalid_argument("reward needs one score per chosen and per rejected completion (1-D, equal lengths)");
  return reward_loss(chosen, rejected, settings_);
}

std::vector<MetricSpec> RewardLoss::metrics() const {
  return {{.name = "accuracy", .progress = MetricProgress::train_and_eval}, {.name = "margin", .progress = MetricProgress::train}};
}

}  // namespace alignkit::losses
