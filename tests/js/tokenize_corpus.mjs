// The oracle for tests/tokenizer: encodes and decodes a corpus with tokenizers.js.
//   node tokenize_corpus.mjs TOKENIZER_DIR CORPUS.json OUT.json
// CORPUS.json is a JSON array of base64 strings (the raw UTF-8 bytes, possibly invalid: they are
// decoded as the WHATWG decoder does, replacing bad sequences with U+FFFD). OUT.json is an array
// with, per string: ids (add_special_tokens on), plain (off), decoded = decode(plain) and
// skipped = decode(ids, {skip_special_tokens: true}). decode([]) is "" (tokenizers.js throws).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, corpusPath, outPath] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node tokenize_corpus.mjs TOKENIZER_DIR CORPUS.json OUT.json");
  process.exit(2);
}
const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
let config = {};
try {
  config = readJson(join(dir, "tokenizer_config.json"));
} catch (error) {
  if (error.code !== "ENOENT") throw error;
}
const tokenizer = new Tokenizer(readJson(join(dir, "tokenizer.json")), config);
const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const decode = (ids, options) => (ids.length === 0 ? "" : tokenizer.decode(ids, options));

const results = readJson(corpusPath).map((encoded) => {
  const text = utf8.decode(Buffer.from(encoded, "base64"));
  const ids = tokenizer.encode(text).ids;
  const plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
  return { ids, plain, decoded: decode(plain), skipped: decode(ids, { skip_special_tokens: true }) };
});
writeFileSync(outPath, JSON.stringify(results));
