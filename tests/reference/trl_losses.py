#!/usr/bin/python3
"""Reference numbers for the loss plugins where TRL's own fixtures stop.

tests/fixtures/oracle/ holds numbers made by TRL 0.19.1 itself for each loss function on fixed
log-probs. What they do not cover is computed here, from TRL's published source, re-written (not
imported) on Debian's python3-torch:

- DPO loss-type lists with loss_weights, "sft" as a loss type (MPO), as TRL 0.20 combines them
  (DPOTrainer.get_batch_loss_metrics: losses and rewards summed with their weights), and "ipo" in a
  list making every term use length-averaged log-probs (concatenated_forward);
- RPO (rpo_alpha) and the NLL term as TRL computes it: one cross-entropy over every chosen
  completion token of the batch, not a mean of per-example means;
- f-divergences (js, alpha) on every loss type; exo_pair's label smoothing of 1e-3 staying on the
  trainer for the terms after it and the steps after; bco_pair's running mean over two steps;
- the logits/* metrics (the mean over every completion token and the vocabulary);
- ORPO's NLL over prompt and completion; CPO and SimPO with their NLL term; SFT's token-mean loss.

Each case starts from per-token logits and labels, computes what TRL computes from them (batch-level
cross-entropy, masked means), and also the per-completion quantities the alignkit host hands a loss
(CompletionScores: reduced log-probs, token counts, mean logits, token-mean NLL). The C++ test
(tests/losses/test_losses.cpp, LossReference.*) feeds the latter to the plugin and compares with
the former within 1e-6 relative.

Usage: trl_losses.py OUT.json          write the cases
       trl_losses.py --check FILE.json  exit 1 unless FILE.json equals what this script writes
"""
import json
import math
import sys

import torch

from reference_cases import write_or_check
import torch.nn.functional as F

VOCAB = 13
SEED = 20250708

DPO_TYPES = ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
             "aot_pair", "discopop", "apo_zero", "apo_down"]


# ------------------------------------------------------------------------------------------------
# Synthetic per-token model outputs
# ------------------------------------------------------------------------------------------------

class Rows:
    """A list of completions, each with per-token logits [T, V] and labels [T] for its completion
    tokens, plus (for ORPO's NLL) the logits and labels of the prompt tokens after the first."""

    def __init__(self, gen, lengths, prompt_lengths, scale):
        self.logits, self.labels, self.prompt_logits, self.prompt_labels = [], [], [], []
        for length, prompt_length in zip(lengths, prompt_lengths):
            self.logits.append(torch.randn(length, VOCAB, generator=gen, dtype=torch.float64) * scale)
            self.labels.append(torch.randint(0, VOCAB, (length,), generator=gen))
            self.prompt_logits.append(torch.randn(prompt_length - 1, VOCAB, generator=gen, dtype=torch.float64) * scale)
            self.prompt_labels.append(torch.randint(0, VOCAB, (prompt_length - 1,), generator=gen))

    def token_logps(self):
        return [torch.gather(F.log_softmax(l, -1), 1, y[:, None])[:, 0] for l, y in zip(self.logits, self.labels)]

    def counts(self):
        return torch.tensor([float(len(y)) for y in self.labels], dtype=torch.float64)

    def logps(self, average):
        # TRL: (per_token_logps * loss_mask).sum(-1), divided by loss_mask.sum(-1) when averaged
        sums = torch.stack([t.sum() for t in self.token_logps()])
        return sums / self.counts() if average else sums

    def batch_nll(self, with_prompt=False):
        # TRL: F.cross_entropy over the flattened chosen rows, ignoring masked labels (mean over tokens)
        if with_prompt:
            logits = torch.cat([torch.cat([p, l]) for p, l in zip(self.prompt_logits, self.logits)])
            labels = torch.cat([torch.cat([p, y]) for p, y in zip(self.prompt_labels, self.labels)])
        else:
            logits, labels = torch.cat(self.logits), torch.cat(self.labels)
        return F.cross_entropy(logits, labels)

    def batch_mean_logits(self):
        # TRL: logits[:num_examples][loss_mask[:num_examples]].mean()
        return torch.cat(self.logits).mean()

    def scores(self, average, with_nll=False, nll_with_prompt=False):
        """What the alignkit host gives a loss for these completions (CompletionScores)."""
        out = {
            "logps": self.logps(average).tolist(),
            "token_counts": self.counts().tolist(),
            "mean_logits": [l.mean().item() for l in self.logits],
        }
        if with_nll:
            if nll_with_prompt:
                nll = [F.cross_entropy(torch.cat([p, l]), torch.cat([py, y])).item()
                       for p, l, py, y in zip(self.prompt_logits, self.logits, self.prompt_labels, self.labels)]
                out["nll_token_counts"] = [float(len(py) + len(y)) for py, y in zip(self.prompt_labels, self.labels)]
            else:
                nll = [F.cross_entropy(l, y).item() for l, y in zip(self.logits, self.labels)]
            out["nll"] = nll
        return out


