#!/usr/bin/python3
"""Reference numbers for the ppo loss plugin (plugins/losses/ppo_loss.cpp).

TRL cannot be installed here, and its PPOTrainer keeps the formulas inside its training loop, so
they are re-written (not imported) from TRL 0.19's trl/trainer/ppo_trainer.py and trl/core.py on
Debian's python3-torch, in float64:

- the rollout's per-token rewards: INVALID_LOGPROB (1.0) on padding for both log-probs, the k1
  or k3 KL estimate, non_score_reward = -kl_coef * kl, the score added at sequence_length + 1 (the
  last position when that is past the end), optional whitening over ~padding_mask_p1 without
  shifting the mean; the missing-EOS penalty;
- GAE over the full padded width with values zeroed past padding_mask_p1, returns = advantages +
  values, advantages whitened over ~padding_mask and zeroed on padding (masked_var unbiased);
- one minibatch's loss with new log-probs and values that moved away from the rollout's: the
  clipped value loss over ~padding_mask_p1, the clipped surrogate over ~padding_mask, loss =
  pg_loss + vf_coef * vf_loss, and the statistics TRL logs per minibatch (approxkl and ratio as
  unmasked means), plus the gradients of the loss with respect to the new log-probs and values.

The C++ test (tests/losses/test_losses.cpp, PpoLoss.EveryPythonReferenceCaseMatches) compares the
formula library and the plugin with these within 1e-6 relative.

Usage: trl_ppo.py OUT.json          write the cases
       trl_ppo.py --check FILE.json  exit 1 unless FILE.json equals what this script writes
"""
import json
import sys

import torch

from reference_cases import write_or_check

SEED = 20261203
INVALID_LOGPROB = 1.0


def masked_mean(values, mask):
    return (values * mask).sum() / mask.sum()


def masked_var(values, mask, unbiased=True):
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    if unbiased:
        mask_sum = mask.sum()
        if mask_sum == 0:
            raise ValueError("mask sum is zero")
        variance = variance * (mask_sum / (mask_sum - 1))
    return variance


def masked_whiten(values, mask, shift_mean=True):
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


def rollout(gen, s, n, t, sequence_lengths, contains_eos):
    logprobs = -torch.rand(n, t, generator=gen, dtype=torch.float64) * 3
    ref_logprobs = logprobs + torch.randn(n, t, generator=gen, dtype=torch.float64) * 0.3
    raw_scores = torch.randn(n, generator=gen, dtype=torch.float64)
    values = torch.randn(n, t, generator=gen, dtype=torch.float64)
    scores = raw_scores.clone()
    if s.get("missing_eos_penalty") is not None:
        scores[~contains_eos] -= s["missing_eos_penalty"]

    response_idxs = torch.arange(t).repeat(n, 1)
    padding_mask = response_idxs > sequence_lengths.unsqueeze(1)
    logprobs = torch.masked_fill(logprobs, padding_mask, INVALID_LOGPROB)
    ref_logprobs = torch.masked_fill(ref_logprobs, padding_mask, INVALID_LOGPROB)
    sequence_lengths_p1 = sequence_lengths + 1
    padding_mask_p1 = response_idxs > sequence_lengths_p1.unsqueeze(1)
    values = torch.masked_fill(values, padding_mask_p1, 0)

    logr = ref_logprobs - logprobs
    kl = -logr if s["kl_estimator"] == "k1" else (logr.exp() - 1) - logr
    non_score_reward = -s["kl_coef"] * kl
    rewards = non_score_reward.clone()
    actual_start = torch.arange(rewards.size(0))
    actual_end = torch.where(sequence_lengths_p1 < rewards.size(1), sequence_lengths_p1, sequence_lengths)
    rewards[[actual_start, actual_end]] += scores
    if s["whiten_rewards"]:
        rewards = masked_whiten(rewards, mask=~padding_mask_p1, shift_mean=False)
        rewards = torch.masked_fill(rewards, padding_mask_p1, 0)

    lastgaelam = 0
    advantages_reversed = []
    gen_length = t
    for i in reversed(range(gen_length)):
        nextvalues = values[:, i + 1] if i < gen_length - 1 else 0.0
        delta = rewards[:, i] + s["gamma"] * nextvalues - values[:, i]
        lastgaelam = delta + s["gamma"] * s["lam"] * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1], axis=1)
    returns = advantages + values
    advantages = masked_whiten(advantages, ~padding_mask)
    advantages = torch.masked_fill(advantages, padding_mask, 0)
    return dict(logprobs=logprobs, ref_logprobs=ref_logprobs, raw_scores=raw_scores, scores=scores, values=values, kl=kl,
                non_score_reward=non_score_reward, rewards=rewards, advantages=advantages, returns=returns,
                padding_mask=padding_mask, padding_mask_p1=padding_mask_p1)


