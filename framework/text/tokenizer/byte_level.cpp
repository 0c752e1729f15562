#include "byte_level.hpp"

#include "utf8.hpp"

namespace alignkit::tokenizer {

namespace {

ByteLevelAlphabet make_alphabet() {
  ByteLevelAlphabet a;
  a.byte_of_code_point.fill(-1);
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + shifted++);
    a.code_point_of_byte[b] = cp;
    append_code_point(a.utf8_of_byte[b], cp);
    a.byte_of_code_point[cp] = b;
  }
  return a;
}

}  // namespace

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet alphabet = make_alphabet();
  return alphabet;
}

void append_byte_level(std::string& out, std::string_view bytes) {
  const auto& alphabet = byte_level_alphabet();
  for (unsigned char b : bytes) out += alphabet.utf8_of_byte[b];
}

}  // namespace alignkit::tokenizer
