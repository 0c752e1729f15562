// OnlineMethod: an alignment method that learns from completions the policy samples during
// training (PPO, GRPO, RLOO, Online DPO, REINFORCE++, ...).
//
// The host owns the rollout loop: it draws prompts, samples completions, scores them with the
// recipe's rewards, runs the reference and value models when the method asks for them, and runs
// the update epochs over mini-batches. The method owns what differs between methods: what it
// needs (OnlineSpec), how a rollout batch becomes advantages (estimate), and the loss of a
// mini-batch given the policy's log-probs now (loss). Per-token tensors are [N, T] over the
// generated tokens (T the longest completion), N = prompts x completions_per_prompt with each
// prompt's completions in consecutive rows.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <alignkit/loss.hpp>
#include <alignkit/metrics.hpp>
#include <alignkit/plugin.hpp>

namespace alignkit {

// What the rollout loop and the planner read from the method, once per run.
struct OnlineSpec {
  std::int64_t completions_per_prompt = 1;   // TRL's num_generations
  std::int64_t max_completion_tokens = 256;  // tokens sampled per completion (PPO's response_length)
  double temperature = 1.0;                  // sampling; log-probs are of the logits divided by it
  std::int64_t epochs = 1;                   // passes over each rollout batch (num_ppo_epochs, num_iterations)
  std::int64_t mini_batches = 1;             // optimizer steps per pass (num_mini_batches)
  bool reference_model = false;              // reference log-probs of every sampled token
  // A reward model ([reward_model]: a sequence classifier, one score per completion) and a
  // value model ([value_model]: one output per token, trained with the policy), which the host
  // loads and the planner prices beside the policy.
  bool reward_model = false;
  bool value_model = false;
};

// A rollout batch as the host sampled and scored it, without gradients.
struct Rollouts {
  torch::Tensor sequence_lengths;  // [N] int64: index of each completion's last real token
  torch::Tensor contains_eos;      // [N] bool: the completion ended with EOS (not truncated)
  torch::Tensor logps;             // [N, T] the sampling policy's log-probs of the sampled tokens
  torch::Tensor reference_logps;   // [N, T] when the spec asks for a reference
  torch::Tensor values;            // [N, T] when the spec asks for a value model
  torch::Tensor scores;            // [N] the completions' rewards (NaN where no reward applies)
};

// What estimate() makes of a rollout batch: the advantages the loss weights the policy's
// log-probs by, the value model's targets, and the rollout's metrics (TRL's objective/*).
struct RolloutEstimate {
  torch::Tensor advantages;  // [N, T], or [N] for sequence-level methods
  torch::Tensor returns;     // [N, T] value targets, when a value model trains
  std::vector<std::pair<std::string, torch::Tensor>> metrics;
};

// A mini-batch of a rollout batch with its estimate's rows and the models' outputs now.
struct OnlineMinibatch {
  torch::Tensor logps;             // [n, T] the policy's log-probs of the sampled tokens now (with gradient)
  torch::Tensor values;            // [n, T] the value model's predictions now (with gradient)
  torch::Tensor old_logps;         // [n, T] log-probs when the rollout was sampled
  torch::Tensor old_values;        // [n, T] values when the rollout was sampled
  torch::Tensor reference_logps;   // [n, T] when the spec asks for a reference
  torch::Tensor advantages;        // rows of RolloutEstimate::advantages
  torch::Tensor returns;           // rows of RolloutEstimate::returns
  torch::Tensor sequence_lengths;  // [n] int64
  torch::Tensor entropy;           // optional: the policy's per-token entropy, for metrics
};

class OnlineMethod : public PluginObject {
 public:
  ~OnlineMethod() override;
  virtual OnlineSpec spec() const = 0;
  // Not const: a method may keep statistics across rollouts (an adaptive KL controller).
  virtual RolloutEstimate estimate(const Rollouts& rollouts) = 0;
  // The mini-batch's loss (the host calls backward on it) and metrics under TRL's names.
  virtual LossResult loss(const OnlineMinibatch& batch) = 0;
  // How the metrics average over a logging window, and which the progress line shows.
  virtual std::vector<MetricSpec> metrics() const;

  // What the method carries from step to step, by name, for checkpoints (as Loss::state).
  virtual std::map<std::string, torch::Tensor> state() const;
  virtual void load_state(const std::map<std::string, torch::Tensor>& state);
};

}  // namespace alignkit
