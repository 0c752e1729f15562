#include "js_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace alignkit::jinja {

namespace {

struct CaseMapping {
  char32_t code_point;
  const char* mapped;
};
#include "unicode_case_table.inc"

template <std::size_t N>
const char* find_case_mapping(const CaseMapping (&table)[N], char32_t code_point) {
  const auto* end = table + N;
  const auto* it = std::lower_bound(table, end, code_point,
                                    [](const CaseMapping& row, char32_t cp) { return row.code_point < cp; });
  return it != end && it->code_point == code_point ? it->mapped : nullptr;
}

constexpr char32_t kReplacement = 0xFFFD;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// The length of the longest prefix of `text` that is a StrDecimalLiteral (ECMA-262 7.1.4.1):
// [+-] (Infinity | digits [. digits] [e [+-] digits] | . digits [e [+-] digits]).
std::size_t decimal_literal_length(std::string_view text) {
  std::size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
  if (text.substr(i).starts_with("Infinity")) return i + 8;
  const std::size_t mantissa_start = i;
  while (i < text.size() && is_digit(text[i])) ++i;
  bool digits = i > mantissa_start;
  if (i < text.size() && text[i] == '.') {
    std::size_t j = i + 1;
    while (j < text.size() && is_digit(text[j])) ++j;
    if (digits || j > i + 1) {
      digits = true;
      i = j;
    }
  }
  if (!digits) return 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
    const std::size_t exponent_start = j;
    while (j < text.size() && is_digit(text[j])) ++j;
    if (j > exponent_start) i = j;
  }
  return i;
}

double parse_decimal(std::string_view literal) {
  std::string copy(literal);
  if (copy.find("Infinity") != std::string::npos)
    return copy[0] == '-' ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  return std::strtod(copy.c_str(), nullptr);
}

}  // namespace

std::size_t decode_utf8(std::string_view text, std::size_t at, char32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(at);
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  }
  std::size_t length = 0;
  char32_t value = 0;
  char32_t minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    code_point = kReplacement;
    return 1;
  }
  if (at + length > text.size()) {
    code_point = kReplacement;
    return 1;
  }
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(at + i) & 0xC0) != 0x80) {
      code_point = kReplacement;
      return 1;
    }
    value = (value << 6) | (byte(at + i) & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    code_point = kReplacement;
    return 1;
  }
  code_point = value;
  return length;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_js_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000 || c == 0xFEFF;
}

std::size_t js_space_length(std::string_view text, std::size_t at) {
  if (at >= text.size()) return 0;
  const unsigned char lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) return is_js_space(lead) ? 1 : 0;
  char32_t cp = 0;
  const std::size_t length = decode_utf8(text, at, cp);
  return is_js_space(cp) ? length : 0;
}

std::size_t js_space_length_before(std::string_view text, std::size_t end) {
  if (end == 0) return 0;
  std::size_t start = end - 1;
  // Step back over continuation bytes to the start of the last character (at most 3).
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  char32_t cp = 0;
  const std::size_t length = decode_utf8(text, start, cp);
  return start + length == end && is_js_space(cp) ? length : 0;
}

std::string_view js_trim_start(std::string_view text) {
  std::size_t i = 0;
  while (std::size_t n = js_space_length(text, i)) i += n;
  return text.substr(i);
}

std::string_view js_trim_end(std::string_view text) {
  std::size_t end = text.size();
  while (std::size_t n = js_space_length_before(text, end)) end -= n;
  return text.substr(0, end);
}

std::string_view js_trim(std::string_view text) { return js_trim_end(js_trim_start(text)); }

std::size_t utf16_length(std::string_view text) {
  std::size_t units = 0;
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    i += decode_utf8(text, i, cp);
    units += cp >= 0x10000 ? 2 : 1;
  }
  return units;
}

bool utf16_char_at(std::string_view text, long long index, std::string& out) {
  const auto length = static_cast<long long>(utf16_length(text));
  if (index < 0) index += length;
  if (index < 0 || index >= length) return false;
  long long unit = 0;
  for (std::size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const std::size_t n = decode_utf8(text, i, cp);
    const long long width = cp >= 0x10000 ? 2 : 1;
    if (index < unit + width) {
      out.clear();
      // JavaScript would hand out one half of the surrogate pair; UTF-8 cannot hold it.
      if (width == 2) append_utf8(out, kReplacement);
      else out.assign(text.substr(i, n));
      return true;
    }
    unit += width;
    i += n;
  }
  return false;
}

