#include "pattern.hpp"

#include <fmt/format.h>

namespace alignkit::tokenizer {

std::string Pattern::replace_all(std::string_view text, std::string_view content) const {
  if (!literal_ || literal_->empty() || content.find('$') != std::string_view::npos)
    return regex_.replace_all(text, content);
  std::string out;
  std::size_t copied = 0;
  for (auto at = text.find(*literal_); at != std::string_view::npos; at = text.find(*literal_, copied)) {
    out.append(text.substr(copied, at - copied));
    out.append(content);
    copied = at + literal_->size();
  }
  if (copied == 0) return std::string(text);
  out.append(text.substr(copied));
  return out;
}

Pattern parse_pattern(const JsonNode& node, bool invert) {
  node.expect_object();
  if (const auto literal = node.find("String")) {
    const std::string text = literal->as_string();
    const std::string escaped = escape_for_pcre2(text);
    return Pattern(Regex(invert ? escaped : "(" + escaped + ")"), text);
  }
  if (const auto regex = node.find("Regex")) {
    const std::string source = regex->as_string();
    try {
      return Pattern(Regex(oniguruma_to_pcre2(source)), std::nullopt);
    } catch (const RegexError& e) {
      regex->fail(fmt::format("invalid regular expression: {}", e.what()));
    }
  }
  node.fail("expected a pattern: an object with a `String` or a `Regex` member");
}

}  // namespace alignkit::tokenizer
