// Loss: an alignment method's objective, computed from sequence log-probabilities.
//
// The host runs the models; the loss only combines what it is given. A loss declares what it
// needs (LossRequirements) and the host provides exactly that: a reference model or not, paired
// or unpaired examples, summed or length-normalised log-probs, KTO's mismatched-pair KL
// completions, the policy's NLL on chosen completions, generation for online methods.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <alignkit/plugin.hpp>

namespace alignkit {

enum class ExampleLayout {
  single,       // one completion per prompt, all desirable (SFT)
  paired,       // prompt, chosen, rejected (DPO, IPO, ORPO, SimPO, CPO)
  unpaired,     // prompt, completion, desirable-or-not label (KTO)
  prompt_only,  // prompts; completions are generated during training (PPO, GRPO, RLOO)
};

enum class LogProbReduction {
  sum,   // summed over completion tokens (DPO)
  mean,  // averaged over completion tokens (SimPO, ORPO, IPO length-normalised)
};

struct LossRequirements {
  bool reference_model = false;    // reference log-probs for every completion
  ExampleLayout examples = ExampleLayout::paired;
  LogProbReduction reduction = LogProbReduction::sum;
  bool kl_completions = false;     // KTO: log-probs of mismatched prompt/completion pairs
  bool policy_nll = false;         // token-mean NLL of the chosen completion (ORPO, RPO, CPO)
  // The policy NLL also covers the prompt's tokens (every attended token after the first), as
  // TRL's ORPOTrainer computes it; nll_token_counts then says how many tokens entered each nll.
  bool nll_over_prompt = false;
  bool generation = false;         // online methods: the host samples completions
  std::int64_t generation_tokens = 0;  // tokens sampled per prompt (TRL's response_length); 0: up to max_length
  // Online methods' further models, which the host loads (and the planner prices) beside the
  // policy: a reward model ([reward_model]: sequence classification, one score per completion)
  // and a value model ([value_model]: a critic with one output per token, trained with the policy).
  bool reward_model = false;
  bool value_model = false;
  // The policy is a reward model being trained (TRL's RewardTrainer): the host gives it a
  // sequence-classification head with one output (a fresh one when the checkpoint is a causal
  // LM) and fills CompletionScores::scores, the head's output at each row's last token, instead
  // of log-probs. Paired layout; no reference.
  bool sequence_scores = false;
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
  // The score head's output at the completion's last token (fp32), when sequence_scores is
  // declared; the fields above are then undefined.
  torch::Tensor scores;
};

// Online methods: per-token quantities of a minibatch of rollouts, [N, T] over the generated
// response tokens (T = the longest response), as TRL's PPOTrainer holds them.
struct RolloutBatch {
  torch::Tensor logps;             // the policy's log-probs of the sampled tokens now (with gradient)
  torch::Tensor values;            // the value model's predictions now (with gradient)
  torch::Tensor old_logps;         // log-probs when the rollout was sampled
  torch::Tensor old_values;        // values when the rollout was sampled
  torch::Tensor advantages;        // whitened, 0 on padding
  torch::Tensor returns;           // advantages + old values, before whitening
  torch::Tensor sequence_lengths;  // [N] int64: index of each response's last real token
  torch::Tensor entropy;           // optional: the policy's per-token entropy, for metrics
};

struct LossBatch {
  // Paired layout.
  CompletionScores chosen, rejected;
  CompletionScores reference_chosen, reference_rejected;
  // Single and unpaired layouts.
  CompletionScores completions, reference_completions;
  torch::Tensor desirable;  // bool [N], unpaired layout
  CompletionScores kl, reference_kl;
  // Online layout (prompt_only with generation).
  RolloutBatch rollout;
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

  // What compute() carries from step to step, by name, so a checkpoint saves it and a resumed
  // run continues it exactly (plugin API 2). A stateless loss keeps the defaults: none.
  virtual std::map<std::string, torch::Tensor> state() const;
  // Restores what state() returned; throws DiagnosticError for a name or shape it does not know.
  virtual void load_state(const std::map<std::string, torch::Tensor>& state);
};

}  // namespace alignkit
