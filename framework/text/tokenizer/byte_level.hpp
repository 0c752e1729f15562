// GPT-2's byte-level alphabet: each of the 256 byte values stands for one printable code point
// (printable Latin-1 bytes for themselves, the rest shifted to U+0100..U+0143), so any byte string
// becomes text a BPE vocabulary can hold. The ByteLevel pre-tokenizer maps bytes to these code
// points and the ByteLevel decoder maps them back.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace alignkit::tokenizer {

struct ByteLevelAlphabet {
  std::array<char32_t, 256> code_point_of_byte;
  std::array<std::string, 256> utf8_of_byte;  // code_point_of_byte, UTF-8 encoded
  // Inverse of code_point_of_byte for code points below 0x144; -1 elsewhere.
  std::array<int, 0x144> byte_of_code_point;
};

const ByteLevelAlphabet& byte_level_alphabet();

// Appends each byte of `bytes` as its alphabet character.
void append_byte_level(std::string& out, std::string_view bytes);

}  // namespace alignkit::tokenizer
