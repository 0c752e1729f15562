"""What transformers' Trainer does around a method's loss, shared by the trainer-step references
(trl_dpo_step.py, trl_reward_step.py), written from its semantics: the arguments every step
reference takes, the trainable tensors (an adapter's LoRA factors, or every weight), and AdamW with
transformers' parameter groups (no weight decay on biases and norm weights) under a linear
schedule without warmup, each step clipping the global gradient norm first."""
import json

import torch


def add_training_args(p):
    p.add_argument("--model", required=True)
    p.add_argument("--adapter")
    p.add_argument("--data", required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--lr", type=float, required=True)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0)


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def trainable(model, with_adapter):
    """The LoRA factors when an adapter trains, else every weight; set to require gradients."""
    params = ({f"{m}.lora_{k}": t for m, ab in model.lora.items() for k, t in ab.items()} if with_adapter
              else dict(model.w))
    for t in params.values():
        t.requires_grad_(True)
    return params


class Optimizer:
    def __init__(self, params, args):
        def decayed(name, t):
            return t.dim() >= 2 and "norm" not in name and "bias" not in name

        self.params = list(params.values())
        self.max_grad_norm = args.max_grad_norm
        self.adamw = torch.optim.AdamW(
            [{"params": [t for n, t in params.items() if decayed(n, t)], "weight_decay": args.weight_decay},
             {"params": [t for n, t in params.items() if not decayed(n, t)], "weight_decay": 0.0}],
            lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
        steps = args.steps
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.adamw, lambda s: max(0.0, (steps - s) / max(1, steps)))

    def step(self):
        """Clips, steps and zeroes the gradients; returns the norm before clipping."""
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
        self.adamw.step()
        self.schedule.step()
        self.adamw.zero_grad()
        return norm
