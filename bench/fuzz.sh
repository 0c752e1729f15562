#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz: the parsers of files a user hands alignkit) for SECONDS
# each, one after the other, and prints each one's executions and outcome. New inputs go to
# fuzz-work/<name>/ beside the build folder (kept between runs, so a second run continues where the
# first stopped); a crash is written to fuzz-work/<name>-crash-* and stops that target.
#   bench/fuzz.sh [SECONDS] [BUILD_DIR] [TARGET ...]
# SECONDS defaults to 60; BUILD_DIR to build/; TARGETs to all of them (safetensors tokenizer
# chat_template jsonl hf_config recipe). For an hour each: bench/fuzz.sh 3600.
# To keep a crash as a regression input: copy it into tests/fuzz/corpus/<name>/regression_<what>.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
build="$(cd "${2:-$root/build}" && pwd)"
shift $(( $# > 2 ? 2 : $# ))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors tokenizer chat_template jsonl hf_config recipe)
binary() { if [ "$1" = safetensors ]; then echo "$build/tests/safetensors_fuzz"; else echo "$build/tests/fuzz/$1_fuzz"; fi; }
ninja -C "$build" fuzzers $(for t in "${targets[@]}"; do [ "$t" = safetensors ] || echo "fuzz_$t"; done) >/dev/null
work="$build/fuzz-work"
mkdir -p "$work"
printf '%-14s %8s %14s %10s  %s\n' target seconds executions "exec/s" outcome
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log="$work/$t.log"
  set +e
  "$(binary "$t")" "$work/$t" "$root/tests/fuzz/corpus/$t" -max_total_time="$seconds" -timeout=20 \
    -print_final_stats=1 -artifact_prefix="$work/$t-" > "$log" 2>&1
  code=$?
  set -e
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  if [ "$code" -eq 0 ]; then outcome="no crash"; else outcome="CRASH (exit $code): $(grep -m1 -o "$work/$t-[a-z]*-[0-9a-f]*" "$log" || echo "see $log")"; status=1; fi
  printf '%-14s %8s %14s %10s  %s\n' "$t" "$seconds" "${runs:-?}" "${rate:-?}" "$outcome"
done
exit $status
