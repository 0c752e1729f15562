#!/usr/bin/python3
"""Oracle for the scheduler plugins: transformers' learning-rate schedules, written out in Python
from the formulas in transformers' optimization.py (get_constant_schedule_with_warmup,
get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup,
get_cosine_with_min_lr_schedule_with_warmup, get_wsd_schedule) and the warmup rule of
TrainingArguments.get_warmup_steps, compared step by step with `alignkit recipe schedule`.

usage: check_schedules.py ALIGNKIT_BINARY SCRATCH_DIR
"""
import math
import os
import subprocess
import sys

TOLERANCE = 1e-12  # the same few double operations on both sides


def warmup_steps(total, steps, ratio):
    return steps if steps > 0 else math.ceil(total * ratio)


def warm(step, warmup):
    return float(step) / float(max(1, warmup))


def constant(step, total, warmup, **_):
    return warm(step, warmup) if step < warmup else 1.0


def linear(step, total, warmup, **_):
    if step < warmup:
        return warm(step, warmup)
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def cosine(step, total, warmup, num_cycles=0.5, min_lr_rate=0.0, **_):
    if step < warmup:
        return warm(step, warmup)
    progress = float(step - warmup) / float(max(1, total - warmup))
    factor = 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress))
    return max(0.0, factor * (1 - min_lr_rate) + min_lr_rate)


def wsd(step, total, warmup, num_decay_steps=None, decay_ratio=None, warmup_type="linear",
        decay_type="cosine", min_lr_ratio=0.0, num_cycles=0.5, **_):
    decay = num_decay_steps if num_decay_steps is not None else math.ceil(decay_ratio * total)
    stable = total - warmup - decay
    shapes_up = {"linear": lambda p: p, "cosine": lambda p: 0.5 * (1.0 - math.cos(math.pi * p)),
                 "1-sqrt": lambda p: 1.0 - math.sqrt(1.0 - p)}
    shapes_down = {"linear": lambda p: 1.0 - p,
                   "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * p)),
                   "1-sqrt": lambda p: 1.0 - math.sqrt(p)}
    if step < warmup:
        f = shapes_up[warmup_type](float(step) / float(max(1, warmup)))
        return max(0.0, f * (1.0 - min_lr_ratio) + min_lr_ratio)
    if step < warmup + stable:
        return 1.0
    if step < warmup + stable + decay:
        f = shapes_down[decay_type](float(step - warmup - stable) / float(max(1, decay)))
        return max(0.0, f * (1.0 - min_lr_ratio) + min_lr_ratio)
    return min_lr_ratio


CASES = [
    ("constant", 10, {}, {}),
    ("constant", 37, {"warmup_steps": 5}, {}),
    ("linear", 100, {}, {}),
    ("linear", 100, {"warmup_ratio": 0.03}, {}),
    ("linear", 7, {"warmup_steps": 7}, {}),
    ("cosine", 50, {"warmup_steps": 3}, {}),
    ("cosine", 1000, {"warmup_ratio": 0.1}, {"min_lr_rate": 0.1}),
    ("cosine", 64, {}, {"num_cycles": 1.5}),
    ("cosine", 1, {}, {}),
    ("warmup_stable_decay", 100, {"warmup_steps": 10}, {"num_decay_steps": 20}),
    ("warmup_stable_decay", 333, {"warmup_ratio": 0.05},
     {"decay_ratio": 0.2, "warmup_type": "cosine", "decay_type": "1-sqrt", "min_lr_ratio": 0.05}),
    ("warmup_stable_decay", 40, {}, {"num_decay_steps": 40, "decay_type": "linear"}),
    ("warmup_stable_decay", 90, {"warmup_steps": 30}, {"num_decay_steps": 30, "warmup_type": "1-sqrt",
                                                       "num_cycles": 1.0}),
]

REFERENCE = {"constant": constant, "linear": linear, "cosine": cosine, "warmup_stable_decay": wsd}


def toml_value(v):
    return f'"{v}"' if isinstance(v, str) else repr(v)


def main():
    binary, scratch = sys.argv[1], sys.argv[2]
    os.makedirs(scratch, exist_ok=True)
    failures = 0
    for index, (name, total, host, options) in enumerate(CASES):
        lines = ["[training]", f"max_steps = {total}", "[optimizer]", "learning_rate = 0.001",
                 "[scheduler]", f'name = "{name}"']
        lines += [f"{k} = {toml_value(v)}" for k, v in {**host, **options}.items()]
        recipe = os.path.join(scratch, f"case{index}.toml")
        with open(recipe, "w") as f:
            f.write("\n".join(lines) + "\n")
        run = subprocess.run([binary, "recipe", "schedule", recipe], capture_output=True, text=True)
        if run.returncode != 0:
            print(f"case {index} ({name}): alignkit failed:\n{run.stderr}")
            failures += 1
            continue
        rows = run.stdout.strip().splitlines()[1:]
        warmup = warmup_steps(total, host.get("warmup_steps", 0), host.get("warmup_ratio", 0.0))
        worst = 0.0
        for step in range(total):
            got_step, got_factor, got_lr = rows[step].split(",")
            expected = REFERENCE[name](step, total, warmup, **options)
            worst = max(worst, abs(float(got_factor) - expected), abs(float(got_lr) - expected * 0.001))
            if int(got_step) != step:
                worst = math.inf
        status = "ok" if worst <= TOLERANCE and len(rows) == total else "FAILED"
        failures += status != "ok"
        print(f"{status}: {name} total={total} {host} {options}: max |diff| {worst:.3g} over {len(rows)} steps")
    print(f"{len(CASES) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
