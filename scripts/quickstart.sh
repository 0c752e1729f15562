#!/usr/bin/env bash
# The main job: set up and build alignkit, then the quickstart. A fresh tiny model learns the
# "Task API assistant" task (JSON task objects for create requests, refusals for requests for
# someone's private data): supervised fine-tuning, then DPO, with the task_api judge's score on
# held-out requests before, after SFT and after DPO. One recipe, recipes/quickstart.toml, holds
# both stages. CPU only, no downloads, a few minutes; everything lands in runs/quickstart/, which a
# rerun replaces. See docs/quickstart.md.
#
# ALIGNKIT_BIN=path/to/alignkit skips the set-up and uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ALIGNKIT_BIN:-}" ]; then
  bash scripts/setup.sh runtime
  ALIGNKIT_BIN=build/bin/alignkit
fi
alignkit() { "$ALIGNKIT_BIN" "$@"; }

runs=runs/quickstart
rm -rf "$runs"
mkdir -p "$runs"
start=$SECONDS
alignkit recipe check recipes/quickstart.toml

echo "== a fresh model: $runs/base"
alignkit init-model --preset tiny --out "$runs/base" --seed 0
alignkit eval recipes/quickstart.toml --model "$runs/base" --json > "$runs/score-before.json"

echo "== one run, two stages: SFT on the chosen answers -> $runs/sft, then DPO from the SFT model -> $runs/dpo"
alignkit train recipes/quickstart.toml
alignkit eval recipes/quickstart.toml --model "$runs/sft/final/model" --json > "$runs/score-sft.json"
alignkit eval recipes/quickstart.toml --model "$runs/dpo/final/model" --json --show 4 \
  --out "$runs/dpo-completions.jsonl" > "$runs/score-dpo.json"

python3 - "$runs" $((SECONDS - start)) <<'PY'
import json, sys
runs, seconds = sys.argv[1], sys.argv[2]
rows = [("before", "score-before"), ("after SFT", "score-sft"), ("after SFT + DPO", "score-dpo")]
scores = {label: json.load(open(f"{runs}/{name}.json")) for label, name in rows}
first = scores["before"]
print(f"\njudge '{first['judge']}' on {first['prompts']} held-out requests (mean score in [0, 1])")
print(f"  {'':<17}{'create':>8}{'private':>9}{'overall':>9}")
for label, _ in rows:
    s = scores[label]
    cat = s["categories"]
    print(f"  {label:<17}{cat['create']['score']:>8.3f}{cat['private']['score']:>9.3f}{s['score']:>9.3f}")
print(f"\nquickstart done in {seconds} s; models, metrics and completions in {runs}/")
PY
