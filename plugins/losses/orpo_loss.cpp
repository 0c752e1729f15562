#include "orpo_loss.hpp"

#include "loss_support.hpp"

namespace alignkit::losses {

OrpoTerms odds_ratio_loss(double beta, const torch::Tensor& chosen_logps, const torch::Tensor& rejected_logps) {
  // Eqs. 4 and 7 in log space: log odds = log P - log(1 - P), with log(1 - P) = log1p(-exp(log P)).
  const auto log_odds = (chosen_logps - rejected_logps) -
                        (torch::log1p(-torch::exp(chosen_logps)) - torch::log1p(-torch::exp(rejected_logps)));
  const auto ratio = torch::log_sigmoid(log_odds);
  return {beta * ratio, beta * chosen_logps.detach(), beta * rejected_logps.detach(), torch::mean(ratio),
          torch::mean(log_odds)};
}

LossRequirements OrpoLoss::requirements() const {
  LossRequirements r;
  r.reference_model = false;
  r.examples = ExampleLayout::paired;
  r.reduction = LogProbReduction::mean;  // get_batch_logps(average_log_prob=True)
  r.policy_nll = true;
  r.nll_over_prompt = true;  // "orpo chosen nll loss is computed over the full prompt and response"
  return r;
}

LossResult OrpoLoss::compute(const LossBatch& batch) {
  require_logps(batch.chosen, -1, "chosen");
  require_logps(batch.rejected, batch.chosen.logps.size(0), "rejected");
  const auto nll = batch_nll(batch.chosen);
  const auto terms = odds_ratio_loss(beta_, batch.chosen.logps, batch.rejected.logps);

  LossResult result;
  result.loss = nll - terms.losses.mean();
  result.metrics = paired_metrics(terms.chosen_rewards, terms.rejected_rewards, batch.chosen, batch.rejected);
  result.metrics.push_back(scalar_metric("nll_loss", nll));
  result.metrics.push_back(scalar_metric("log_odds_ratio", terms.log_odds_ratio));
  result.metrics.push_back(scalar_metric("log_odds_chosen", terms.log_odds_chosen));
  return result;
}

std::vector<MetricSpec> OrpoLoss::metrics() const { return paired_metric_specs(); }

}  // namespace alignkit::losses
