// KTO: the loss behind the `kto` plugin.
//
// Kahneman-Tversky Optimization (Ethayarajh et al., 2024, https://arxiv.org/abs/2402.01306), eq. 7:
//
//   "Model alignment as prospect theoretic optimization."
//
//   r(x, y) = log pi(y|x) - log ref(y|x)
//   z0      = max(0, mean over mismatched pairs (x, y') of r(x, y')), detached   (the KL estimate)
//   loss(y desirable)   = desirable_weight   * (1 - sigmoid(beta * (r - z0)))
//   loss(y undesirable) = undesirable_weight * (1 - sigmoid(beta * (z0 - r)))
//   loss = nanmean over the batch's examples
//
// loss_type "apo_zero_unpaired" (APO, https://arxiv.org/abs/2408.06266, eq. 7 unpaired) drops z0:
// 1 - sigmoid(beta r) for desirable, sigmoid(beta r) for undesirable, and needs no KL completions.
//
// Follows TRL 0.19.1's KTOTrainer.kto_loss and get_batch_loss_metrics
// (trl/trainer/kto_trainer.py). Metrics are the per-batch sums TRL stores
// (rewards/chosen_sum, logps/chosen_sum, logits/chosen_sum, count/chosen and the rejected ones,
// present only when the batch has such examples) and kl; TRL's KTOTrainer.log turns each window's
// sums into rewards/chosen = sum of rewards/chosen_sum / sum of count/chosen (likewise logps,
// logits, rejected) and rewards/margins = rewards/chosen - rewards/rejected.
#pragma once

#include <string>

#include <torch/types.h>

#include <alignkit/loss.hpp>

namespace alignkit::losses {

struct KtoSettings {
  double beta = 0.1;
  std::string loss_type = "kto";  // kto | apo_zero_unpaired
  double desirable_weight = 1.0;
  double undesirable_weight = 1.0;
};

struct KtoTerms {
  torch::Tensor losses;  // desirable examples first, then undesirable, weighted
  torch::Tensor chosen_rewards;
  torch::Tensor rejected_rewards;
  torch::Tensor kl;
};

// TRL's kto_loss. With the KL log-probs undefined (TRL's calculate_KL false, as for
// apo_zero_unpaired) kl is 0.
KtoTerms kto_loss(const KtoSettings& settings, const torch::Tensor& policy_chosen_logps,
                  const torch::Tensor& policy_rejected_logps, const torch::Tensor& policy_kl_logps,
                  const torch::Tensor& reference_chosen_logps, const torch::Tensor& reference_rejected_logps,
                  const torch::Tensor& reference_kl_logps);

class KtoLoss final : public Loss {
 public:
  explicit KtoLoss(KtoSettings settings) : settings_(std::move(settings)) {}
  LossRequirements requirements() const override;
  LossResult compute(const LossBatch& batch) override;
  std::vector<MetricSpec> metrics() const override;

 private:
  KtoSettings settings_;
};

}  // namespace alignkit::losses