def minibatch(gen, s, r):
    n, t = r["logprobs"].shape
    new_logprobs = (r["logprobs"] + torch.randn(n, t, generator=gen, dtype=torch.float64) * 0.3).requires_grad_()
    vpred_in = (r["values"] + torch.randn(n, t, generator=gen, dtype=torch.float64) * 0.4).requires_grad_()
    entropy = torch.rand(n, t, generator=gen, dtype=torch.float64) * 2
    padding_mask, padding_mask_p1 = r["padding_mask"], r["padding_mask_p1"]

    new_lp = torch.masked_fill(new_logprobs, padding_mask, INVALID_LOGPROB)
    vpred = torch.masked_fill(vpred_in, padding_mask_p1, 0)
    vpredclipped = torch.clamp(vpred, r["values"] - s["cliprange_value"], r["values"] + s["cliprange_value"])
    vf_losses1 = torch.square(vpred - r["returns"])
    vf_losses2 = torch.square(vpredclipped - r["returns"])
    vf_loss_max = torch.max(vf_losses1, vf_losses2)
    vf_loss = 0.5 * masked_mean(vf_loss_max, ~padding_mask_p1)
    vf_clipfrac = masked_mean((vf_losses2 > vf_losses1).float(), ~padding_mask_p1)
    logprobs_diff = new_lp - r["logprobs"]
    ratio = torch.exp(logprobs_diff)
    pg_losses = -r["advantages"] * ratio
    pg_losses2 = -r["advantages"] * torch.clamp(ratio, 1.0 - s["cliprange"], 1.0 + s["cliprange"])
    pg_loss_max = torch.max(pg_losses, pg_losses2)
    pg_loss = masked_mean(pg_loss_max, ~padding_mask)
    loss = pg_loss + s["vf_coef"] * vf_loss
    loss.backward()
    with torch.no_grad():
        pg_clipfrac = masked_mean((pg_losses2 > pg_losses).float(), ~padding_mask)
        approxkl = 0.5 * (logprobs_diff ** 2).mean()
    metrics = {
        "policy/approxkl_avg": approxkl.item(),
        "policy/clipfrac_avg": pg_clipfrac.item(),
        "loss/policy_avg": pg_loss.item(),
        "loss/value_avg": vf_loss.item(),
        "val/clipfrac_avg": vf_clipfrac.item(),
        "val/ratio": ratio.mean().item(),
        "policy/entropy_avg": entropy.mean().item(),
    }
    return dict(new_logprobs=new_logprobs.detach(), new_values=vpred_in.detach(), entropy=entropy,
                loss=loss.item(), metrics=metrics, grad_logprobs=new_logprobs.grad, grad_values=vpred_in.grad)


def flat(t):
    return [float(x) for x in t.reshape(-1).tolist()]


def build():
    gen = torch.Generator().manual_seed(SEED)
    defaults = dict(kl_coef=0.05, kl_estimator="k1", cliprange=0.2, cliprange_value=0.2, vf_coef=0.1, gamma=1.0,
                    lam=0.95, whiten_rewards=False, missing_eos_penalty=None)
    variants = [
        ("defaults", {}),
        ("k3_whitened_discounted_eos_penalty", dict(kl_estimator="k3", whiten_rewards=True, gamma=0.99, lam=0.9,
                                                    missing_eos_penalty=1.5, kl_coef=0.2)),
        ("tight_clipping", dict(cliprange=0.05, cliprange_value=0.05, vf_coef=0.5)),
    ]
    cases = []
    for name, overrides in variants:
        s = dict(defaults, **overrides)
        n, t = 8, 7
        # Full-width, short, one-token and middle responses: the score lands at length + 1 or, for
        # a response that fills T, on its last token.
        sequence_lengths = torch.tensor([6, 3, 0, 4, 6, 2, 5, 1])
        contains_eos = torch.tensor([True, True, False, True, False, True, True, True])
        r = rollout(gen, s, n, t, sequence_lengths, contains_eos)
        m = minibatch(gen, s, r)
        options = "\n".join(f"{k} = {json.dumps(v)}" for k, v in overrides.items() if v is not None) + "\n"
        cases.append({
            "name": name, "options": options, "n": n, "t": t,
            "sequence_lengths": [int(x) for x in sequence_lengths], "contains_eos": [bool(x) for x in contains_eos],
            "logprobs": flat(r["logprobs"]), "ref_logprobs": flat(r["ref_logprobs"]),
            "raw_scores": flat(r["raw_scores"]),
            "scores": flat(r["scores"]), "values": flat(r["values"]),
            "kl": flat(r["kl"]), "non_score_reward": flat(r["non_score_reward"]), "rewards": flat(r["rewards"]),
            "advantages": flat(r["advantages"]), "returns": flat(r["returns"]),
            "new_logprobs": flat(m["new_logprobs"]), "new_values": flat(m["new_values"]), "entropy": flat(m["entropy"]),
            "loss": m["loss"], "metrics": m["metrics"],
            "grad_logprobs": flat(m["grad_logprobs"]), "grad_values": flat(m["grad_values"]),
        })
    return {
        "provenance": "tests/reference/trl_ppo.py: TRL 0.19 PPOTrainer's formulas re-written on "
                      f"torch {torch.__version__}, float64, seed {SEED}",
        "cases": cases,
    }


if __name__ == "__main__":
    sys.exit(write_or_check(build, sys.argv, __doc__))
