#include "ppo_loss.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "loss_support.hpp"

namespace alignkit::losses {

PaddingMasks padding_masks(const torch::Tensor& sequence_lengths, std::int64_t T) {
  const auto positions = torch::arange(T, sequence_lengths.options().dtype(torch::kInt64)).unsqueeze(0);
  const auto last = sequence_lengths.to(torch::kInt64).unsqueeze(1);
  return {positions > last, positions > last + 1};
}

torch::Tensor masked_mean(const torch::Tensor& values, const torch::Tensor& mask) {
  const auto m = mask.to(values.scalar_type());
  return (values * m).sum() / m.sum();
}

torch::Tensor masked_var(const torch::Tensor& values, const torch::Tensor& mask, bool unbiased) {
  const auto mean = masked_mean(values, mask);
  auto variance = masked_mean((values - mean).pow(2), mask);
  if (unbiased) {
    const auto count = mask.sum().item<double>();
    if (count == 0) throw std::invalid_argument("masked_var: the mask selects no value");
    variance = variance * (count / (count - 1));
  }
  return variance;
}

torch::Tensor masked_whiten(const torch::Tensor& values, const torch::Tensor& mask, bool shift_mean) {
  const auto mean = masked_mean(values, mask);
  auto whitened = (values - mean) * torch::rsqrt(masked_var(values, mask) + 1e-8);
  return shift_mean ? whitened : whitened + mean;
}

torch::Tensor penalize_missing_eos(const torch::Tensor& scores, const torch::Tensor& contains_eos,
                                   const PpoSettings& settings) {
  if (!settings.missing_eos_penalty) return scores;
  return scores - contains_eos.logical_not().to(scores.scalar_type()) * *settings.missing_eos_penalty;
}

namespace {

void require_rollout(const torch::Tensor& t, const torch::Tensor& like, const char* what) {
  if (!t.defined() || t.sizes() != like.sizes())
    throw std::invalid_argument(fmt::format("ppo: the rollout's {} must be [N, T] like its log-probs", what));
}

}  // namespace

PpoRewards ppo_rewards(const torch::Tensor& logps, const torch::Tensor& ref_logps, const torch::Tensor& scores,
                       const torch::Tensor& sequence_lengths, const PpoSettings& settings) {
  require_rollout(ref_logps, logps, "reference log-probs");
  const auto T = logps.size(1);
  const auto masks = padding_masks(sequence_lengths, T);
  const auto logr = ref_logps.masked_fill(masks.policy, kInvalidLogProb) - logps.masked_fill(masks.policy, kInvalidLogProb);
  auto kl = settings.kl_estimator == "k3" ? (logr.exp() - 1) - logr : -logr;
  auto non_score_reward = -settings.kl_coef * kl;
  auto rewards = non_score_reward.clone();
  const auto lengths = sequence_lengths.to(torch::kInt64);
  const auto end = torch::where(lengths + 1 < T, lengths + 1, lengths);
  rewards.index_put_({torch::arange(logps.size(0), end.options()), end}, scores.to(rewards.scalar_type()), true);
  if (settings.whiten_rewards) {
    rewards = masked_whiten(rewards, masks.value.logical_not(), /*shift_mean=*/false);
    rewards.masked_fill_(masks.value, 0);
  }
  return {rewards, kl, non_score_reward};
}

GaeAdvantages gae_advantages(const torch::Tensor& rewards, const torch::Tensor& values,
                          const torch::Tensor& sequence_lengths, const PpoSettings& settings) {
  require_rollout(values, rewards, "values");
  const auto T = rewards.size(1);
  const auto masks = padding_masks(sequence_lengths, T);
  const auto v = values.masked_fill(masks.value, 0);
  auto advantages = torch::zeros_like(rewards);
  auto last = torch::zeros({rewards.size(0)}, rewards.options());
  for (std::int64_t t = T - 1; t >= 0; --t) {
    const auto next = t < T - 1 ? v.select(1, t + 1) : torch::zeros_like(last);
    const auto delta = rewards.select(1, t) + settings.gamma * next - v.select(1, t);
    last = delta + settings.gamma * settings.lam * last;
    advantages.select(1, t).copy_(last);
  }
  auto returns = advantages + v;
  advantages = masked_whiten(advantages, masks.policy.logical_not());
  advantages.masked_fill_(masks.policy, 0);
  return {advantages, returns};
}

LossResult ppo_loss(const OnlineMinibatch& b, const PpoSettings& s) {
  if (!b.logps.defined() || b.logps.dim() != 2)
    throw std::invalid_argument("ppo: the rollout's log-probs must be [N, T] (an online method needs the host's rollouts)");
  for (const auto& [t, what] : {std::pair{b.values, "values"}, {b.old_logps, "old log-probs"},
                                {b.old_values, "old values"}, {b.advantages, "advantages"}, {b.returns, "returns"}})
    require_rollout(t, b.logps, what);
  if (!b.sequence_lengths.defined() || b.sequence_lengths.dim() != 1 || b.sequence_lengths.size(0) != b.logps.size(0))
    throw std::invalid_argument("ppo: the rollout's sequence_lengths must be [N]");
  const auto masks = padding_masks(b.sequence_lengths, b.logps.size(1));
  const auto policy_tokens = masks.policy.logical_not(), value_tokens = masks.value.logical_not();

  // The value loss: the larger of the plain and the clipped squared error.
  const auto vpred = b.values.masked_fill(masks.value, 0);
  const auto vpred_clipped = torch::max(torch::min(vpred, b.old_values + s.cliprange_value), b.old_values - s.cliprange_value);
  const auto vf_losses1 = (vpred - b.returns).pow(2), vf_losses2 = (vpred_clipped - b.returns).pow(2);
  const auto vf_loss = 0.5 * masked_mean(torch::max(vf_losses1, vf_losses2), value_tokens);

  // The clipped surrogate objective.
  const auto diff = b.logps.masked_fill(masks.policy, kInvalidLogProb) - b.old_logps.masked_fill(masks.policy, kInvalidLogProb);
  const auto ratio = diff.exp();
  const auto pg_losses = -b.advantages * ratio;
  const auto pg_losses2 = -b.advantages * ratio.clamp(1.0 - s.cliprange, 1.0 + s.cliprange);
  const auto pg_loss = masked_mean(torch::max(pg_losses, pg_losses2), policy_tokens);

  LossResult result;
  result.loss = pg_loss + s.vf_coef * vf_loss;
  torch::NoGradGuard no_grad;
  result.metrics = {
      scalar_metric("policy/approxkl_avg", 0.5 * diff.pow(2).mean()),
      scalar_metric("policy/clipfrac_avg", masked_mean((pg_losses2 > pg_losses).to(diff.scalar_type()), policy_tokens)),
      scalar_metric("loss/policy_avg", pg_loss),
      scalar_metric("loss/value_avg", vf_loss),
      scalar_metric("val/clipfrac_avg", masked_mean((vf_losses2 > vf_losses1).to(vpred.scalar_type()), value_tokens)),
      scalar_metric("val/ratio", ratio.mean()),
  };
  if (b.entropy.defined()) result.metrics.push_back(scalar_metric("policy/entropy_avg", b.entropy.mean()));
  return result;
}

OnlineSpec PpoMethod::spec() const {
  OnlineSpec spec;
  spec.completions_per_prompt = 1;
  spec.max_completion_tokens = settings_.response_length;
  spec.temperature = settings_.temperature;
  spec.epochs = settings_.num_ppo_epochs;
  spec.mini_batches = settings_.num_mini_batches;
  spec.reference_model = true;
  spec.reward_model = true;
  spec.value_model = true;
  return spec;
}

// TRL's PPOTrainer.train between generation and the update epochs: the score after the EOS
// penalty, the per-token rewards, GAE, and the rollout's statistics (mean_kl, mean_entropy,
// mean_non_score_reward, rlhf_reward, scores.mean(), the EOS count).
RolloutEstimate PpoMethod::estimate(const Rollouts& r) {
  if (!r.logps.defined() || r.logps.dim() != 2)
    throw std::invalid_argument("ppo: the rollout's log-probs must be [N, T]");
  if (!r.sequence_lengths.defined() || r.sequence_lengths.dim() != 1 || r.sequence_lengths.size(0) != r.logps.size(0))
    throw std::invalid_argument("ppo: the rollout's sequence_lengths must be [N]");
  if (!r.scores.defined() || r.scores.numel() != r.logps.size(0))
    throw std::invalid_argument("ppo: the rollout's scores must be [N]");
  const auto contains_eos = r.contains_eos.defined() ? r.contains_eos : torch::ones_like(r.sequence_lengths, torch::kBool);
  const auto scores = penalize_missing_eos(r.scores, contains_eos, settings_);
  const auto rewards = ppo_rewards(r.logps, r.reference_logps, scores, r.sequence_lengths, settings_);
  const auto gae = gae_advantages(rewards.rewards, r.values, r.sequence_lengths, settings_);
  RolloutEstimate out{gae.advantages, gae.returns, {}};
  torch::NoGradGuard no_grad;
  // As TRL: the log-probs with padding at INVALID_LOGPROB enter the entropy estimate.
  const auto masks = padding_masks(r.sequence_lengths, r.logps.size(1));
  const auto non_score = rewards.non_score_reward.sum(1).mean();
  out.metrics = {
      scalar_metric("objective/kl", rewards.kl.sum(1).mean()),
      scalar_metric("objective/entropy", (-r.logps.masked_fill(masks.policy, kInvalidLogProb)).sum(1).mean()),
      scalar_metric("objective/non_score_reward", non_score),
      scalar_metric("objective/rlhf_reward", non_score + scores.mean()),
      scalar_metric("objective/scores", scores.mean()),
      scalar_metric("val/num_eos_tokens", contains_eos.to(torch::kFloat64).sum()),
  };
  return out;
}

std::vector<MetricSpec> PpoMethod::metrics() const {
  return {{.name = "objective/rlhf_reward", .progress = MetricProgress::train_and_eval},
          {.name = "objective/kl", .progress = MetricProgress::train}};
}

}  // namespace alignkit::losses
