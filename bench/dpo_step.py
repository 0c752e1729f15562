#!/usr/bin/python3
"""One DPO configuration of bench/dpo_step.sh: the same model, data and hyperparameters through
`alignkit train` and through the eager PyTorch reference of TRL's step
(tests/reference/trl_dpo_step.py), the reference run twice (as a user runs Debian's torch, and
tuned); prints steps/s, peak RSS and their ratios, and the memory planner's CPU prediction.

What is timed: the optimizer steps after WARMUP untimed ones, set-up excluded on both sides.
alignkit: each step's time from its progress line (`logging_steps = 1`; the line's tok/s covers
the step alone, logging excluded) and the policy tokens of a step (a pair counts its prompt
twice, as that line counts). Reference: the script's per-step wall time (`--timing`): policy
forward, the frozen copy's forward, loss, backward, clipping, AdamW, schedule. Peak RSS: the
whole process, set-up included (/usr/bin/time's maximum resident set size).

usage: dpo_step.py --alignkit BIN --model DIR --work DIR [--pairs 2] [--length 512]
                   [--steps 3] [--warmup 1] [--label NAME]
Needs no torch itself; runs the reference with Debian's /usr/bin/python3.
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE = os.path.join(ROOT, "tests", "reference", "trl_dpo_step.py")
EOS = 2  # init-model's tokenizer: EOS 2, pad 0; the data uses ids 3..255, none of them special
LR, BETA = 1e-5, 0.1


def write_pairs(path, pairs, length):
    """Token-id pairs whose rows are exactly `length` tokens once EOS is appended: a prompt of half
    the length, completions of the rest. Seeded, so every run trains on the same data."""
    rng = random.Random(0)
    prompt_len = length // 2
    completion_len = length - prompt_len - 1
    with open(path, "w") as f:
        for _ in range(pairs):
            ids = lambda n: [rng.randrange(3, 256) for _ in range(n)]  # noqa: E731
            f.write(json.dumps({"prompt_ids": ids(prompt_len), "chosen_ids": ids(completion_len),
                                "rejected_ids": ids(completion_len)}) + "\n")
    return pairs * (2 * prompt_len + 2 * (completion_len + 1))


def write_recipe(path, model, pairs, length, steps):
    with open(path, "w") as f:
        f.write(f"""[run]
