#!/usr/bin/env bash
# Every method recipe on the quickstart's task (recipes/{dpo,ipo,kto,orpo,simpo,cpo}.toml), each
# from the quickstart's SFT model, then the task_api judge on the same 100 held-out requests, and
# each run's last training metrics: one table. Runs the quickstart first when its SFT model is
# missing. CPU, deterministic, ~10 minutes on 2 cores. See docs/quickstart.md ("Each method").
#
# ALIGNKIT_BIN=path/to/alignkit skips the set-up and uses that binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ALIGNKIT_BIN:-}" ]; then
  bash scripts/setup.sh runtime
  ALIGNKIT_BIN=build/bin/alignkit
fi
export ALIGNKIT_BIN
[ -f runs/quickstart/sft/final/model/model.safetensors ] || bash scripts/quickstart.sh
methods=(dpo ipo kto orpo simpo cpo)
for m in "${methods[@]}"; do
  echo "== $m: recipes/$m.toml -> runs/$m"
  rm -rf "runs/$m"
  start=$SECONDS
  "$ALIGNKIT_BIN" train "recipes/$m.toml" 2>&1 | grep -E "^(step|stage|memory|error)" | tail -2
  echo $((SECONDS - start)) > "runs/$m/train-seconds.txt"
  "$ALIGNKIT_BIN" eval "recipes/$m.toml" --model "runs/$m/final/model" --json > "runs/$m/judge.json"
done
python3 - "${methods[@]}" <<'PY'
import json, sys
sft = json.load(open("runs/quickstart/score-sft.json"))
print(f"\njudge '{sft['judge']}' on {sft['prompts']} held-out requests, from the quickstart's SFT model ({sft['score']:.3f})")
print(f"  {'method':<8}{'create':>8}{'private':>9}{'overall':>9}{'loss':>9}{'acc':>7}{'margin':>9}{'train s':>9}")
for m in sys.argv[1:]:
    s = json.load(open(f"runs/{m}/judge.json"))
    rows = [json.loads(line) for line in open(f"runs/{m}/metrics.jsonl") if '"loss"' in line]
    last = rows[-1] if rows else {}
    seconds = open(f"runs/{m}/train-seconds.txt").read().strip()
    def num(key):
        return f"{last[key]:.3f}" if key in last else "-"
    cat = s["categories"]
    print(f"  {m:<8}{cat['create']['score']:>8.3f}{cat['private']['score']:>9.3f}{s['score']:>9.3f}"
          f"{num('loss'):>9}{num('rewards/accuracies'):>7}{num('rewards/margins'):>9}{seconds:>9}")
PY
