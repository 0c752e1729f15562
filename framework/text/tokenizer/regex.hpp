// The regular expressions of tokenizer.json (Split and Replace patterns), matched through PCRE2
// with the semantics tokenizers.js gives them.
//
// tokenizer.json patterns are written for Oniguruma (the Rust `tokenizers` crate). tokenizers.js
// rewrites them into JavaScript regexes (\s becomes \p{White_Space}, `(?i:` folds ASCII letters
// only, `X{3}+` repeats the group, possessive `++` is greedy, ...); oniguruma_to_pcre2 performs the
// same rewrite into PCRE2 syntax, so both engines see the same expression. Matching walks the text
// as JavaScript's matchAll / split / replaceAll do (an empty match advances one code point).
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alignkit::tokenizer {

// A pattern that cannot be translated or compiled; the message says why (no location: the caller
// adds the file and JSON path).
struct RegexError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// tokenizers.js's rewrite of an Oniguruma pattern, in PCRE2 syntax.
std::string oniguruma_to_pcre2(std::string_view pattern);
// A literal string as a PCRE2 pattern.
std::string escape_for_pcre2(std::string_view literal);

// JavaScript's `\s` (WhiteSpace + LineTerminator), for the fixed patterns tokenizers.js writes
// with the native class rather than through the rewrite above.
inline constexpr const char* kJsWhitespaceClass =
    "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}\\x{FEFF}";

class Regex {
 public:
  using Span = std::pair<std::size_t, std::size_t>;  // [begin, end) in bytes

  // Compiles PCRE2 source (UTF mode, JIT when available). Throws RegexError.
  explicit Regex(const std::string& pcre2_source);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Every match, left to right, as String.prototype.matchAll finds them (empty ones included).
  // `text` must be valid UTF-8. Appends to `matches`.
  void find_all(std::string_view text, std::vector<Span>& matches) const;
  // String.prototype.split with this pattern: the pieces between matches plus the text of each
  // capture group that took part (in JavaScript's order).
  std::vector<std::string> split(std::string_view text) const;
  // String.prototype.replaceAll(pattern, replacement), with its $$, $&, $`, $' and $n.
  std::string replace_all(std::string_view text, std::string_view replacement) const;

  const std::string& source() const { return source_; }

 private:
  struct Compiled;
  std::string source_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace alignkit::tokenizer
