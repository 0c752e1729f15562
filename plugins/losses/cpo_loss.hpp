// CPO and SimPO: reference-free preference losses, the loss behind the `cpo` and `simpo` plugins.
//
// Contrastive Preference Optimization (Xu et al., 2024, https://arxiv.org/abs/2401.08417), eq. 3:
//
//   "Pushing the boundaries of LLM performance in machine translation."
//
//   u    = log pi(y_w|x) - log pi(y_l|x)                        (no reference model)
//   loss = mean(-(1-ls) log s(beta u) - ls log s(-beta u)) + cpo_alpha * NLL(y_w)
//
// SimPO (Meng et al., 2024, https://arxiv.org/abs/2405.14734) is loss_type "simpo": the log-probs
// are averaged over the completion's tokens and a target margin gamma is subtracted,
// u - simpo_gamma / beta, i.e. the sigmoid loss on beta * avg-margin - gamma. With cpo_alpha = 0
// it is SimPO proper; with cpo_alpha > 0, CPO-SimPO.
//
// Follows TRL 0.19.1's CPOTrainer.cpo_loss and get_batch_loss_metrics
// (trl/trainer/cpo_trainer.py): loss types sigmoid, hinge (relu(1 - beta u)), ipo
// ((u - 1/(2 beta))^2) and simpo; log-probs averaged over tokens for ipo and simpo, summed
// otherwise; the NLL is not computed (and logged as 0) when cpo_alpha is 0. Rewards are beta times
// the policy's log-probs.
#pragma once

#include <string>

#include <torch/types.h>

#include <alignkit/loss.hpp>

namespace alignkit::losses {

struct CpoSettings {
  double beta = 0.1;
  std::string loss_type = "sigmoid";  // sigmoid | hinge | ipo | simpo
  double label_smoothing = 0.0;
  double cpo_alpha = 1.0;
  double simpo_gamma = 0.5;
};

struct CpoTerms {
  torch::Tensor losses;
  torch::Tensor chosen_rewards;
  torch::Tensor rejected_rewards;
};

// TRL's cpo_loss: per-example losses and rewards.
CpoTerms cpo_loss(const CpoSettings& settings, const torch::Tensor& chosen_logps, const torch::Tensor& rejected_logps);

class CpoLoss final : public Loss {
 public:
  explicit CpoLoss(CpoSettings settings) : settings_(std::move(settings)) {}
  LossRequirements requirements() const override;
  LossResult compute(const LossBatch& batch) override;
  std::vector<MetricSpec> metrics() const override;

 private:
  CpoSettings settings_;
};

}  // namespace alignkit::losses
