#!/usr/bin/env bash
# The DPO step of issue 8: the same configuration (model weights, token-id data, hyperparameters)
# through `alignkit train` and through the eager PyTorch reference of TRL's step on Debian's
# torch, run as a user runs it and tuned; steps/s, peak RSS and their ratios, and the memory
# planner's CPU prediction against alignkit's peak RSS. Two models, 2 pairs x 512 tokens:
# init-model's tiny and small-125m (~110M parameters). bench/dpo_step.py says what is timed.
#   bench/dpo_step.sh [--smoke] [BUILD_DIR]
# --smoke: the tiny model, one step, nothing timed worth reading: checks that the bench runs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
smoke=0
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
build="${1:-$root/build}"
ninja -C "$build" alignkit_cli runtime >/dev/null
# Stable model folders, shared with model_throughput.sh; the data and recipes are rewritten each run.
init() {
  local model="$root/bench/.cache/$1"
  [ -f "$model/model.safetensors" ] || "$build/bin/alignkit" init-model --preset "$1" --out "$model" 2>/dev/null
  echo "$model"
}
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(uptime | sed 's/^ *//')"
if [ "$smoke" = 1 ]; then
  python3 "$root/bench/dpo_step.py" --alignkit "$build/bin/alignkit" --model "$(init tiny)" \
    --work "$root/bench/.cache/dpo-smoke" --length 64 --steps 1 --warmup 0 --label "tiny (smoke)"
  exit 0
fi
python3 "$root/bench/dpo_step.py" --alignkit "$build/bin/alignkit" --model "$(init tiny)" \
  --work "$root/bench/.cache/dpo-tiny" --steps 20 --warmup 5 --label tiny
echo
python3 "$root/bench/dpo_step.py" --alignkit "$build/bin/alignkit" --model "$(init small-125m)" \
  --work "$root/bench/.cache/dpo-small-125m" --steps 3 --warmup 1 --label small-125m
echo "after: $(uptime | sed 's/^ *//')"
