// Reading JSON that a user hands alignkit (config.json, tokenizer files, adapter configs, data
// rows, messages files): a syntax error, or an array or object nested deeper than kMaxJsonDepth,
// becomes a DiagnosticError at file:line:column with the offending line, never a crash. The depth
// is refused while parsing, before the deep value is built, so nothing downstream (a recursive
// reader, a chat template's value conversion) ever sees it (docs/robustness.md).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace alignkit {

// Arrays and objects nested deeper than this are refused. Model, tokenizer and data files nest
// fewer than 10 levels; a thousand leaves room for any real file while every recursive reader of
// the result stays far from the stack's end.
inline constexpr int kMaxJsonDepth = 1000;

// Where a JSON text came from, for errors: a path or a pseudo-file such as "--text", and the line
// of that file the text starts on (a JSONL row's line number).
struct JsonSource {
  std::string file;
  int first_line = 1;
};

// Parses `text`; DiagnosticError located at the error's line and column otherwise.
nlohmann::json parse_json(std::string_view text, const JsonSource& source);
// The same with object keys kept in the file's order (messages and tool schemas, as Hugging
// Face's `tojson` prints them).
nlohmann::ordered_json parse_ordered_json(std::string_view text, const JsonSource& source);

// Reads the file at `path` and parses it; DiagnosticError naming the file when it cannot be read.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace alignkit
