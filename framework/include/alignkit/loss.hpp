// Loss: an alignment method's objective, computed from sequence log-probabilities.
//
// The host runs the models; the loss only combines what it is given. A loss declares what it
// needs (LossRequirements) as data: which completions of an example are scored, by which model
// (the policy, the reference) and how (log-probs summed or averaged, or a classifier's score),
// and the host fills exactly that into a LossBatch. Methods that sample their completions during
// training are OnlineMethods (alignkit/online_method.hpp), not losses.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <alignkit/example_layout.hpp>
#include <alignkit/metrics.hpp>
#include <alignkit/plugin.hpp>

namespace alignkit {

enum class LogProbReduction {
  sum,   // summed over completion tokens (DPO)
  mean,  // averaged over completion tokens (SimPO, ORPO, IPO length-normalised)
};

// What the policy gives for each completion it scores.
enum class CompletionScoring {
  logps,  // log-probs of the completion's tokens, reduced as LossRequirements::reduction says
  // The policy is a sequence classifier with one output (a reward model being trained, as TRL's
  // RewardTrainer does): the host gives it a one-output head (a fresh one when the checkpoint is
  // a causal LM), scores each row, prompt and completion whole, at its last token and fills
  // CompletionScores::scores instead of log-probs. Paired layout; no reference.
  sequence_score,
};

struct LossRequirements {
  bool reference_model = false;    // reference log-probs for every completion scored
  ExampleLayout examples = ExampleLayout::paired;
  CompletionScoring scoring = CompletionScoring::logps;
  LogProbReduction reduction = LogProbReduction::sum;
  // Each example is also scored with a mismatched completion: within each chunk of
  // per_device_train_batch_size examples in data order, the completion of the example before it
  // (the first takes the chunk's last), by the policy without gradient and by the reference,
  // into LossBatch::kl and reference_kl (KTO's KL estimate, as TRL's _get_kl_dataset pairs them).
  bool mismatched_completions = false;
  bool policy_nll = false;         // token-mean NLL of the chosen completion (ORPO, RPO, CPO)
  // The policy NLL also covers the prompt's tokens (every attended token after the first), as
  // TRL's ORPOTrainer computes it; nll_token_counts then says how many tokens entered each nll.
  bool nll_over_prompt = false;
  // The loss is a mean over completion tokens: under gradient accumulation the host weights each
  // micro-batch by its share of the step's completion tokens (transformers' num_items_in_batch)
  // instead of 1 / accumulation steps, so the step's gradient is that of the token mean over
  // the whole accumulated batch.
  bool token_mean = false;
};

// Per-completion quantities for N completions, as 1-D tensors of length N.
struct CompletionScores {
  torch::Tensor logps;         // reduced as declared in LossRequirements::reduction
  torch::Tensor token_counts;  // completion tokens that entered logps
  torch::Tensor mean_logits;   // mean logit over completion tokens (TRL's logits/* metrics)
  torch::Tensor nll;           // token-mean negative log-likelihood, when policy_nll is declared
  // Tokens that entered nll; may be left undefined when they are the token_counts (they differ
  // with nll_over_prompt). Losses weight nll by them to get TRL's batch-mean NLL.
  torch::Tensor nll_token_counts;
  // The score head's output at the completion's last token (fp32), when the scoring is
  // sequence_score; the fields above are then undefined.
  torch::Tensor scores;
};

struct LossBatch {
  // Paired layout.
  CompletionScores chosen, rejected;
  CompletionScores reference_chosen, reference_rejected;
  // Single and unpaired layouts.
  CompletionScores completions, reference_completions;
  torch::Tensor desirable;  // bool [N], unpaired layout
  CompletionScores kl, reference_kl;  // mismatched completions
};

struct LossResult {
  torch::Tensor loss;  // scalar; the host calls backward on it
  // Metrics under TRL's names ("rewards/chosen", "logps/rejected", ...): per-example tensors or
  // scalars, detached; the host averages them over the logging window.
  std::vector<std::pair<std::string, torch::Tensor>> metrics;
};

class Loss : public PluginObject {
 public:
  ~Loss() override;
  virtual LossRequirements requirements() const = 0;
  // Not const: some losses keep running statistics (e.g. BCO's reward mean).
  virtual LossResult compute(const LossBatch& batch) = 0;
  // How the metrics average over a logging window, and which the progress line shows; an
  // undeclared metric is logged as its window mean.
  virtual std::vector<MetricSpec> metrics() const;

  // What compute() carries from step to step, by name, so a checkpoint saves it and a resumed
  // run continues it exactly (plugin API 2). A stateless loss keeps the defaults: none.
  virtual std::map<std::string, torch::Tensor> state() const;
  // Restores what state() returned; throws DiagnosticError for a name or shape it does not know.
  virtual void load_state(const std::map<std::string, torch::Tensor>& state);
};

}  // namespace alignkit
