#!/usr/bin/python3
"""Python reference of TRL's reward-model training step, on Debian's python3-torch.

Written from the semantics of TRL's RewardTrainer (TRL >= 0.24: compute_loss and its metrics,
DataCollatorForPreference) and transformers' Trainer, independently of alignkit's C++: each row is
the pre-tokenized prompt_ids + chosen_ids (or rejected_ids) as given (chosen rows, then rejected
rows, right-padded with the pad id, positions 0..T-1), the ...ForSequenceClassification score
head read at each row's last token that is not the pad id (transformers' pooling), loss = -logsigmoid(r_chosen - r_rejected).mean() (+ the centring term),
backward, the global gradient norm clipped as transformers does, and torch.optim.AdamW with
transformers' parameter groups (no weight decay on biases and norm weights) under a linear
schedule without warmup. Every step uses the whole dataset as its batch.

With --adapter, a PEFT SEQ_CLS LoRA adapter: the adapters and the score head it saves
(modules_to_save) train, the rest of the model stays frozen.

usage: trl_reward_step.py --model DIR [--adapter DIR] --data F.jsonl --steps N --lr LR [--center C]
                          [--weight-decay W] [--max-grad-norm G] [--pad ID]
Prints one JSON object per step: loss, grad_norm, accuracy, margin, min_reward, mean_reward,
max_reward (TRL's metric names).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import Model  # noqa: E402
from trainer_reference import Optimizer, add_training_args, read_jsonl, trainable  # noqa: E402


def rows(examples, pad):
    seqs = [list(e["prompt_ids"]) + list(e[side]) for side in ("chosen_ids", "rejected_ids") for e in examples]
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.int64)
    attention = torch.zeros((len(seqs), width), dtype=torch.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        attention[i, :len(s)] = 1
    return ids, attention


def main():
    p = argparse.ArgumentParser()
    add_training_args(p)
    p.add_argument("--center", type=float, help="center_rewards_coefficient (default: None)")
    p.add_argument("--pad", type=int, default=0, help="the pad id rows are padded and pooled by")
    a = p.parse_args()
    examples = read_jsonl(a.data)
    ids, attention = rows(examples, a.pad)
    n = len(examples)
    # transformers: the rightmost token that is not the pad id
    last = (torch.arange(ids.shape[1]) * (ids != a.pad)).argmax(-1)

    model = Model(a.model, a.adapter)
    if "score.weight" not in model.w:
        raise SystemExit(f"{a.model} has no score head: give a ...ForSequenceClassification model")
    params = trainable(model, a.adapter)
    if a.adapter:  # a SEQ_CLS adapter also trains the head it saves (modules_to_save)
        params["score.weight"] = model.w["score.weight"].requires_grad_(True)
    optimizer = Optimizer(params, a)
    for _ in range(a.steps):
        scores = model.forward(ids, attention).float()[torch.arange(ids.shape[0]), last].squeeze(-1)
        chosen, rejected = scores[:n], scores[n:]
        loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
        if a.center is not None:
            loss = loss + a.center * torch.mean((chosen + rejected) ** 2)
        loss.backward()
        norm = optimizer.step()
        s = scores.detach()
        row = {"loss": loss.item(), "grad_norm": norm.item(),
               "accuracy": (chosen > rejected).float().mean().item(),
               "margin": (chosen - rejected).mean().item(),
               "min_reward": s.min().item(), "mean_reward": s.mean().item(), "max_reward": s.max().item()}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
