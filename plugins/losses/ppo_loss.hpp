// PPO's formulas as TRL's PPOTrainer computes them (TRL 0.19, trl/trainer/ppo_trainer.py and
// trl/core.py), each a function of per-token [N, T] tensors over the generated responses:
// the rollout's per-token rewards (KL penalty plus the reward model's score), GAE advantages and
// returns with TRL's whitening, and the clipped policy and value losses of one minibatch.
//
// Masks follow TRL: `sequence_lengths[i]` is the index of response i's last real token; the
// policy side covers tokens up to it (TRL's ~padding_mask), the value side one token further
// (~padding_mask_p1), and log-probs on padding are TRL's INVALID_LOGPROB (1.0) on both sides of a
// difference, so padding contributes a KL of 0 and a ratio of 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <torch/types.h>

#include <alignkit/online_method.hpp>

namespace alignkit::losses {

constexpr double kInvalidLogProb = 1.0;  // TRL's INVALID_LOGPROB

struct PpoSettings {
  double kl_coef = 0.05;
  std::string kl_estimator = "k1";  // k1: log(pi/ref); k3: (ref/pi - 1) - log(ref/pi)
  double cliprange = 0.2;
  double cliprange_value = 0.2;
  double vf_coef = 0.1;
  double gamma = 1.0;
  double lam = 0.95;
  bool whiten_rewards = false;
  std::optional<double> missing_eos_penalty;
  // The rollout loop's own settings, declared here so the host and the planner read them from
  // the method: TRL's num_ppo_epochs, num_mini_batches, response_length, temperature.
  std::int64_t num_ppo_epochs = 4;
  std::int64_t num_mini_batches = 1;
  std::int64_t response_length = 53;
  double temperature = 0.7;
};

// [N, T] bool masks of padding from the last-real-token indices: `policy` is true past
// sequence_lengths (TRL's padding_mask), `value` past sequence_lengths + 1 (padding_mask_p1).
struct PaddingMasks {
  torch::Tensor policy, value;
};
PaddingMasks padding_masks(const torch::Tensor& sequence_lengths, std::int64_t T);

// trl.core: masked_mean = sum(v*m)/sum(m); masked_var with the unbiased n/(n-1) correction;
// masked_whiten = (v - mean) * rsqrt(var + 1e-8), plus the mean back when !shift_mean.
// `mask` is true where a value counts. masked_var throws std::invalid_argument for an empty mask.
torch::Tensor masked_mean(const torch::Tensor& values, const torch::Tensor& mask);
torch::Tensor masked_var(const torch::Tensor& values, const torch::Tensor& mask, bool unbiased = true);
torch::Tensor masked_whiten(const torch::Tensor& values, const torch::Tensor& mask, bool shift_mean = true);

// The score after TRL's missing-EOS penalty: scores - penalty where a response has no EOS.
torch::Tensor penalize_missing_eos(const torch::Tensor& scores, const torch::Tensor& contains_eos,
                                   const PpoSettings& settings);

// Per-token rewards of a rollout batch: -kl_coef * KL per token, plus each response's score at
// its first padding position (sequence_length + 1; the last token when the response fills T),
// then whitened over the value mask when whiten_rewards. logps and ref_logps are the sampled
// tokens' log-probs (padding is set to INVALID_LOGPROB here); scores [N] the reward model's.
struct PpoRewards {
  torch::Tensor rewards, kl, non_score_reward;  // [N, T]
};
PpoRewards ppo_rewards(const torch::Tensor& logps, const torch::Tensor& ref_logps, const torch::Tensor& scores,
                       const torch::Tensor& sequence_lengths, const PpoSettings& settings);

// GAE over the full padded width (values past the value mask are zeroed first, as TRL's rollout
// leaves them): returns = advantages + values; advantages whitened over the policy mask and 0 on
// padding.
struct GaeAdvantages {
  torch::Tensor advantages, returns;  // [N, T]
};
GaeAdvantages gae_advantages(const torch::Tensor& rewards, const torch::Tensor& values,
                          const torch::Tensor& sequence_lengths, const PpoSettings& settings);

// One minibatch's loss: pg_loss + vf_coef * vf_loss, with the clipped surrogate objective and
// the clipped value loss, and TRL's per-minibatch statistics as metrics: policy/approxkl_avg,
// policy/clipfrac_avg, loss/policy_avg, loss/value_avg, val/clipfrac_avg, val/ratio, and
// policy/entropy_avg when the batch carries per-token entropy.
LossResult ppo_loss(const OnlineMinibatch& batch, const PpoSettings& settings);

// PPO as an online method: the rollout's estimate is ppo_rewards then gae_advantages (after the
// missing-EOS penalty), with TRL's objective/* metrics of the rollout; the loss is ppo_loss.
class PpoMethod : public OnlineMethod {
 public:
  explicit PpoMethod(PpoSettings settings) : settings_(std::move(settings)) {}
  OnlineSpec spec() const override;
  RolloutEstimate estimate(const Rollouts& rollouts) override;
  LossResult loss(const OnlineMinibatch& batch) override { return ppo_loss(batch, settings_); }
  std::vector<MetricSpec> metrics() const override;
  const PpoSettings& settings() const { return settings_; }

 private:
  PpoSettings settings_;
};

}  // namespace alignkit::losses
