#include "loss_support.hpp"

#include <algorithm>
#include <stdexcept>

#include <alignkit/diagnostic.hpp>
#include <alignkit/did_you_mean.hpp>

namespace alignkit::losses {

torch::Tensor token_weighted_mean(const torch::Tensor& per_completion_mean, const torch::Tensor& token_counts) {
  const auto counts = token_counts.to(per_completion_mean.scalar_type());
  return (per_completion_mean * counts).sum() / counts.sum();
}

torch::Tensor batch_nll(const CompletionScores& scores) {
  if (!scores.nll.defined())
    throw std::invalid_argument("the loss declared policy_nll but the host gave no nll for the chosen completions");
  const auto& counts = scores.nll_token_counts.defined() ? scores.nll_token_counts : scores.token_counts;
  if (!counts.defined())
    throw std::invalid_argument("the loss needs token_counts (or nll_token_counts) to average the nll over tokens");
  return token_weighted_mean(scores.nll, counts);
}

torch::Tensor batch_mean_logits(const CompletionScores& scores) {
  if (!scores.mean_logits.defined() || !scores.token_counts.defined()) return {};
  return token_weighted_mean(scores.mean_logits.detach(), scores.token_counts);
}

void require_logps(const CompletionScores& scores, std::int64_t n, std::string_view what) {
  if (!scores.logps.defined())
    throw std::invalid_argument("the loss batch has no " + std::string(what) + " log-probs");
  if (scores.logps.dim() != 1 || (n >= 0 && scores.logps.size(0) != n))
    throw std::invalid_argument("the loss batch's " + std::string(what) + " log-probs have shape " +
                                c10::str(scores.logps.sizes()) + ", expected [" + std::to_string(n) + "]");
}

Metric mean_metric(std::string name, const torch::Tensor& values) {
  return {std::move(name), values.detach().mean()};
}

std::vector<MetricSpec> paired_metric_specs() {
  return {{.name = "rewards/accuracies", .progress = MetricProgress::train_and_eval},
          {.name = "rewards/margins", .progress = MetricProgress::train}};
}

Metric scalar_metric(std::string name, const torch::Tensor& value) {
  return {std::move(name), value.detach().reshape({})};
}

std::vector<Metric> paired_metrics(const torch::Tensor& chosen_rewards, const torch::Tensor& rejected_rewards,
                                   const CompletionScores& chosen, const CompletionScores& rejected) {
  std::vector<Metric> metrics;
  metrics.push_back(mean_metric("rewards/chosen", chosen_rewards));
  metrics.push_back(mean_metric("rewards/rejected", rejected_rewards));
  // TRL: (chosen_rewards > rejected_rewards).float().mean(), in float32.
  metrics.push_back(mean_metric("rewards/accuracies", (chosen_rewards > rejected_rewards).to(torch::kFloat)));
  metrics.push_back(mean_metric("rewards/margins", chosen_rewards - rejected_rewards));
  metrics.push_back(mean_metric("logps/chosen", chosen.logps));
  metrics.push_back(mean_metric("logps/rejected", rejected.logps));
  if (auto logits = batch_mean_logits(chosen); logits.defined()) metrics.push_back({"logits/chosen", logits});
  if (auto logits = batch_mean_logits(rejected); logits.defined()) metrics.push_back({"logits/rejected", logits});
  return metrics;
}

void check_names(const RecipeSection& options, std::string_view key, const std::vector<std::string>& names,
                 const std::vector<std::string>& allowed,
                 const std::vector<std::pair<std::string, std::string>>& removed) {
  if (names.empty())
    throw DiagnosticError(options.error(key, "'" + std::string(key) + "' is empty",
                                        "name at least one, e.g. [\"" + allowed.front() + "\"]"));
  for (const auto& name : names) {
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    for (const auto& [old_name, help] : removed)
      if (name == old_name)
        throw DiagnosticError(options.error(key, "'" + name + "' is not available in [" + options.name() + "]", help));
    std::string all;
    for (const auto& a : allowed) all += (all.empty() ? "" : ", ") + a;
    throw DiagnosticError(options.error(key, "'" + name + "' is not one of: " + all, did_you_mean(name, allowed)));
  }
}

}  // namespace alignkit::losses