def make_pairs(gen, n, reference=True):
    lengths = lambda: torch.randint(1, 8, (n,), generator=gen).tolist()
    prompts = torch.randint(2, 6, (n,), generator=gen).tolist()
    chosen = Rows(gen, lengths(), prompts, 1.0)
    rejected = Rows(gen, lengths(), prompts, 1.0)
    if not reference:
        return chosen, rejected, None, None
    ref_chosen, ref_rejected = Rows(gen, [], [], 1.0), Rows(gen, [], [], 1.0)
    # the reference sees the same tokens with other logits
    for src, dst in ((chosen, ref_chosen), (rejected, ref_rejected)):
        for l, y in zip(src.logits, src.labels):
            dst.logits.append(l + 0.3 * torch.randn(l.shape, generator=gen, dtype=torch.float64))
            dst.labels.append(y)
    return chosen, rejected, ref_chosen, ref_rejected


# ------------------------------------------------------------------------------------------------
# TRL's DPO (dpo_loss per loss type; get_batch_loss_metrics combining a list, TRL >= 0.20)
# ------------------------------------------------------------------------------------------------

class RunningMoments:
    """trl.trainer.utils.RunningMoments on one process."""

    def __init__(self):
        self.mean, self.var, self.count = 0.0, 1.0, 1e-24

    def update(self, xs):
        xs_count = xs.numel()
        xs_var, xs_mean = torch.var_mean(xs, unbiased=False)
        xs_mean, xs_var = xs_mean.float(), xs_var.float()
        delta = xs_mean - self.mean
        tot_count = self.count + xs_count
        old_sum = self.var * self.count + delta**2 * self.count * xs_count / tot_count
        tot_sum = old_sum + xs_var * xs_count
        self.mean += (delta * xs_count / tot_count).item()
        self.var = (tot_sum / tot_count).item()
        self.count = tot_count


