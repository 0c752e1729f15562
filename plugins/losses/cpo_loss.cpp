#include "cpo_loss.hpp"

#include <stdexcept>

#include "loss_support.hpp"

namespace alignkit::losses {

CpoTerms cpo_loss(const CpoSettings& s, const torch::Tensor& chosen_logps, const torch::Tensor& rejected_logps) {
  auto logits = chosen_logps - rejected_logps;
  torch::Tensor losses;
  if (s.loss_type == "simpo") {
    logits = logits - s.simpo_gamma / s.beta;
    // Eq. 3 of the CPO paper when label_smoothing is 0.
    losses = -torch::log_sigmoid(s.beta * logits) * (1 - s.label_smoothing) -
             torch::log_sigmoid(-s.beta * logits) * s.label_smoothing;
  } else if (s.loss_type == "sigmoid") {
    losses = -torch::log_sigmoid(s.beta * logits) * (1 - s.label_smoothing) -
             torch::log_sigmoid(-s.beta * logits) * s.label_smoothing;
  } else if (s.loss_type == "hinge") {
    losses = torch::relu(1 - s.beta * logits);
  } else if (s.loss_type == "ipo") {
    losses = (logits - 1 / (2 * s.beta)).pow(2);
  } else {
    throw std::invalid_argument("unknown cpo loss type '" + s.loss_type + "'");
  }
  return {losses, s.beta * chosen_logps.detach(), s.beta * rejected_logps.detach()};
}

LossRequirements CpoLoss::requirements() const {
  LossRequirements r;
  r.reference_model = false;
  r.examples = ExampleLayout::paired;
  // CPOTrainer.concatenated_forward: average_log_prob=self.loss_type in ["ipo", "simpo"].
  r.reduction = settings_.loss_type == "ipo" || settings_.loss_type == "simpo" ? LogProbReduction::mean
                                                                                : LogProbReduction::sum;
  r.policy_nll = settings_.cpo_alpha != 0;
  return r;
}

LossResult CpoLoss::compute(const LossBatch& batch) {
  require_logps(batch.chosen, -1, "chosen");
  require_logps(batch.rejected, batch.chosen.logps.size(0), "rejected");
  // TRL: nll_loss = torch.tensor(0.0) when cpo_alpha == 0, and it is logged as such.
  const auto nll = settings_.cpo_alpha != 0 ? batch_nll(batch.chosen)
                                            : torch::zeros({}, batch.chosen.logps.options().requires_grad(false));
  const auto terms = cpo_loss(settings_, batch.chosen.logps, batch.rejected.logps);

  LossResult result;
  result.loss = terms.losses.mean() + settings_.cpo_alpha * nll;
  result.metrics = paired_metrics(terms.chosen_rewards, terms.rejected_rewards, batch.chosen, batch.rejected);
  result.metrics.push_back(scalar_metric("nll_loss", nll));
  return result;
}

std::vector<MetricSpec> CpoLoss::metrics() const { return paired_metric_specs(); }

}  // namespace alignkit::losses
