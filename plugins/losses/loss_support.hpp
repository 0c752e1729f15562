// What the loss plugins share: batch reductions that follow TRL's, checks on the host's batch,
// metric helpers, and the check of a list of loss-type names with a "did you mean".
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <alignkit/loss.hpp>
#include <alignkit/recipe_section.hpp>

namespace alignkit::losses {

using Metric = std::pair<std::string, torch::Tensor>;

// sum_i value_i * count_i / sum_i count_i: the mean over every token of the batch, from
// per-completion means. TRL takes its logits/* means and its NLL over all tokens of a batch
// (`logits[mask].mean()`, `cross_entropy(..., reduction="mean")`), not as a mean of rows.
torch::Tensor token_weighted_mean(const torch::Tensor& per_completion_mean, const torch::Tensor& token_counts);

// The policy's NLL over the batch as TRL's `nll_loss`: cross-entropy averaged over every token
// that entered the per-completion `nll` (CompletionScores::nll_token_counts, else token_counts).
torch::Tensor batch_nll(const CompletionScores& scores);

// TRL's `logits/chosen` / `logits/rejected` for a paired batch: the mean logit over every
// completion token of the batch (and the vocabulary). Undefined when the host gave no mean_logits.
torch::Tensor batch_mean_logits(const CompletionScores& scores);

// Throws std::invalid_argument unless `scores.logps` is a 1-D tensor of `n` values (n < 0: any);
// `what` names the field in the message ("chosen", "reference_rejected", ...).
void require_logps(const CompletionScores& scores, std::int64_t n, std::string_view what);

// The standard paired metrics, under TRL's names and in DPOTrainer's order: rewards/chosen,
// rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected,
// logits/chosen, logits/rejected (the last two when the host gave mean_logits).
std::vector<Metric> paired_metrics(const torch::Tensor& chosen_rewards, const torch::Tensor& rejected_rewards,
                                   const CompletionScores& chosen, const CompletionScores& rejected);

// How the paired metrics show: the accuracy on the progress line after training steps and
// evaluations, the margin after training steps.
std::vector<MetricSpec> paired_metric_specs();

// A metric's value: detached; `mean` over the batch as TRL's `.mean()` does.
Metric mean_metric(std::string name, const torch::Tensor& values);
Metric scalar_metric(std::string name, const torch::Tensor& value);

// Checks every entry of the string-list option `key` against `allowed`, throwing a DiagnosticError
// located at the key ("did you mean ...?" in its help) for the first that is not there.
// `removed` lists names TRL dropped, each with the help to give instead.
void check_names(const RecipeSection& options, std::string_view key, const std::vector<std::string>& names,
                 const std::vector<std::string>& allowed,
                 const std::vector<std::pair<std::string, std::string>>& removed = {});

}  // namespace alignkit::losses