class Dpo:
    def __init__(self, beta=0.1, loss_type=("sigmoid",), loss_weights=None, label_smoothing=0.0, rpo_alpha=None,
                 reference_free=False, f_divergence_type="reverse_kl", f_alpha_divergence_coef=1.0,
                 discopop_tau=0.05):
        self.beta, self.loss_type, self.loss_weights = beta, list(loss_type), loss_weights
        self.label_smoothing, self.rpo_alpha, self.reference_free = label_smoothing, rpo_alpha, reference_free
        self.f_divergence_type, self.alpha = f_divergence_type, f_alpha_divergence_coef
        self.discopop_tau = discopop_tau
        self.running = RunningMoments()

    def one_loss(self, c, r, rc, rr, loss_type, nll):
        beta = self.beta
        keep_ref = 0.0 if self.reference_free else 1.0
        c_ratio, r_ratio = c - keep_ref * rc, r - keep_ref * rr
        if self.f_divergence_type == "alpha_divergence":
            cap = math.floor(math.log(torch.finfo(c.dtype).max) * 1e4) / 1e4
            logits = (torch.exp(torch.clamp(r_ratio * -self.alpha, max=cap)) -
                      torch.exp(torch.clamp(c_ratio * -self.alpha, max=cap))) / self.alpha
        else:
            ref_margin = torch.zeros(1, dtype=c.dtype) if self.reference_free else rc - rr
            logits = (c - r) - ref_margin
            if self.f_divergence_type == "js_divergence":
                logits = logits - (F.softplus(c_ratio) - F.softplus(r_ratio))
        ls = self.label_smoothing
        sig = lambda x: -F.logsigmoid(x) * (1 - ls) - F.logsigmoid(-x) * ls
        if loss_type == "sigmoid":
            losses = sig(beta * logits)
        elif loss_type == "robust":
            losses = (-F.logsigmoid(beta * logits) * (1 - ls) + F.logsigmoid(-beta * logits) * ls) / (1 - 2 * ls)
        elif loss_type == "exo_pair":
            if self.label_smoothing == 0:
                self.label_smoothing = 1e-3  # stays on the trainer, as in TRL
            ls = self.label_smoothing
            losses = torch.sigmoid(beta * logits) * (F.logsigmoid(beta * logits) - math.log(1 - ls)) + \
                torch.sigmoid(-beta * logits) * (F.logsigmoid(-beta * logits) - math.log(ls))
        elif loss_type == "hinge":
            losses = torch.relu(1 - beta * logits)
        elif loss_type == "ipo":
            losses = (logits - 1 / (2 * beta)) ** 2
        elif loss_type == "bco_pair":
            cw, rl = beta * (c - rc), beta * (r - rr)
            self.running.update(torch.cat((cw, rl), 0).mean().detach())
            delta = self.running.mean
            losses = -F.logsigmoid(cw - delta) - F.logsigmoid(-(rl - delta))
        elif loss_type == "sppo_hard":
            losses = (c - rc - 0.5 / beta) ** 2 + (r - rr + 0.5 / beta) ** 2
        elif loss_type == "nca_pair":
            cw, rl = (c - rc) * beta, (r - rr) * beta
            losses = -F.logsigmoid(cw) - 0.5 * F.logsigmoid(-cw) - 0.5 * F.logsigmoid(-rl)
        elif loss_type == "aot_pair":
            losses = sig(beta * (torch.sort(c - rc, dim=0)[0] - torch.sort(r - rr, dim=0)[0]))
        elif loss_type == "aot":
            losses = sig(beta * (torch.sort(c - r, dim=0)[0] - torch.sort(rc - rr, dim=0)[0]))
        elif loss_type == "apo_zero":
            losses = 1 - torch.sigmoid(beta * c_ratio) + torch.sigmoid(beta * r_ratio)
        elif loss_type == "apo_down":
            losses = torch.sigmoid(beta * c_ratio) + 1 - torch.sigmoid(beta * (c_ratio - r_ratio))
        elif loss_type == "discopop":
            v = ((c - r) - (rc - rr)) * beta
            m = torch.sigmoid(v / self.discopop_tau)
            losses = -F.logsigmoid(v) * (1 - m) + torch.exp(-v) * m
        elif loss_type == "sft":
            return nll.expand(c.shape[0]), torch.zeros_like(c), torch.zeros_like(r)
        else:
            raise ValueError(loss_type)
        return losses, beta * (c - rc), beta * (r - rr)

    def step(self, chosen, rejected, ref_chosen, ref_rejected):
        """TRL's get_batch_loss_metrics: the loss and the metrics it logs, from per-token data."""
        average = "ipo" in self.loss_type
        c, r = chosen.logps(average), rejected.logps(average)
        if ref_chosen is None:  # reference_free without a reference model: its log-probs count as 0
            rc, rr = torch.zeros_like(c), torch.zeros_like(r)
        else:
            rc, rr = ref_chosen.logps(average), ref_rejected.logps(average)
        need_nll = self.rpo_alpha is not None or "sft" in self.loss_type
        nll = chosen.batch_nll() if need_nll else None
        losses, cr, rr_ = 0, 0, 0
        for i, t in enumerate(self.loss_type):
            w = self.loss_weights[i] if self.loss_weights else 1.0
            l, a, b = self.one_loss(c, r, rc, rr, t, nll)
            losses, cr, rr_ = losses + l * w, cr + a * w, rr_ + b * w
        if self.rpo_alpha is not None:
            losses = losses + self.rpo_alpha * nll
        metrics = {
            "rewards/chosen": cr.mean().item(),
            "rewards/rejected": rr_.mean().item(),
            "rewards/accuracies": (cr > rr_).float().mean().item(),
            "rewards/margins": (cr - rr_).mean().item(),
            "logps/chosen": c.mean().item(),
            "logps/rejected": r.mean().item(),
            "logits/chosen": chosen.batch_mean_logits().item(),
            "logits/rejected": rejected.batch_mean_logits().item(),
        }
        if need_nll:
            metrics["nll_loss"] = nll.item()
        batch = {"chosen": chosen.scores(average, with_nll=need_nll), "rejected": rejected.scores(average)}
        if ref_chosen is not None:
            batch["reference_chosen"] = ref_chosen.scores(average)
            batch["reference_rejected"] = ref_rejected.scores(average)
        return {"batch": batch, "loss": losses.mean().item(), "metrics": metrics}


# ------------------------------------------------------------------------------------------------
# ORPO, CPO / SimPO, SFT
# ------------------------------------------------------------------------------------------------

