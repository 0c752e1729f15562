// tokenizers.js's encode throughput, for bench/tokenizer_throughput.sh.
//   node tokenize_bench.mjs TOKENIZER_DIR TEXT_FILE   -> one line of JSON
// Timed like bench/tokenizer_throughput.cpp: one cold encode, then the best of five.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, textPath] = process.argv.slice(2);
const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const text = readFileSync(textPath, "utf8");
let start = performance.now();
const tokenizer = new Tokenizer(readJson(join(dir, "tokenizer.json")), readJson(join(dir, "tokenizer_config.json")));
const loadSeconds = (performance.now() - start) / 1000;
const timeEncode = () => {
  const t0 = performance.now();
  const n = tokenizer.encode(text).ids.length;
  return [(performance.now() - t0) / 1000, n];
};
const [cold, tokens] = timeEncode();
let best = Infinity;
for (let run = 0; run < 5; ++run) best = Math.min(best, timeEncode()[0]);
const bytes = Buffer.byteLength(text, "utf8");
console.log(JSON.stringify({ bytes, tokens, load_seconds: loadSeconds, cold_seconds: cold, seconds: best,
  mb_per_s: bytes / 1e6 / best, cold_mb_per_s: bytes / 1e6 / cold }));
