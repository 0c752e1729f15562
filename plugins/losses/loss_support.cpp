#include "loss_support.hpp"

#include <algorithm>
#include <stdexcept>

#include <alignkit/diagnostic.hpp>

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

namespace {

// Optimal-string-alignment distance, case-insensitive (as the host's text_match).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); };
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

std::string closest_name(std::string_view word, const std::vector<std::string>& candidates) {
  const std::size_t limit = std::clamp<std::size_t>(word.size() / 3, 1, 3);
  std::string best;
  std::size_t best_distance = limit + 1;
  for (const auto& candidate : candidates) {
    const std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
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
    const std::string near = closest_name(name, allowed);
    throw DiagnosticError(options.error(key, "'" + name + "' is not one of: " + all,
                                        near.empty() ? std::string{} : "did you mean '" + near + "'?"));
  }
}

}  // namespace alignkit::losses
