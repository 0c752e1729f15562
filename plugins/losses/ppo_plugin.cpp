// ppo: Proximal Policy Optimization with a learned reward model and a value model (formulas in
// ppo_loss.hpp), the reference RLHF method.
//
//   loss = masked_mean(max(-A * r, -A * clip(r, 1 - eps, 1 + eps))) + vf_coef * 0.5 *
//          masked_mean(max((V - R)^2, (clip(V, V_old - eps_v, V_old + eps_v) - R)^2))
//
// with r = pi / pi_old per token, A whitened GAE advantages of the per-token rewards (-kl_coef *
// KL to the reference, plus the reward model's score at the response's end) and R the returns.
// Schulman et al., 2017, https://arxiv.org/abs/1707.06347; Ouyang et al., 2022 (InstructGPT).
// Follows TRL 0.19's PPOTrainer and PPOConfig defaults. An online method (alignkit/online_method.hpp);
// it declares a reference, a reward model and a value model trained with the policy.
#include <alignkit/recipe_section.hpp>

#include "ppo_loss.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "kl_coef", .type = OptionType::floating, .default_value = "0.05",
     .doc = "Weight of the per-token KL penalty to the reference in the reward.", .min = 0},
    {.key = "kl_estimator", .type = OptionType::string, .default_value = "\"k1\"",
     .doc = "k1: log(pi / ref) per token; k3: (ref/pi - 1) - log(ref/pi), unbiased and non-negative.",
     .choices = "k1|k3"},
    {.key = "cliprange", .type = OptionType::floating, .default_value = "0.2",
     .doc = "Clip range of the policy ratio.", .min = 0, .min_exclusive = true},
    {.key = "cliprange_value", .type = OptionType::floating, .default_value = "0.2",
     .doc = "Clip range of the value prediction around its rollout value.", .min = 0, .min_exclusive = true},
    {.key = "vf_coef", .type = OptionType::floating, .default_value = "0.1",
     .doc = "Weight of the value loss.", .min = 0},
    {.key = "gamma", .type = OptionType::floating, .default_value = "1.0",
     .doc = "Discount factor of GAE.", .min = 0, .max = 1},
    {.key = "lam", .type = OptionType::floating, .default_value = "0.95",
     .doc = "Lambda of GAE.", .min = 0, .max = 1},
    {.key = "whiten_rewards", .type = OptionType::boolean, .default_value = "false",
     .doc = "Whiten the per-token rewards over the rollout batch before GAE."},
    {.key = "missing_eos_penalty", .type = OptionType::floating,
     .doc = "Subtracted from the score of a response that ends without EOS (unset: none)."},
    {.key = "num_ppo_epochs", .type = OptionType::integer, .default_value = "4",
     .doc = "Passes over each rollout batch.", .min = 1},
    {.key = "num_mini_batches", .type = OptionType::integer, .default_value = "1",
     .doc = "Minibatches per pass (one optimizer step each).", .min = 1},
    {.key = "response_length", .type = OptionType::integer, .default_value = "53",
     .doc = "Tokens generated per prompt.", .min = 1},
    {.key = "temperature", .type = OptionType::floating, .default_value = "0.7",
     .doc = "Sampling temperature; log-probs are taken of the logits divided by it.", .min = 0, .min_exclusive = true},
};

std::unique_ptr<alignkit::losses::PpoMethod> make(const alignkit::RecipeSection& options) {
  alignkit::losses::PpoSettings s;
  s.kl_coef = options.get_float("kl_coef");
  s.kl_estimator = options.get_string("kl_estimator");
  s.cliprange = options.get_float("cliprange");
  s.cliprange_value = options.get_float("cliprange_value");
  s.vf_coef = options.get_float("vf_coef");
  s.gamma = options.get_float("gamma");
  s.lam = options.get_float("lam");
  s.whiten_rewards = options.get_bool("whiten_rewards");
  if (options.has("missing_eos_penalty")) s.missing_eos_penalty = options.get_float("missing_eos_penalty");
  s.num_ppo_epochs = options.get_int("num_ppo_epochs");
  s.num_mini_batches = options.get_int("num_mini_batches");
  s.response_length = options.get_int("response_length");
  s.temperature = options.get_float("temperature");
  return std::make_unique<alignkit::losses::PpoMethod>(std::move(s));
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::online_method, "ppo", "1.0.0",
                                            "PPO: clipped policy and value losses on generated rollouts scored by a "
                                            "reward model (TRL's PPOTrainer)",
                                            kOptions))
