// Renders chat templates with @huggingface/jinja, the way transformers.js applies a chat template:
// `new Template(template).render(context)`. The C++ tests compare our renders with these.
//
//   node render_chat_template.mjs cases.json renders.json
// cases.json: [{"name": ..., "template": ..., "context": {...}}, ...]
// renders.json: [{"name": ..., "output": "..."} or {"name": ..., "error": "..."}, ...] in the same order.
import { readFileSync, writeFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const [inputPath, outputPath] = process.argv.slice(2);
if (!inputPath || !outputPath) {
  console.error("usage: node render_chat_template.mjs cases.json renders.json");
  process.exit(2);
}
const cases = JSON.parse(readFileSync(inputPath, "utf8"));
const parsed = new Map();  // each distinct template is parsed once, as a tokenizer would
const results = cases.map(({ name, template, context }) => {
  try {
    let compiled = parsed.get(template);
    if (compiled === undefined) {
      try {
        compiled = new Template(template);
      } catch (error) {
        compiled = error instanceof Error ? error : new Error(String(error));
      }
      parsed.set(template, compiled);
    }
    if (compiled instanceof Error) throw compiled;
    const output = compiled.render(context);
    // A template can cut a surrogate pair in half (JavaScript strings are UTF-16); write U+FFFD
    // for such halves, as our UTF-8 renderer does.
    return { name, output: output.toWellFormed ? output.toWellFormed() : output };
  } catch (error) {
    return { name, error: String(error?.message ?? error) };
  }
});
writeFileSync(outputPath, JSON.stringify(results));
