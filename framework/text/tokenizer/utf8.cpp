#include "utf8.hpp"

namespace alignkit::tokenizer {

CodePoint decode_code_point(std::string_view text, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(pos);
  const int length = utf8_sequence_length(lead);
  if (length == 1 || pos + length > text.size()) return {lead, 1};
  char32_t cp = lead & (0x7F >> length);
  for (int i = 1; i < length; ++i) cp = (cp << 6) | (byte(pos + i) & 0x3F);
  return {cp, length};
}

void append_code_point(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Length of the valid sequence at `pos`, or, when it is invalid, minus the length of its maximal
// subpart (the bytes one U+FFFD replaces; at least 1). WHATWG Encoding, "UTF-8 decoder".
int valid_sequence_length(std::string_view bytes, std::size_t pos) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const unsigned char lead = byte(pos);
  if (lead < 0x80) return 1;
  int needed;
  unsigned char lower = 0x80, upper = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 2;
    if (lead == 0xE0) lower = 0xA0;
    if (lead == 0xED) upper = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 3;
    if (lead == 0xF0) lower = 0x90;
    if (lead == 0xF4) upper = 0x8F;
  } else {
    return -1;
  }
  int seen = 1;
  for (int i = 0; i < needed; ++i) {
    const std::size_t at = pos + 1 + i;
    if (at >= bytes.size()) return -seen;
    const unsigned char b = byte(at);
    if (b < lower || b > upper) return -seen;
    lower = 0x80;
    upper = 0xBF;
    ++seen;
  }
  return seen;
}

}  // namespace

bool is_valid_utf8(std::string_view bytes) {
  for (std::size_t pos = 0; pos < bytes.size();) {
    if (static_cast<unsigned char>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const int length = valid_sequence_length(bytes, pos);
    if (length < 0) return false;
    pos += length;
  }
  return true;
}

std::string decode_utf8_lossy(std::string_view bytes) {
  if (is_valid_utf8(bytes)) return std::string(bytes);
  std::string out;
  out.reserve(bytes.size() + 8);
  for (std::size_t pos = 0; pos < bytes.size();) {
    const int length = valid_sequence_length(bytes, pos);
    if (length > 0) {
      out.append(bytes.substr(pos, length));
      pos += length;
    } else {
      out.append("\xEF\xBF\xBD");
      pos += -length;
    }
  }
  return out;
}

bool is_js_whitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

std::string_view js_trim_start(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto cp = decode_code_point(text, pos);
    if (!is_js_whitespace(cp.value)) break;
    pos += cp.length;
  }
  return text.substr(pos);
}

std::string_view js_trim_end(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (!is_js_whitespace(decode_code_point(text, start).value)) break;
    end = start;
  }
  return text.substr(0, end);
}

}  // namespace alignkit::tokenizer