def orpo_step(beta, chosen, rejected):
    c, r = chosen.logps(True), rejected.logps(True)
    nll = chosen.batch_nll(with_prompt=True)  # ORPOTrainer: NLL over prompt and chosen completion
    log_odds = (c - r) - (torch.log1p(-torch.exp(c)) - torch.log1p(-torch.exp(r)))
    ratio = F.logsigmoid(log_odds)
    cr, rr = beta * c, beta * r
    metrics = {
        "rewards/chosen": cr.mean().item(), "rewards/rejected": rr.mean().item(),
        "rewards/accuracies": (cr > rr).float().mean().item(), "rewards/margins": (cr - rr).mean().item(),
        "logps/chosen": c.mean().item(), "logps/rejected": r.mean().item(),
        # alignkit's logits/*: the mean over completion tokens (TRL's ORPO averages the whole padded tensor)
        "logits/chosen": chosen.batch_mean_logits().item(), "logits/rejected": rejected.batch_mean_logits().item(),
        "nll_loss": nll.item(), "log_odds_ratio": ratio.mean().item(), "log_odds_chosen": log_odds.mean().item(),
    }
    batch = {"chosen": chosen.scores(True, with_nll=True, nll_with_prompt=True), "rejected": rejected.scores(True)}
    return {"batch": batch, "loss": (nll - (beta * ratio).mean()).item(), "metrics": metrics}


def cpo_step(beta, loss_type, label_smoothing, cpo_alpha, simpo_gamma, chosen, rejected):
    average = loss_type in ("ipo", "simpo")
    c, r = chosen.logps(average), rejected.logps(average)
    nll = chosen.batch_nll() if cpo_alpha != 0 else torch.tensor(0.0, dtype=torch.float64)
    u = c - r
    ls = label_smoothing
    if loss_type == "simpo":
        u = u - simpo_gamma / beta
        losses = -F.logsigmoid(beta * u) * (1 - ls) - F.logsigmoid(-beta * u) * ls
    elif loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * u) * (1 - ls) - F.logsigmoid(-beta * u) * ls
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * u)
    else:
        losses = (u - 1 / (2 * beta)) ** 2
    cr, rr = beta * c, beta * r
    metrics = {
        "rewards/chosen": cr.mean().item(), "rewards/rejected": rr.mean().item(),
        "rewards/accuracies": (cr > rr).float().mean().item(), "rewards/margins": (cr - rr).mean().item(),
        "logps/chosen": c.mean().item(), "logps/rejected": r.mean().item(),
        "logits/chosen": chosen.batch_mean_logits().item(), "logits/rejected": rejected.batch_mean_logits().item(),
        "nll_loss": nll.item(),
    }
    batch = {"chosen": chosen.scores(average, with_nll=cpo_alpha != 0), "rejected": rejected.scores(average)}
    return {"batch": batch, "loss": (losses.mean() + cpo_alpha * nll).item(), "metrics": metrics}


def sft_step(rows):
    # transformers' causal-LM loss: cross-entropy averaged over every label that is not -100
    loss = F.cross_entropy(torch.cat(rows.logits), torch.cat(rows.labels))
    return {"batch": {"completions": rows.scores(False)}, "loss": loss.item(), "metrics": {}}


# ------------------------------------------------------------------------------------------------

def dpo_case(gen, name, options, steps=1, n=5, reference=True, **kwargs):
    dpo = Dpo(**kwargs)
    out = []
    for _ in range(steps):
        out.append(dpo.step(*make_pairs(gen, n, reference)))
    return {"name": name, "method": "dpo" if "method" not in options else options["method"],
            "options": options["text"], "steps": out}


