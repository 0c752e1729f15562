#include "lexer.hpp"

#include "js_text.hpp"
#include "template_error.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <string_view>
#include <utility>

namespace alignkit::jinja {

namespace {

// Template text after a rewriting pass, with the source offset of every byte, so that errors
// point into the text the user wrote.
struct MappedText {
  std::string text;
  std::vector<std::size_t> origin;  // origin[i]: source offset of text[i]; one extra for the end

  void append(const MappedText& from, std::size_t at, std::size_t count) {
    text.append(from.text, at, count);
    origin.insert(origin.end(), from.origin.begin() + static_cast<std::ptrdiff_t>(at),
                  from.origin.begin() + static_cast<std::ptrdiff_t>(at + count));
  }
  void finish(std::size_t end_origin) { origin.push_back(end_origin); }
};

bool at_line_start(const std::string& s, std::size_t i) {
  if (i == 0) return true;
  const char c = s[i - 1];
  if (c == '\n' || c == '\r') return true;
  // U+2028 and U+2029 end lines for JavaScript's multiline ^ too.
  return i >= 3 && s.compare(i - 3, 2, "\xE2\x80") == 0 && (s[i - 1] == '\xA8' || s[i - 1] == '\xA9');
}

// lstrip_blocks: /^[ \t]*({[#%-])/gm -> "$1". Note that upstream leaves "{{" alone.
MappedText strip_block_indentation(const MappedText& in) {
  MappedText out;
  const std::string& s = in.text;
  std::size_t i = 0;
  while (i < s.size()) {
    if (at_line_start(s, i)) {
      std::size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j + 1 < s.size() && s[j] == '{' && (s[j + 1] == '#' || s[j + 1] == '%' || s[j + 1] == '-')) {
        out.append(in, j, 2);
        i = j + 2;
        continue;
      }
    }
    out.append(in, i, 1);
    ++i;
  }
  out.finish(in.origin.back());
  return out;
}

// trim_blocks: /([#%-]})\n/g -> "$1".
MappedText drop_newline_after_blocks(const MappedText& in) {
  MappedText out;
  const std::string& s = in.text;
  std::size_t i = 0;
  while (i < s.size()) {
    if (i + 2 < s.size() && (s[i] == '#' || s[i] == '%' || s[i] == '-') && s[i + 1] == '}' && s[i + 2] == '\n') {
      out.append(in, i, 2);
      i += 3;
      continue;
    }
    out.append(in, i, 1);
    ++i;
  }
  out.finish(in.origin.back());
  return out;
}

std::size_t skip_js_space(std::string_view s, std::size_t i) {
  while (std::size_t n = js_space_length(s, i)) i += n;
  return i;
}

// Matches {%(-?)\s*(?:end)?generation\s*(-?)%} at `at`; returns its end, or 0.
std::size_t match_generation_tag(std::string_view s, std::size_t at, bool& strip_before, bool& strip_after) {
  if (s.substr(at, 2) != "{%") return 0;
  std::size_t i = at + 2;
  strip_before = i < s.size() && s[i] == '-';
  if (strip_before) ++i;
  i = skip_js_space(s, i);
  if (s.substr(i, 3) == "end") i += 3;
  if (s.substr(i, 10) != "generation") return 0;
  i = skip_js_space(s, i + 10);
  strip_after = i < s.size() && s[i] == '-';
  if (strip_after) ++i;
  if (s.substr(i, 2) != "%}") return 0;
  return i + 2;
}

// transformers' {% generation %} markers (for assistant masks) render as nothing; upstream removes
// them with /(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)/gs, keeping the whitespace around
// them unless the tag's own '-' strips it.
MappedText remove_generation_tags(const MappedText& in) {
  const std::string& s = in.text;
  if (s.find("generation") == std::string::npos) return in;
  MappedText out;
  std::size_t done = 0;
  for (std::size_t tag = s.find("{%"); tag != std::string::npos; tag = s.find("{%", tag + 1)) {
    if (tag < done) continue;
    bool strip_before = false, strip_after = false;
    const std::size_t tag_end = match_generation_tag(s, tag, strip_before, strip_after);
    if (tag_end == 0) continue;
    std::size_t before = tag;
    while (before > done)
      if (std::size_t n = js_space_length_before(s, before)) before -= n;
      else break;
    const std::size_t after = skip_js_space(s, tag_end);
    out.append(in, done, before - done);
    if (!strip_before) out.append(in, before, tag - before);
    if (!strip_after) out.append(in, tag_end, after - tag_end);
    done = after;
  }
  out.append(in, done, s.size() - done);
  out.finish(in.origin.back());
  return out;
}

MappedText preprocess(const std::string& source) {
  MappedText text;
  text.text = source;
  text.origin.resize(source.size() + 1);
  for (std::size_t i = 0; i <= source.size(); ++i) text.origin[i] = i;
  if (!text.text.empty() && text.text.back() == '\n') {
    text.text.pop_back();
    text.origin.erase(text.origin.end() - 2);
  }
  return remove_generation_tags(drop_newline_after_blocks(strip_block_indentation(text)));
}

// Upstream's ORDERED_MAPPING_TABLE: longer spellings first where they share a prefix.
constexpr std::array<std::pair<std::string_view, TokenType>, 29> kOperators{{
    {"{%", TokenType::open_statement},   {"%}", TokenType::close_statement}, {"{{", TokenType::open_expression},
    {"}}", TokenType::close_expression}, {"(", TokenType::open_paren},       {")", TokenType::close_paren},
    {"{", TokenType::open_curly},        {"}", TokenType::close_curly},      {"[", TokenType::open_square},
    {"]", TokenType::close_square},      {",", TokenType::comma},            {".", TokenType::dot},
    {":", TokenType::colon},             {"|", TokenType::pipe},             {"<=", TokenType::comparison},
    {">=", TokenType::comparison},       {"==", TokenType::comparison},      {"!=", TokenType::comparison},
    {"<", TokenType::comparison},        {">", TokenType::comparison},       {"+", TokenType::additive},
    {"-", TokenType::additive},          {"~", TokenType::additive},         {"**", TokenType::power},
    {"*", TokenType::multiplicative},    {"//", TokenType::multiplicative},  {"/", TokenType::multiplicative},
    {"%", TokenType::multiplicative},    {"=", TokenType::equals},
}};

bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(const std::string& source) : mapped_(preprocess(source)), src_(mapped_.text) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) step();
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(std::string message, std::size_t at, std::string help = {}) const {
    throw TemplateError(std::move(message), mapped_.origin[std::min(at, src_.size())], std::move(help));
  }

  void push(TokenType type, std::string value, std::size_t at) {
    tokens_.push_back(Token{type, std::move(value), mapped_.origin[at]});
  }

  TokenType last_type() const { return tokens_.empty() ? TokenType::text : tokens_.back().type; }
  bool outside_tags() const {
    if (tokens_.empty()) return true;
    const TokenType t = tokens_.back().type;
    return t == TokenType::close_statement || t == TokenType::close_expression || t == TokenType::comment;
  }
  bool starts(std::string_view what) const { return std::string_view(src_).substr(pos_, what.size()) == what; }
  char at(std::size_t i) const { return i < src_.size() ? src_[i] : '\0'; }

  void strip_trailing_whitespace() {
    if (tokens_.empty() || tokens_.back().type != TokenType::text) return;
    std::string& text = tokens_.back().value;
    text.resize(js_trim_end(text).size());
    if (text.empty()) tokens_.pop_back();
  }

  void step() {
    if (outside_tags()) {
      const std::size_t start = pos_;
      while (pos_ < src_.size() && !(src_[pos_] == '{' && (at(pos_ + 1) == '%' || at(pos_ + 1) == '{' || at(pos_ + 1) == '#')))
        ++pos_;
      if (pos_ > start) {
        push(TokenType::text, src_.substr(start, pos_ - start), start);
        return;
      }
    }
    if (starts("{#")) return comment();
    if (starts("{%-")) {
      strip_trailing_whitespace();
      push(TokenType::open_statement, "{%", pos_);
      pos_ += 3;
      return;
    }
    if (starts("{{-")) {
      strip_trailing_whitespace();
      push(TokenType::open_expression, "{{", pos_);
      curly_depth_ = 0;
      pos_ += 3;
      return;
    }
    pos_ = skip_js_space(src_, pos_);
    if (pos_ >= src_.size()) fail("unexpected end of template inside a tag", pos_, "close the tag with '%}' or '}}'");
    if (starts("-%}") || starts("-}}")) {
      push(starts("-%}") ? TokenType::close_statement : TokenType::close_expression, starts("-%}") ? "%}" : "}}", pos_);
      pos_ = skip_js_space(src_, pos_ + 3);
      return;
    }
    const char c = src_[pos_];
    if (c == '-' || c == '+') {
      switch (last_type()) {
        case TokenType::identifier:
        case TokenType::numeric:
        case TokenType::string:
        case TokenType::close_paren:
        case TokenType::close_square: break;  // a binary operator
        default: return signed_number_or_unary(c);
      }
    }
    for (const auto& [spelling, type] : kOperators) {
      if (spelling == "}}" && curly_depth_ > 0) continue;
      if (!starts(spelling)) continue;
      push(type, std::string(spelling), pos_);
      if (type == TokenType::open_expression) curly_depth_ = 0;
      else if (type == TokenType::open_curly) ++curly_depth_;
      else if (type == TokenType::close_curly) --curly_depth_;
      pos_ += spelling.size();
      return;
    }
    if (c == '\'' || c == '"') return string_literal(c);
    if (is_digit(c)) return number();
    if (is_word(c)) {
      const std::size_t start = pos_;
      while (pos_ < src_.size() && is_word(src_[pos_])) ++pos_;
      push(TokenType::identifier, src_.substr(start, pos_ - start), start);
      return;
    }
    char32_t cp = 0;
    const std::size_t n = decode_utf8(src_, pos_, cp);
    fail(fmt::format("unexpected character '{}' in a tag", src_.substr(pos_, n)), pos_,
         "names, numbers, strings and operators may appear between '{{' and '}}' or '{%' and '%}'");
  }

  void comment() {
    const std::size_t start = pos_;
    pos_ += 2;
    const bool strip_before = at(pos_) == '-';
    if (strip_before) ++pos_;
    const std::size_t end = src_.find("#}", pos_);
    if (end == std::string::npos) fail("unclosed comment: expected '#}'", start);
    std::string body = src_.substr(pos_, end - pos_);
    const bool strip_after = !body.empty() && body.back() == '-';
    if (strip_after) body.pop_back();
    if (strip_before) strip_trailing_whitespace();
    push(TokenType::comment, std::move(body), start);
    pos_ = end + 2;
    if (strip_after) pos_ = skip_js_space(src_, pos_);
  }

  std::string digits() {
    const std::size_t start = pos_;
    while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
    return src_.substr(start, pos_ - start);
  }

  // After an operator or an opening bracket, '-'/'+' belongs to the number that follows, or is a
  // unary operator if no digit follows.
  void signed_number_or_unary(char sign) {
    const std::size_t start = pos_++;
    std::string number = digits();
    if (!number.empty() && at(pos_) == '.' && is_digit(at(pos_ + 1))) {
      ++pos_;
      number += '.' + digits();
    }
    push(number.empty() ? TokenType::unary : TokenType::numeric, sign + number, start);
  }

  void number() {
    const std::size_t start = pos_;
    std::string number = digits();
    if (last_type() != TokenType::dot && at(pos_) == '.' && is_digit(at(pos_ + 1))) {
      ++pos_;
      number += '.' + digits();
    }
    push(TokenType::numeric, std::move(number), start);
  }

  void string_literal(char quote) {
    const std::size_t start = pos_++;
    std::string value;
    char16_t pending_high = 0;  // a \uD8xx escape waiting for its low half
    const auto flush_high = [&] {
      if (pending_high) append_utf8(value, 0xFFFD);
      pending_high = 0;
    };
    while (true) {
      if (pos_ >= src_.size()) fail("unterminated string literal", start, fmt::format("close it with {}", quote));
      const char c = src_[pos_];
      if (c == quote) break;
      if (c != '\\') {
        flush_high();
        value += c;
        ++pos_;
        continue;
      }
      const std::size_t escape_at = pos_++;
      if (pos_ >= src_.size()) fail("unterminated string literal", start);
      const char e = src_[pos_++];
      if (e == 'x' || e == 'u') {
        const std::size_t length = e == 'x' ? 2 : 4;
        const std::string hex = src_.substr(pos_, length);
        bool valid = hex.size() == length;
        for (char h : hex) valid = valid && std::isxdigit(static_cast<unsigned char>(h));
        if (!valid) fail(fmt::format("invalid escape sequence \\{}{}", e, hex), escape_at);
        pos_ += length;
        const auto unit = static_cast<char16_t>(std::stoul(hex, nullptr, 16));
        if (unit >= 0xDC00 && unit <= 0xDFFF && pending_high) {
          append_utf8(value, 0x10000 + ((static_cast<char32_t>(pending_high) - 0xD800) << 10) + (unit - 0xDC00));
          pending_high = 0;
        } else {
          flush_high();
          if (unit >= 0xD800 && unit <= 0xDBFF) pending_high = unit;
          else append_utf8(value, unit >= 0xDC00 && unit <= 0xDFFF ? 0xFFFD : unit);
        }
        continue;
      }
      flush_high();
      switch (e) {
        case 'n': value += '\n'; break;
        case 't': value += '\t'; break;
        case 'r': value += '\r'; break;
        case 'b': value += '\b'; break;
        case 'f': value += '\f'; break;
        case 'v': value += '\v'; break;
        case '\'': value += '\''; break;
        case '"': value += '"'; break;
        case '\\': value += '\\'; break;
        default:
          fail(fmt::format("unknown escape sequence '\\{}' in a string literal", e), escape_at,
               "the escapes are \\n \\t \\r \\b \\f \\v \\' \\\" \\\\ \\xHH \\uHHHH");
      }
    }
    flush_high();
    ++pos_;  // the closing quote
    push(TokenType::string, std::move(value), start);
  }

  MappedText mapped_;
  const std::string& src_;
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int curly_depth_ = 0;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

const char* token_description(TokenType type) {
  switch (type) {
    case TokenType::text: return "text";
    case TokenType::numeric: return "a number";
    case TokenType::string: return "a string";
    case TokenType::identifier: return "a name";
    case TokenType::equals: return "'='";
    case TokenType::open_paren: return "'('";
    case TokenType::close_paren: return "')'";
    case TokenType::open_statement: return "'{%'";
    case TokenType::close_statement: return "'%}'";
    case TokenType::open_expression: return "'{{'";
    case TokenType::close_expression: return "'}}'";
    case TokenType::open_square: return "'['";
    case TokenType::close_square: return "']'";
    case TokenType::open_curly: return "'{'";
    case TokenType::close_curly: return "'}'";
    case TokenType::comma: return "','";
    case TokenType::dot: return "'.'";
    case TokenType::colon: return "':'";
    case TokenType::pipe: return "'|'";
    case TokenType::additive: return "an operator";
    case TokenType::multiplicative: return "an operator";
    case TokenType::power: return "'**'";
    case TokenType::comparison: return "a comparison";
    case TokenType::unary: return "a sign";
    case TokenType::comment: return "a comment";
  }
  return "a token";
}

}  // namespace alignkit::jinja
