#include "kto_loss.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "loss_support.hpp"

namespace alignkit::losses {

KtoTerms kto_loss(const KtoSettings& s, const torch::Tensor& policy_chosen_logps,
                  const torch::Tensor& policy_rejected_logps, const torch::Tensor& policy_kl_logps,
                  const torch::Tensor& reference_chosen_logps, const torch::Tensor& reference_rejected_logps,
                  const torch::Tensor& reference_kl_logps) {
  // TRL's calculate_KL: the trainer sets it for loss_type kto, and KtoLoss passes KL log-probs then.
  const bool calculate_kl = policy_kl_logps.defined() && reference_kl_logps.defined();
  torch::Tensor kl;
  if (calculate_kl) {
    // One process: TRL's gather_for_metrics(kl).mean() is kl itself.
    kl = (policy_kl_logps - reference_kl_logps).mean().detach().clamp_min(0);
  } else {
    kl = torch::zeros({1}, policy_chosen_logps.options().requires_grad(false));
  }

  const auto chosen_logratios = policy_chosen_logps - reference_chosen_logps;
  const auto rejected_logratios = policy_rejected_logps - reference_rejected_logps;
  torch::Tensor chosen_losses, rejected_losses;
  if (s.loss_type == "kto") {
    chosen_losses = 1 - torch::sigmoid(s.beta * (chosen_logratios - kl));
    rejected_losses = 1 - torch::sigmoid(s.beta * (kl - rejected_logratios));
  } else if (s.loss_type == "apo_zero_unpaired") {
    chosen_losses = 1 - torch::sigmoid(s.beta * chosen_logratios);
    rejected_losses = torch::sigmoid(s.beta * rejected_logratios);
  } else {
    throw std::invalid_argument("unknown kto loss type '" + s.loss_type + "'");
  }
  return {torch::cat({s.desirable_weight * chosen_losses, s.undesirable_weight * rejected_losses}, 0),
          s.beta * chosen_logratios.detach(), s.beta * rejected_logratios.detach(), kl};
}

LossRequirements KtoLoss::requirements() const {
  LossRequirements r;
  r.reference_model = true;
  r.examples = ExampleLayout::unpaired;
  r.reduction = LogProbReduction::sum;
  r.mismatched_completions = settings_.loss_type == "kto";  // TRL's calculate_KL
  return r;
}

LossResult KtoLoss::compute(const LossBatch& batch) {
  require_logps(batch.completions, -1, "completions");
  const std::int64_t n = batch.completions.logps.size(0);
  require_logps(batch.reference_completions, n, "reference_completions");
  if (!batch.desirable.defined() || batch.desirable.numel() != n)
    throw std::invalid_argument("kto needs a desirable label for each of the " + std::to_string(n) + " completions");
  const auto desirable = batch.desirable.to(torch::kBool).to(batch.completions.logps.device());
  const auto undesirable = desirable.logical_not();
  if (requirements().mismatched_completions) {
    require_logps(batch.kl, -1, "kl");
    require_logps(batch.reference_kl, batch.kl.logps.size(0), "reference_kl");
  }
  const auto& policy = batch.completions.logps;
  const auto& reference = batch.reference_completions.logps;

  const bool calculate_kl = requirements().mismatched_completions;
  const auto terms = kto_loss(settings_, policy.index({desirable}), policy.index({undesirable}),
                              calculate_kl ? batch.kl.logps : torch::Tensor(), reference.index({desirable}),
                              reference.index({undesirable}), calculate_kl ? batch.reference_kl.logps : torch::Tensor());

  LossResult result;
  result.loss = terms.losses.nanmean();
  result.metrics.push_back(scalar_metric("kl", terms.kl));
  // TRL stores sums and counts per batch; KTOTrainer.log divides the window's sums by its counts.
  const auto& logits = batch.completions.mean_logits;
  for (const bool chosen : {true, false}) {
    const auto& mask = chosen ? desirable : undesirable;
    const std::int64_t count = mask.sum().item<std::int64_t>();
    if (count == 0) continue;
    const std::string split = chosen ? "chosen" : "rejected";
    const auto& rewards = chosen ? terms.chosen_rewards : terms.rejected_rewards;
    result.metrics.push_back(scalar_metric("rewards/" + split + "_sum", rewards.nansum()));
    result.metrics.push_back(scalar_metric("logps/" + split + "_sum", policy.index({mask}).detach().nansum()));
    if (logits.defined())
      result.metrics.push_back(scalar_metric("logits/" + split + "_sum", logits.index({mask}).detach().nansum()));
    result.metrics.push_back(
        scalar_metric("count/" + split, torch::tensor(static_cast<double>(count), policy.options().requires_grad(false))));
  }
  return result;
}

// compute() reports per-batch sums with counts, per split; over a logging window each becomes sum
// over count, and the margin their difference, as TRL's KTOTrainer.log computes them.
std::vector<MetricSpec> KtoLoss::metrics() const {
  std::vector<MetricSpec> specs;
  for (const char* split : {"chosen", "rejected"})
    for (const char* what : {"rewards", "logps", "logits"})
      specs.push_back({.name = fmt::format("{}/{}", what, split), .window = MetricWindow::ratio,
                       .a = fmt::format("{}/{}_sum", what, split), .b = fmt::format("count/{}", split)});
  specs.push_back({.name = "rewards/margins", .window = MetricWindow::difference, .a = "rewards/chosen",
                   .b = "rewards/rejected", .progress = MetricProgress::train});
  return specs;
}

}  // namespace alignkit::losses
