// UTF-8 helpers for the tokenizer: walking code points, repairing invalid bytes the way a
// browser's TextDecoder does, and JavaScript's notion of whitespace (String.prototype.trim),
// which tokenizers.js uses for lstrip/rstrip and the Strip normalizer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace alignkit::tokenizer {

// The code point starting at text[pos] and its length in bytes. The text must be valid UTF-8.
struct CodePoint {
  char32_t value;
  int length;
};
CodePoint decode_code_point(std::string_view text, std::size_t pos);

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte).
inline int utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

void append_code_point(std::string& out, char32_t cp);

bool is_valid_utf8(std::string_view bytes);
// Bytes as text, each invalid sequence replaced by U+FFFD exactly as the WHATWG UTF-8 decoder
// (JavaScript's TextDecoder with fatal=false) replaces it: one U+FFFD per maximal subpart.
std::string decode_utf8_lossy(std::string_view bytes);

// JavaScript's WhiteSpace and LineTerminator: what String.prototype.trim removes.
bool is_js_whitespace(char32_t cp);
std::string_view js_trim_start(std::string_view text);
std::string_view js_trim_end(std::string_view text);

}  // namespace alignkit::tokenizer
