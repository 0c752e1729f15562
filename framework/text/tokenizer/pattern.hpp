// A tokenizer.json pattern, `{"String": "..."}` or `{"Regex": "..."}`, as tokenizers.js's
// create_pattern builds it, with a fast path for replacing a literal string.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "json_reader.hpp"
#include "regex.hpp"

namespace alignkit::tokenizer {

class Pattern {
 public:
  Pattern(Regex regex, std::optional<std::string> literal) : regex_(std::move(regex)), literal_(std::move(literal)) {}

  const Regex& regex() const { return regex_; }
  // String.prototype.replaceAll(pattern, content).
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  Regex regex_;
  std::optional<std::string> literal_;  // the String of a String pattern
};

// `invert` is tokenizers.js's flag: a String pattern is wrapped in a capture group when it is
// false (which makes split() keep the separators). Bad regexes are refused at `node.Regex`.
Pattern parse_pattern(const JsonNode& node, bool invert);

}  // namespace alignkit::tokenizer