output_dir = "run"
seed = 0
device = "cpu"
[model]
path = "{model}"
[data]
format = "jsonl"
path = "pairs.jsonl"
[method]
name = "dpo"
beta = {BETA}
[training]
max_steps = {steps}
per_device_train_batch_size = {pairs}
max_length = {length}
logging_steps = 1
[optimizer]
learning_rate = {LR}
[scheduler]
name = "linear"
[output]
save_model = false
""")


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def measured(argv, cwd, env=None):
    """Runs argv under /usr/bin/time; returns (stdout, stderr, peak RSS in bytes, load averages)."""
    rss_file = os.path.join(cwd, "rss.txt")
    before = loadavg()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv, capture_output=True, text=True,
                       env=env, cwd=cwd)
    after = loadavg()
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    with open(rss_file) as f:
        rss = int(f.read().split()[-1]) * 1024
    return p.stdout, p.stderr, rss, (before, after)


def run_alignkit(binary, work, tokens_per_step, warmup):
    out, err, rss, load = measured([binary, "train", "recipe.toml"], work)
    with open(os.path.join(work, "train.log"), "w") as f:  # its progress lines, to read the timing again
        f.write(err)
    if not re.search(r" 0 truncated", err):
        sys.exit(f"alignkit truncated the bench's rows:\n{err}")
    seconds, losses = [], []
    for m in re.finditer(r"^step (\d+)/\d+ \| loss ([-\d.e+]+) .*\| (\d+) tok/s", err, re.M):
        losses.append(float(m.group(2)))
        if int(m.group(1)) > warmup:
            seconds.append(tokens_per_step / int(m.group(3)))
    return {"seconds": seconds, "rss": rss, "load": load, "first_loss": losses[0], "last_loss": losses[-1]}


def run_reference(model, work, steps, warmup, tuned):
    argv = ["/usr/bin/python3", REFERENCE, "--model", model, "--data", os.path.join(work, "pairs.jsonl"),
            "--steps", str(steps), "--lr", str(LR), "--beta", str(BETA), "--eos", str(EOS),
            "--reference-each-step", "--timing"]
    env = dict(os.environ)
    if tuned:  # the two settings issue 8 names: Debian's torch defaults to one thread, glibc trims freed memory
        argv += ["--threads", "2"]
        env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1"
    out, _, rss, load = measured(argv, work, env)
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {"seconds": [r["seconds"] for r in rows[warmup:]], "rss": rss, "load": load,
            "first_loss": rows[0]["loss"], "last_loss": rows[-1]["loss"]}


def planned_peak(binary, work):
    p = subprocess.run([binary, "plan", "recipe.toml", "--device", "cpu", "--json"], capture_output=True, text=True,
                       cwd=work)
    if p.returncode != 0:
        sys.exit(f"alignkit plan failed ({p.returncode}):\n{p.stderr}")
    plan = json.loads(p.stdout)
    return plan["peak_bytes"], plan["peak_phase"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--alignkit", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--pairs", type=int, default=2)
    p.add_argument("--length", type=int, default=512)
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before them")
    p.add_argument("--label", default="")
    a = p.parse_args()
    model, a.work = os.path.abspath(a.model), os.path.abspath(a.work)
    os.makedirs(a.work, exist_ok=True)
    total = a.warmup + a.steps
    tokens = write_pairs(os.path.join(a.work, "pairs.jsonl"), a.pairs, a.length)
    write_recipe(os.path.join(a.work, "recipe.toml"), model, a.pairs, a.length, total)
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)

    runs = [("alignkit train", run_alignkit(os.path.abspath(a.alignkit), a.work, tokens, a.warmup)),
            ("reference as-is (1 thread)", run_reference(model, a.work, total, a.warmup, tuned=False)),
            ("reference tuned (2 thr, hugetlb)", run_reference(model, a.work, total, a.warmup, tuned=True))]
    plan, phase = planned_peak(os.path.abspath(a.alignkit), a.work)

    mib = 1 << 20
    print(f"{a.label or os.path.basename(model)}: hidden {cfg['hidden_size']}, {cfg['num_hidden_layers']} layers, "
          f"vocab {cfg['vocab_size']}; DPO (sigmoid, beta {BETA}), full fine-tuning, frozen reference copy, fp32; "
          f"{a.pairs} pairs x {a.length} tokens per step; {a.steps} steps timed after {a.warmup} warm-up")
    print(f"{'':34}{'steps/s':>9}{'s/step':>9}{'peak RSS MiB':>14}{'loss 1st->last':>20}{'load avg':>14}")
    for name, r in runs:
        r["rate"] = len(r["seconds"]) / sum(r["seconds"])
        print(f"{name:34}{r['rate']:9.3f}{1 / r['rate']:9.3f}{r['rss'] / mib:14.0f}"
              f"{r['first_loss']:10.4f}->{r['last_loss']:.4f}{r['load'][0]:8.2f}->{r['load'][1]:.2f}")
    ours = runs[0][1]
    for name, r in runs[1:]:
        print(f"alignkit / {name}: {ours['rate'] / r['rate']:.2f}x steps/s, {ours['rss'] / r['rss']:.2f}x peak RSS")
    print(f"planner (--device cpu): {plan / mib:.0f} MiB ({phase}) vs alignkit's measured {ours['rss'] / mib:.0f} MiB: "
          f"planned / measured = {plan / ours['rss']:.2f} ({100 * (plan - ours['rss']) / ours['rss']:+.1f}%)")


if __name__ == "__main__":
    main()