def build():
    gen = torch.Generator().manual_seed(SEED)
    cases = []
    cases.append(dpo_case(gen, "mpo_sigmoid_bco_sft_weighted", {
        "text": 'loss_type = ["sigmoid", "bco_pair", "sft"]\nloss_weights = [0.8, 0.2, 1.0]\n'},
        steps=2, loss_type=["sigmoid", "bco_pair", "sft"], loss_weights=[0.8, 0.2, 1.0]))
    cases.append(dpo_case(gen, "sigmoid_and_ipo_average_every_term", {
        "text": 'beta = 0.2\nloss_type = ["sigmoid", "ipo"]\n'}, beta=0.2, loss_type=["sigmoid", "ipo"]))
    cases.append(dpo_case(gen, "hinge_sft_weighted_with_rpo", {
        "text": 'loss_type = ["hinge", "sft"]\nloss_weights = [1.0, 0.5]\nrpo_alpha = 0.5\n'},
        loss_type=["hinge", "sft"], loss_weights=[1.0, 0.5], rpo_alpha=0.5))
    cases.append(dpo_case(gen, "sigmoid_rpo_alpha_1", {"text": "rpo_alpha = 1.0\n"}, rpo_alpha=1.0))
    cases.append(dpo_case(gen, "exo_pair_then_sigmoid_keeps_smoothing", {
        "text": 'loss_type = ["exo_pair", "sigmoid"]\n'}, steps=2, loss_type=["exo_pair", "sigmoid"]))
    cases.append(dpo_case(gen, "sigmoid_then_exo_pair_two_steps", {
        "text": 'loss_type = ["sigmoid", "exo_pair"]\n'}, steps=2, loss_type=["sigmoid", "exo_pair"]))
    cases.append(dpo_case(gen, "js_divergence_hinge_ipo", {
        "text": 'loss_type = ["hinge", "ipo"]\nf_divergence_type = "js_divergence"\n'},
        loss_type=["hinge", "ipo"], f_divergence_type="js_divergence"))
    cases.append(dpo_case(gen, "alpha_divergence_apo_zero_robust", {
        "text": 'beta = 0.3\nloss_type = ["apo_zero", "robust"]\nlabel_smoothing = 0.1\n'
                'f_divergence_type = "alpha_divergence"\nf_alpha_divergence_coef = 0.3\n'},
        beta=0.3, loss_type=["apo_zero", "robust"], label_smoothing=0.1, f_divergence_type="alpha_divergence",
        f_alpha_divergence_coef=0.3))
    cases.append(dpo_case(gen, "reference_free_apo_down_sigmoid_without_reference", {
        "text": 'loss_type = ["apo_down", "sigmoid"]\nreference_free = true\n'},
        reference=False, loss_type=["apo_down", "sigmoid"], reference_free=True))
    weights = [0.5 + 0.1 * i for i in range(len(DPO_TYPES))]
    for f, extra, kw in (("js_divergence", "", {}),
                         ("alpha_divergence", "f_alpha_divergence_coef = 0.7\n", {"f_alpha_divergence_coef": 0.7}),
                         ("reverse_kl", "label_smoothing = 0.2\ndiscopop_tau = 0.3\n",
                          {"label_smoothing": 0.2, "discopop_tau": 0.3})):
        text = "loss_type = [" + ", ".join(f'"{t}"' for t in DPO_TYPES) + "]\n" + \
               "loss_weights = [" + ", ".join(repr(w) for w in weights) + "]\n" + \
               f'f_divergence_type = "{f}"\n' + extra
        cases.append(dpo_case(gen, f"all_types_weighted_{f}", {"text": text}, steps=2, loss_type=DPO_TYPES,
                              loss_weights=weights, f_divergence_type=f, **kw))
    cases.append(dpo_case(gen, "ipo_plugin_averages_and_rpo", {"method": "ipo", "text": "beta = 0.25\nrpo_alpha = 0.5\n"},
                          beta=0.25, loss_type=["ipo"], rpo_alpha=0.5))

    chosen, rejected, _, _ = make_pairs(gen, 6, reference=False)
    cases.append({"name": "orpo_nll_over_prompt_and_completion", "method": "orpo", "options": "beta = 0.2\n",
                  "steps": [orpo_step(0.2, chosen, rejected)]})
    for name, method, text, args in (
            ("cpo_sigmoid_smoothed_with_nll", "cpo", "label_smoothing = 0.05\n", (0.1, "sigmoid", 0.05, 1.0, 0.5)),
            ("cpo_ipo_averaged_alpha_2", "cpo", 'loss_type = "ipo"\ncpo_alpha = 2.0\n', (0.1, "ipo", 0.0, 2.0, 0.5)),
            ("simpo_defaults", "simpo", "", (0.1, "simpo", 0.0, 0.0, 0.5)),
            ("cpo_simpo_with_nll", "simpo", "beta = 2.0\nsimpo_gamma = 1.0\ncpo_alpha = 0.5\n",
             (2.0, "simpo", 0.0, 0.5, 1.0))):
        chosen, rejected, _, _ = make_pairs(gen, 6, reference=False)
        cases.append({"name": name, "method": method, "options": text,
                      "steps": [cpo_step(*args, chosen, rejected)]})
    rows = Rows(gen, [1, 7, 3, 5], [2, 2, 2, 2], 2.0)
    cases.append({"name": "sft_token_mean_over_the_batch", "method": "sft", "options": "", "steps": [sft_step(rows)]})
    return {
        "provenance": "tests/reference/trl_losses.py: TRL's formulas (0.19.1; loss lists as in 0.20) re-written on "
                      f"torch {torch.__version__}, float64, seed {SEED}",
        "cases": cases,
    }


if __name__ == "__main__":
    sys.exit(write_or_check(build, sys.argv, __doc__))
