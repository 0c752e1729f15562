#!/usr/bin/python3
"""Python reference of TRL's DPO training step, on Debian's python3-torch.

Written from the semantics of TRL 0.19's DPOTrainer and transformers' Trainer, independently of
alignkit's C++: each row is prompt + completion (+ EOS) in TRL's concatenated layout after
flush_left (chosen rows, then rejected rows, right-padded, positions 0..T-1), summed completion
log-probs, the sigmoid DPO loss against a frozen reference (the starting weights, or the base with
the LoRA adapter off), backward, the global gradient norm clipped as transformers does, and
torch.optim.AdamW with transformers' parameter groups (no weight decay on biases and norm weights)
under a linear schedule without warmup. Every step uses the whole dataset as its batch.

usage: trl_dpo_step.py --model DIR [--adapter DIR] --data F.jsonl --steps N --lr LR --beta B
                       [--weight-decay W] [--max-grad-norm G] [--eos ID] [--pad ID]
                       [--reference-each-step] [--threads N] [--timing]
Prints one JSON object per step: loss, grad_norm, rewards/margins (and seconds with --timing).

The reference log-probs are computed once by default: the batch never changes, so they are the
same every step. bench/dpo_step.sh times the step as TRL runs it instead, with
--reference-each-step: a frozen copy of the model (TRL's create_reference_model; with LoRA, the
adapter switched off) scores the batch under no_grad inside every step.
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import Model  # noqa: E402
from trainer_reference import Optimizer, add_training_args, read_jsonl, trainable  # noqa: E402


def rows(examples, eos, pad):
    seqs, masks = [], []
    for side in ("chosen_ids", "rejected_ids"):
        for e in examples:
            completion = list(e[side]) + [eos]  # TRL's tokenize_row: EOS after every completion
            seqs.append(list(e["prompt_ids"]) + completion)
            masks.append([0] * len(e["prompt_ids"]) + [1] * len(completion))
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.int64)
    attention = torch.zeros((len(seqs), width), dtype=torch.int64)
    completion = torch.zeros((len(seqs), width), dtype=torch.bool)
    for i, (s, m) in enumerate(zip(seqs, masks)):
        ids[i, :len(s)] = torch.tensor(s)
        attention[i, :len(s)] = 1
        completion[i, :len(m)] = torch.tensor(m, dtype=torch.bool)
    return ids, attention, completion


def summed_logps(model, ids, attention, completion):
    logits = model.forward(ids, attention).float()
    logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (logps * completion[:, 1:]).sum(-1)


def main():
    p = argparse.ArgumentParser()
    add_training_args(p)
    p.add_argument("--beta", type=float, required=True)
    p.add_argument("--eos", type=int, default=2)
    p.add_argument("--pad", type=int, default=0)
    p.add_argument("--reference-each-step", action="store_true")
    p.add_argument("--threads", type=int, help="intra-op threads (default: torch's own)")
    p.add_argument("--timing", action="store_true", help="add each step's wall time in seconds")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    examples = read_jsonl(a.data)
    ids, attention, completion = rows(examples, a.eos, a.pad)
    n = len(examples)

    model = Model(a.model, a.adapter)
    frozen = Model(a.model) if a.reference_each_step and not a.adapter else None

    def reference_logps():
        with torch.no_grad():  # the reference: the starting weights (with LoRA: the base alone)
            if frozen is not None:
                return summed_logps(frozen, ids, attention, completion)
            saved_lora, model.lora = model.lora, {}
            out = summed_logps(model, ids, attention, completion)
            model.lora = saved_lora
            return out

    reference = None if a.reference_each_step else reference_logps()
    optimizer = Optimizer(trainable(model, a.adapter), a)
    for _ in range(a.steps):
        start = time.perf_counter()
        logps = summed_logps(model, ids, attention, completion)
        if a.reference_each_step:
            reference = reference_logps()
        chosen, rejected = logps[:n], logps[n:]
        ref_chosen, ref_rejected = reference[:n], reference[n:]
        logits = (chosen - ref_chosen) - (rejected - ref_rejected)
        loss = -torch.nn.functional.logsigmoid(a.beta * logits).mean()
        loss.backward()
        norm = optimizer.step()
        seconds = time.perf_counter() - start
        margins = a.beta * logits.detach()
        row = {"loss": loss.item(), "grad_norm": norm.item(), "rewards/margins": margins.mean().item()}
        if a.timing:
            row["seconds"] = seconds
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
