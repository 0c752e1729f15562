#!/usr/bin/env bash
# Forward and forward+backward tokens/s of a ~125M Llama-shaped model (init-model's small-125m)
# at sequence length 512: alignkit against the eager PyTorch reference on the same weights, in
# one run, with the share of this machine's fp32 matrix-product rate the training step reaches.
#   bench/model_throughput.sh [BUILD_DIR] [SEQ] [PRESET]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
seq="${2:-512}"
preset="${3:-small-125m}"
ninja -C "$build" model_throughput alignkit_cli runtime >/dev/null
model="$root/bench/.cache/$preset"
[ -f "$model/model.safetensors" ] || "$build/bin/alignkit" init-model --preset "$preset" --out "$model" 2>/dev/null
threads="$(nproc)"
ours="$("$build/bin/model_throughput" "$model" "$seq" 1 3 256)"
ours_full="$("$build/bin/model_throughput" "$model" "$seq" 1 3 0)"
# The reference twice: as a user runs Debian's torch (its default threads), and on every core.
as_is="$(/usr/bin/python3 "$root/bench/model_throughput.py" "$model" "$seq" 1 3)"
tuned="$(/usr/bin/python3 "$root/bench/model_throughput.py" "$model" "$seq" 1 3 "$threads")"
python3 - "$ours" "$as_is" "$tuned" "$ours_full" <<'PY'
import json, sys
ours, as_is, tuned, full = (json.loads(a) for a in sys.argv[1:5])
print(f'model: {ours["params"] / 1e6:.0f}M parameters, sequence {ours["seq"]}, batch {ours["batch"]}; '
      f'fp32 matmul rate {ours["matmul_gflops"]:.1f} GFLOP/s on {ours["threads"]} threads')
print(f'{"":28}{"forward tok/s":>15}{"fwd+bwd tok/s":>15}')
print(f'{"alignkit (logprob_chunk 256)":28}{ours["forward_tokens_per_s"]:15.1f}{ours["train_tokens_per_s"]:15.1f}')
print(f'{"alignkit (logprob_chunk 0)":28}{full["forward_tokens_per_s"]:15.1f}{full["train_tokens_per_s"]:15.1f}')
for name, ref in ((f'reference ({as_is["threads"]} threads)', as_is), (f'reference ({tuned["threads"]} threads)', tuned)):
    print(f'{name:28}{ref["forward_tokens_per_s"]:15.1f}{ref["train_tokens_per_s"]:15.1f}'
          f'   ratio {ours["forward_tokens_per_s"] / ref["forward_tokens_per_s"]:.2f}x / '
          f'{ours["train_tokens_per_s"] / ref["train_tokens_per_s"]:.2f}x '
          f'(chunk 0: {full["train_tokens_per_s"] / ref["train_tokens_per_s"]:.2f}x)')
for name, run in (("chunk 256", ours), ("chunk 0", full)):
    print(f'training step ({name}): {run["train_gflops"]:.1f} GFLOP/s = '
          f'{100 * run["train_gflops"] / ours["matmul_gflops"]:.0f}% of the matmul rate (6 x parameters x tokens)')
PY
