// The reward-model loss of TRL's RewardTrainer (Bradley-Terry on a sequence-classification head):
//
//   loss = mean(-log sigmoid(r_chosen - r_rejected)) + center_rewards_coefficient * mean((r_chosen + r_rejected)^2)
//
// Ouyang et al., 2022 (InstructGPT), eq. 1; the centring term is Eisenstein et al., 2023,
// https://arxiv.org/abs/2312.09244. Follows RewardTrainer.compute_loss and its metrics
// (accuracy, margin, min_reward, mean_reward, max_reward), read in TRL's source.
#pragma once

#include <optional>

#include <alignkit/loss.hpp>

namespace alignkit::losses {

struct RewardSettings {
  std::optional<double> center_rewards_coefficient;  // RewardConfig's None: no centring term
};

LossResult reward_loss(const torch::Tensor& chosen_scores, const torch::Tensor& rejected_scores,
                       const RewardSettings& settings);

class RewardLoss final : public Loss {
 public:
  explicit RewardLoss(RewardSettings settings) : settings_(settings) {}
  LossRequirements requirements() const override;
  LossResult compute(const LossBatch& batch) override;
  std::vector<MetricSpec> metrics() const override;

 private:
  RewardSettings settings_;
};

}  // namespace alignkit::losses