int utf16_compare(std::string_view a, std::string_view b) {
  // UTF-16 order equals code point order except that supplementary characters (stored as
  // surrogates, 0xD800-0xDFFF) sort before U+E000-U+FFFF.
  const auto key = [](char32_t cp) -> char32_t { return cp >= 0x10000 ? 0xD800 + ((cp - 0x10000) >> 10) : cp; };
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    char32_t x = 0, y = 0;
    i += decode_utf8(a, i, x);
    j += decode_utf8(b, j, y);
    if (x == y) continue;
    const char32_t kx = key(x), ky = key(y);
    if (kx != ky) return kx < ky ? -1 : 1;
    // Same high surrogate: compare the low surrogates.
    return (x & 0x3FF) < (y & 0x3FF) ? -1 : 1;
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

std::string js_number_to_string(double value) {
  if (std::isnan(value)) return "NaN";
  if (value == 0) return "0";
  if (std::isinf(value)) return value < 0 ? "-Infinity" : "Infinity";
  std::string sign;
  if (value < 0) {
    sign = "-";
    value = -value;
  }
  // Shortest round-trip digits, as Number::toString picks them (ECMA-262 6.1.6.1.20).
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  const std::string_view scientific(buffer, static_cast<std::size_t>(result.ptr - buffer));
  const std::size_t e = scientific.find('e');
  std::string digits;
  for (char c : scientific.substr(0, e))
    if (c != '.') digits += c;
  const int exponent = std::atoi(std::string(scientific.substr(e + 1)).c_str());
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  std::string out = sign;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<std::size_t>(n));
    out += '.';
    out += digits.substr(static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out += digits.substr(0, 1);
    if (k > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    out += std::to_string(std::abs(n - 1));
  }
  return out;
}

std::string js_float_to_string(double value) {
  if (value == 0 && std::signbit(value)) return "-0.0";
  if (std::isfinite(value) && std::floor(value) == value) {
    // toFixed(1) writes the exact integer below 1e21 and falls back to toString above.
    if (std::abs(value) >= 1e21) return js_number_to_string(value);
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.1f", value);
    return buffer;
  }
  return js_number_to_string(value);
}

std::string js_number_to_json(double value) {
  if (!std::isfinite(value)) return "null";
  return js_number_to_string(value);
}

void append_json_string(std::string& out, std::string_view text, bool ensure_ascii) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto unit_escape = [&](unsigned unit) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(unit >> shift) & 0xF];
  };
  out += '"';
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20 || (ensure_ascii && c == 0x7F)) unit_escape(c);
          else out += static_cast<char>(c);
      }
      continue;
    }
    char32_t cp = 0;
    const std::size_t n = decode_utf8(text, i, cp);
    if (!ensure_ascii) {
      out.append(text.substr(i, n));
    } else if (cp >= 0x10000) {
      unit_escape(0xD800 + ((cp - 0x10000) >> 10));
      unit_escape(0xDC00 + ((cp - 0x10000) & 0x3FF));
    } else {
      unit_escape(cp);
    }
    i += n;
  }
  out += '"';
}

double js_parse_int(std::string_view text) {
  text = js_trim_start(text);
  std::size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative = text[i++] == '-';
  const std::size_t start = i;
  while (i < text.size() && is_digit(text[i])) ++i;
  if (i == start) return std::numeric_limits<double>::quiet_NaN();
  const double magnitude = std::strtod(std::string(text.substr(start, i - start)).c_str(), nullptr);
  return negative ? -magnitude : magnitude;
}

double js_parse_float(std::string_view text) {
  text = js_trim_start(text);
  const std::size_t length = decimal_literal_length(text);
  if (length == 0) return std::numeric_limits<double>::quiet_NaN();
  return parse_decimal(text.substr(0, length));
}

double js_string_to_number(std::string_view text) {
  text = js_trim(text);
  if (text.empty()) return 0;
  if (text.size() > 2 && text[0] == '0') {
    const char prefix = static_cast<char>(text[1] | 0x20);
    const int base = prefix == 'x' ? 16 : prefix == 'o' ? 8 : prefix == 'b' ? 2 : 0;
    if (base != 0) {
      double value = 0;
      for (char c : text.substr(2)) {
        int digit = is_digit(c) ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : 99;
        if (digit >= base) return std::numeric_limits<double>::quiet_NaN();
        value = value * base + digit;
      }
      return value;
    }
  }
  if (decimal_literal_length(text) != text.size()) return std::numeric_limits<double>::quiet_NaN();
  return parse_decimal(text);
}

namespace {

template <typename Table>
std::string map_case(std::string_view text, const Table& table) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      const char* mapped = find_case_mapping(table, c);
      out += mapped ? *mapped : static_cast<char>(c);
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t n = decode_utf8(text, i, cp);
    if (const char* mapped = find_case_mapping(table, cp)) out += mapped;
    else out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

bool is_cased(char32_t cp) {
  return find_case_mapping(kUpperCase, cp) != nullptr || find_case_mapping(kLowerCase, cp) != nullptr;
}

}  // namespace

std::string js_to_upper(std::string_view text) { return map_case(text, kUpperCase); }

std::string js_to_lower(std::string_view text) {
  std::string out = map_case(text, kLowerCase);
  // Final sigma (Unicode SpecialCasing): a capital sigma that ends a word lowers to U+03C2, not
  // U+03C3. "Ends a word" is approximated as "after a cased letter and not before one".
  if (text.find("\xCE\xA3") == std::string_view::npos) return out;
  std::string fixed;
  fixed.reserve(out.size());
  char32_t previous = 0;
  for (std::size_t i = 0, source = 0; source < text.size();) {
    char32_t cp = 0;
    const std::size_t n = decode_utf8(text, source, cp);
    char32_t lowered = 0;
    const std::size_t m = decode_utf8(out, i, lowered);
    if (cp == 0x03A3 && previous != 0 && is_cased(previous)) {
      char32_t next = 0;
      const bool followed = source + n < text.size() && (decode_utf8(text, source + n, next), is_cased(next));
      if (!followed) lowered = 0x03C2;
      append_utf8(fixed, lowered);
      i += m;
    } else {
      // Copy this character's lowercase form (which may be several characters long).
      const char* mapped = cp < 0x80 ? nullptr : find_case_mapping(kLowerCase, cp);
      const std::size_t width = mapped ? std::char_traits<char>::length(mapped) : (cp < 0x80 ? 1 : n);
      fixed.append(out, i, width);
      i += width;
    }
    previous = cp;
    source += n;
  }
  return fixed;
}

}  // namespace alignkit::jinja
