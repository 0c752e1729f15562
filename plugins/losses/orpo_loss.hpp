// ORPO: the loss behind the `orpo` plugin.
//
// Odds Ratio Preference Optimization (Hong et al., 2024, https://arxiv.org/abs/2403.07691):
//
//   "Monolithic preference optimization without reference model."
//
//   odds(y|x)  = P(y|x) / (1 - P(y|x)),  with log P the token-averaged log-prob
//   log_odds   = (log P_w - log P_l) - (log(1 - P_w) - log(1 - P_l))     eqs. 4 and 7
//   loss       = NLL(prompt + y_w) - mean(beta * log sigmoid(log_odds))
//
// Follows TRL 0.19.1's ORPOTrainer.odds_ratio_loss and get_batch_loss_metrics
// (trl/trainer/orpo_trainer.py). TRL's NLL term runs over the prompt and the chosen completion
// (every attended token after the first), so the plugin asks the host for that
// (LossRequirements::nll_over_prompt). Rewards are beta times the averaged log-probs; the
// logged log_odds_ratio is mean(log sigmoid(log_odds)) and log_odds_chosen is mean(log_odds).
#pragma once

#include <torch/types.h>

#include <alignkit/loss.hpp>

namespace alignkit::losses {

struct OrpoTerms {
  torch::Tensor losses;  // beta * log sigmoid(log_odds), subtracted from the NLL
  torch::Tensor chosen_rewards;
  torch::Tensor rejected_rewards;
  torch::Tensor log_odds_ratio;   // mean(log sigmoid(log_odds))
  torch::Tensor log_odds_chosen;  // mean(log_odds)
};

// TRL's odds_ratio_loss on length-averaged log-probs.
OrpoTerms odds_ratio_loss(double beta, const torch::Tensor& chosen_logps, const torch::Tensor& rejected_logps);

class OrpoLoss final : public Loss {
 public:
  explicit OrpoLoss(double beta) : beta_(beta) {}
  LossRequirements requirements() const override;
  LossResult compute(const LossBatch& batch) override;
  std::vector<MetricSpec> metrics() const override;

 private:
  double beta_;
};

}  // namespace alignkit::losses
