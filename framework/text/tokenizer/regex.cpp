#include "regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include <fmt/format.h>

#include "utf8.hpp"

namespace alignkit::tokenizer {

// ---- Oniguruma -> PCRE2, following tokenizers.js's rewrite_oniguruma_to_js -------------------

namespace {

// Oniguruma's \w: letters, marks, decimal digits, connector punctuation and a few Latin-1 digits.
constexpr std::string_view kWordCharsInClass = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}";
constexpr std::string_view kWordCharsExtra = "\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
constexpr std::string_view kLineStart = "(?:(?<![\\s\\S])|(?<=\\n))";
constexpr std::string_view kLineEnd = "(?:(?=\\n)|(?![\\s\\S]))";

std::string word_class(bool negated) {
  return fmt::format("[{}{}{}]", negated ? "^" : "", kWordCharsInClass, kWordCharsExtra);
}

std::string word_boundary(bool negated) {
  const std::string w = word_class(false);
  if (!negated) return fmt::format("(?:(?<!{0})(?={0})|(?<={0})(?!{0}))", w);
  return fmt::format("(?:(?<!{0})(?!{0})|(?<={0})(?={0}))", w);
}

bool is_ascii_letter(char32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
char32_t other_case(char32_t c) { return c >= 'a' ? c - 32 : c + 32; }

std::string hex_escape(char32_t cp) { return fmt::format("\\x{{{:X}}}", static_cast<uint32_t>(cp)); }

// A literal code point as a PCRE2 atom outside a class.
std::string literal_atom(char32_t cp, bool ascii_fold) {
  if (ascii_fold && is_ascii_letter(cp)) {
    std::string out = "[";
    append_code_point(out, cp >= 'a' ? cp : other_case(cp));
    append_code_point(out, cp >= 'a' ? other_case(cp) : cp);
    return out + "]";
  }
  if (cp < 0x80 && std::string_view("^$\\.*+?()[]{}|/").find(static_cast<char>(cp)) != std::string_view::npos)
    return std::string("\\") + static_cast<char>(cp);
  if (cp < 0x20 || cp == 0x7F) return hex_escape(cp);
  std::string out;
  append_code_point(out, cp);
  return out;
}

class Translator {
 public:
  explicit Translator(std::string_view pattern) : in_(pattern) {
    // tokenizers.js's normalize_bloom_split_char_class: `[^(\s|[X])]` means `[^()|\sX]`.
    std::string rewritten;
    std::size_t pos = 0;
    while (true) {
      const auto at = in_.find("[^(\\s|[", pos);
      if (at == std::string::npos) break;
      const auto close = in_.find("])]", at + 7);
      const auto inner_end = in_.find(']', at + 7);
      if (close == std::string::npos || inner_end != close || close == at + 7) {
        pos = at + 1;
        continue;
      }
      in_ = in_.substr(0, at) + "[^()|\\s" + in_.substr(at + 7, close - at - 7) + "]" + in_.substr(close + 3);
      pos = at + 1;
    }
  }

  std::string run() {
    while (i_ < in_.size()) step();
    if (!groups_.empty()) throw RegexError("unbalanced parenthesis: a group is not closed");
    return out_;
  }

 private:
  std::string in_;
  std::size_t i_ = 0;
  std::string out_;
  long atom_start_ = -1;
  bool last_was_quantifier_ = false;
  bool ascii_fold_ = false;
  std::vector<std::pair<long, bool>> groups_;

  char32_t peek(std::size_t at) const { return decode_code_point(in_, at).value; }
  bool starts_with(std::string_view s, std::size_t at) const { return in_.compare(at, s.size(), s) == 0; }

  void emit_atom(const std::string& text) {
    atom_start_ = static_cast<long>(out_.size());
    out_ += text;
    last_was_quantifier_ = false;
  }

  // \p{..} \P{..} \x{..} \u{..}: returns the length consumed, 0 when not such an escape.
  std::size_t braced_escape(std::size_t at, char& kind, std::string& body) const {
    if (at + 2 >= in_.size() || in_[at + 2] != '{') return 0;
    kind = in_[at + 1];
    if (kind != 'p' && kind != 'P' && kind != 'x' && kind != 'u') return 0;
    const auto close = in_.find('}', at + 3);
    if (close == std::string::npos) return 0;
    body = in_.substr(at + 3, close - at - 3);
    return close - at + 1;
  }

  static std::optional<char32_t> parse_hex(std::string_view hex) {
    if (hex.empty() || hex.size() > 8) return std::nullopt;
    char32_t cp = 0;
    for (char c : hex) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
      cp = cp * 16 + static_cast<char32_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10));
    }
    if (cp > 0x10FFFF) return std::nullopt;
    return cp;
  }

  // \xHH, \uHHHH or \cX at `at`: length consumed or 0.
  std::size_t fixed_width_escape(std::size_t at) const {
    if (at + 1 >= in_.size()) return 0;
    const char kind = in_[at + 1];
    auto hex_run = [&](std::size_t n) {
      if (at + 2 + n > in_.size()) return false;
      for (std::size_t k = 0; k < n; ++k)
        if (!std::isxdigit(static_cast<unsigned char>(in_[at + 2 + k]))) return false;
      return true;
    };
    if (kind == 'x' && hex_run(2)) return 4;
    if (kind == 'u' && hex_run(4)) return 6;
    if (kind == 'c' && at + 2 < in_.size() && is_ascii_letter(static_cast<unsigned char>(in_[at + 2]))) return 3;
    return 0;
  }

  void step() {
    const auto cp = decode_code_point(in_, i_);
    const char c = static_cast<char>(cp.value);
    if (cp.value == '\\') return escape();
    switch (cp.value) {
      case '[': {
        std::string atom = character_class();
        return emit_atom(atom);
      }
      case ']': ++i_; return emit_atom("\\]");
      case '.': ++i_; return emit_atom("[^\\n]");
      case '^': ++i_; return emit_atom(std::string(kLineStart));
      case '$': ++i_; return emit_atom(std::string(kLineEnd));
      case '(': return open_group();
      case ')':
        ++i_;
        out_ += ')';
        if (groups_.empty()) throw RegexError("unbalanced parenthesis: `)` without a group to close");
        atom_start_ = groups_.back().first;
        ascii_fold_ = groups_.back().second;
        groups_.pop_back();
        last_was_quantifier_ = false;
        return;
      case '|':
        ++i_;
        out_ += '|';
        atom_start_ = -1;
        last_was_quantifier_ = false;
        return;
      case '{': return brace();
      case '}': ++i_; return emit_atom("\\}");
      case '+':
        ++i_;
        if (last_was_quantifier_) return;  // possessive `X++` is matched as greedy `X+`
        out_ += '+';
        last_was_quantifier_ = true;
        return;
      case '*':
      case '?':
        ++i_;
        out_ += c;
        last_was_quantifier_ = true;
        return;
      default:
        i_ += cp.length;
        return emit_atom(literal_atom(cp.value, ascii_fold_));
    }
  }

  void open_group() {
    std::string source_prefix = "(", output_prefix = "(";
    const bool case_insensitive = starts_with("(?i:", i_);
    if (case_insensitive) {
      source_prefix = "(?i:";
      output_prefix = "(?:";
    } else {
      for (std::string_view p : {"(?<=", "(?<!", "(?:", "(?=", "(?!", "(?>"}) {
        if (starts_with(p, i_)) {
          source_prefix = std::string(p);
          output_prefix = p == "(?>" ? "(?:" : std::string(p);  // atomic groups match as plain ones
          break;
        }
      }
      if (source_prefix == "(" && starts_with("(?<", i_)) {
        const auto close = in_.find('>', i_ + 3);
        if (close != std::string::npos) {
          const std::string name = in_.substr(i_ + 3, close - i_ - 3);
          bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
          for (char ch : name) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
          if (ok) source_prefix = output_prefix = in_.substr(i_, close - i_ + 1);
        }
      }
    }
    groups_.emplace_back(static_cast<long>(out_.size()), ascii_fold_);
    if (case_insensitive) ascii_fold_ = true;
    out_ += output_prefix;
    last_was_quantifier_ = false;
    i_ += source_prefix.size();
  }

  void brace() {
    // {n}, {n,}, {n,m}, {,m}
    std::size_t j = i_ + 1;
    std::string body;
    while (j < in_.size() && (std::isdigit(static_cast<unsigned char>(in_[j])) || in_[j] == ',')) body += in_[j++];
    const bool valid = j < in_.size() && in_[j] == '}' && !body.empty() && std::count(body.begin(), body.end(), ',') <= 1 &&
                       body != "," && (body.front() != ',' || body.size() > 1);
    if (!valid || atom_start_ < 0) {
      ++i_;
      return emit_atom("\\{");
    }
    if (body.front() == ',') body = "0" + body;
    i_ = j + 1;
    const char following = i_ < in_.size() ? in_[i_] : '\0';
    if (following == '+' || following == '*') {
      // Oniguruma stacks quantifiers: `X{3}+` is `(?:X{3})+`.
      out_ = fmt::format("{}(?:{}{{{}}}){}", out_.substr(0, atom_start_), out_.substr(atom_start_), body, following);
      ++i_;
    } else {
      out_ += "{" + body + "}";
    }
    last_was_quantifier_ = true;
  }

  void escape() {
    char kind;
    std::string body;
    if (const auto length = braced_escape(i_, kind, body)) {
      i_ += length;
      if (kind == 'x' || kind == 'u') {
        const auto cp = parse_hex(body);
        if (!cp) throw RegexError(fmt::format("invalid code point escape `\\{}{{{}}}`", kind, body));
        return emit_atom(ascii_fold_ && is_ascii_letter(*cp) ? literal_atom(*cp, true) : hex_escape(*cp));
      }
      if (body == "Word") return emit_atom(word_class(kind == 'P'));
      return emit_atom(fmt::format("\\{}{{{}}}", kind, body));
    }
    if (const auto length = fixed_width_escape(i_)) {
      const std::string text = in_.substr(i_, length);
      i_ += length;
      if (text[1] == 'c') return emit_atom(text);
      const auto cp = *parse_hex(text.substr(2));
      return emit_atom(ascii_fold_ && is_ascii_letter(cp) ? literal_atom(cp, true) : hex_escape(cp));
    }
    if (i_ + 1 >= in_.size()) throw RegexError("the pattern ends with a lone backslash");
    const auto next = decode_code_point(in_, i_ + 1);
    i_ += 1 + next.length;
    switch (next.value) {
      case 'G': return;  // no equivalent; tokenizers.js drops it too
      case '\n': return emit_atom("\\n");
      case '\r': return emit_atom("\\r");
      case '\t': return emit_atom("\\t");
      case '\f': return emit_atom("\\f");
      case '\v': return emit_atom("\\x{0B}");
      case 'A': return emit_atom("(?<![\\s\\S])");
      case 'z': return emit_atom("(?![\\s\\S])");
      case 'Z': return emit_atom("(?=\\n?(?![\\s\\S]))");
      case 'h': return emit_atom("[0-9A-Fa-f]");
      case 'H': return emit_atom("[^0-9A-Fa-f]");
      case 'w': return emit_atom(word_class(false));
      case 'W': return emit_atom(word_class(true));
      case 'd': return emit_atom("\\p{Nd}");
      case 'D': return emit_atom("\\P{Nd}");
      case 's': return emit_atom("\\p{White_Space}");
      case 'S': return emit_atom("\\P{White_Space}");
      case 'b': return emit_atom(word_boundary(false));
      case 'B': return emit_atom(word_boundary(true));
      case 'a': return emit_atom("\\x{07}");
      case 'e': return emit_atom("\\x{1B}");
      case 'n': return emit_atom("\\n");
      case 'r': return emit_atom("\\r");
      case 't': return emit_atom("\\t");
      case 'f': return emit_atom("\\f");
      case 'v': return emit_atom("\\x{0B}");
      case '0': return emit_atom("\\x{00}");
      default: break;
    }
    if (next.value < 0x80 && std::isdigit(static_cast<int>(next.value)))
      return emit_atom(fmt::format("\\{}", static_cast<char>(next.value)));  // a back-reference
    if (next.value < 0x80 && std::isalpha(static_cast<int>(next.value)))
      throw RegexError(fmt::format("unsupported escape `\\{}`", static_cast<char>(next.value)));
    return emit_atom(literal_atom(next.value, false));
  }

  // A bracket expression, from `[` to its `]`, as a PCRE2 class. ASCII letters inside `(?i:` also
  // match their other case, as tokenizers.js's ASCII folding does.
  std::string character_class() {
    const std::size_t open = i_;
    ++i_;
    std::string out = "[";
    if (i_ < in_.size() && in_[i_] == '^') {
      out += '^';
      ++i_;
    }
    std::string fold_additions;
    bool first = true;
    std::optional<char32_t> previous_literal;  // for ranges
    bool pending_range = false;
    auto add_fold = [&](char32_t cp) {
      if (ascii_fold_ && is_ascii_letter(cp)) append_code_point(fold_additions, other_case(cp));
    };
    auto literal = [&](char32_t cp) {
      if (pending_range && previous_literal) {
        const char32_t lo = *previous_literal;
        if (cp < lo) throw RegexError("a character range in a class is out of order");
        out += class_literal(cp);
        if (ascii_fold_)
          for (char32_t c = lo; c <= cp && c < 0x80; ++c) add_fold(c);
        pending_range = false;
        previous_literal.reset();
        return;
      }
      out += class_literal(cp);
      add_fold(cp);
      previous_literal = cp;
    };
    auto set_valued = [&](const std::string& text) {
      if (pending_range) throw RegexError("a character range in a class has a set as an endpoint");
      out += text;
      previous_literal.reset();
    };
    while (true) {
      if (i_ >= in_.size()) throw RegexError(fmt::format("the character class opened at byte {} is not closed", open));
      const auto cp = decode_code_point(in_, i_);
      if (cp.value == ']' && !first) {
        ++i_;
        break;
      }
      first = false;
      if (cp.value == ']') {  // a leading `]` is literal
        ++i_;
        literal(']');
        continue;
      }
      if (cp.value == '[') {
        if (starts_with("[:", i_)) {
          const auto close = in_.find(":]", i_ + 2);
          if (close == std::string::npos) throw RegexError("unclosed POSIX bracket expression");
          std::string name = in_.substr(i_ + 2, close - i_ - 2);
          i_ = close + 2;
          if (!name.empty() && name[0] == '^') throw RegexError(fmt::format("unsupported negated POSIX class `[:{}:]`", name));
          set_valued(posix_class(name));
          continue;
        }
        throw RegexError("nested character classes are not supported");
      }
      if (starts_with("&&", i_)) throw RegexError("character class intersections (`&&`) are not supported");
      if (cp.value == '-' && previous_literal && i_ + 1 < in_.size() && in_[i_ + 1] != ']') {
        ++i_;
        out += '-';
        pending_range = true;
        continue;
      }
      if (cp.value == '\\') {
        class_escape(literal, set_valued);
        continue;
      }
      i_ += cp.length;
      literal(cp.value);
    }
    if (pending_range) out += "\\-";
    return out + fold_additions + "]";
  }

  static std::string class_literal(char32_t cp) {
    if (cp == ']' || cp == '\\' || cp == '^' || cp == '-' || cp == '[') return std::string("\\") + static_cast<char>(cp);
    if (cp < 0x20 || cp == 0x7F) return hex_escape(cp);
    std::string out;
    append_code_point(out, cp);
    return out;
  }

  static std::string posix_class(const std::string& name) {
    static const std::pair<const char*, std::string> table[] = {
        {"alpha", "\\p{Alphabetic}"}, {"alnum", "\\p{Alphabetic}\\p{Nd}"}, {"digit", "\\p{Nd}"},
        {"lower", "\\p{Lowercase}"}, {"upper", "\\p{Uppercase}"}, {"space", "\\p{White_Space}"},
        {"blank", "\\t\\p{Zs}"}, {"punct", "\\p{P}\\p{S}"}, {"cntrl", "\\p{Cc}"},
        {"word", std::string(kWordCharsInClass)}, {"xdigit", "0-9A-Fa-f"}};
    for (const auto& [n, fragment] : table)
      if (name == n) return fragment;
    throw RegexError(fmt::format("unsupported POSIX class `[:{}:]`", name));
  }

  template <typename Literal, typename SetValued>
  void class_escape(Literal& literal, SetValued& set_valued) {
    char kind;
    std::string body;
    if (const auto length = braced_escape(i_, kind, body)) {
      i_ += length;
      if (kind == 'x' || kind == 'u') {
        const auto cp = parse_hex(body);
        if (!cp) throw RegexError(fmt::format("invalid code point escape `\\{}{{{}}}`", kind, body));
        return literal(*cp);
      }
      if (body == "Word") {
        if (kind == 'P') throw RegexError("`\\P{Word}` inside a character class is not supported");
        return set_valued(std::string(kWordCharsInClass) + std::string(kWordCharsExtra));
      }
      return set_valued(fmt::format("\\{}{{{}}}", kind, body));
    }
    if (const auto length = fixed_width_escape(i_)) {
      const std::string text = in_.substr(i_, length);
      i_ += length;
      if (text[1] == 'c') return literal(static_cast<char32_t>(std::toupper(text[2]) - '@'));
      return literal(*parse_hex(text.substr(2)));
    }
    if (i_ + 1 >= in_.size()) throw RegexError("the pattern ends with a lone backslash");
    const auto next = decode_code_point(in_, i_ + 1);
    i_ += 1 + next.length;
    switch (next.value) {
      case 'n': return literal('\n');
      case 'r': return literal('\r');
      case 't': return literal('\t');
      case 'f': return literal('\f');
      case 'v': return literal('\v');
      case 'a': return literal(0x07);
      case 'e': return literal(0x1B);
      case '0': return literal(0);
      case 'h': return set_valued("0-9A-Fa-f");
      case 'w': return set_valued(std::string(kWordCharsInClass) + std::string(kWordCharsExtra));
      case 'd': return set_valued("\\p{Nd}");
      case 'D': return set_valued("\\P{Nd}");
      case 's': return set_valued("\\p{White_Space}");
      case 'S': return set_valued("\\P{White_Space}");
      case 'W':
      case 'H': throw RegexError(fmt::format("`\\{}` inside a character class is not supported", static_cast<char>(next.value)));
      default: break;
    }
    if (next.value < 0x80 && std::isalnum(static_cast<int>(next.value)))
      throw RegexError(fmt::format("unsupported escape `\\{}` in a character class", static_cast<char>(next.value)));
    return literal(next.value);
  }
};

}  // namespace

std::string oniguruma_to_pcre2(std::string_view pattern) { return Translator(pattern).run(); }

std::string escape_for_pcre2(std::string_view literal) {
  std::string out;
  for (std::size_t i = 0; i < literal.size();) {
    const auto cp = decode_code_point(literal, i);
    out += literal_atom(cp.value, false);
    i += cp.length;
  }
  return out;
}

// ---- Compiled patterns and matching -----------------------------------------------------------

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  uint32_t capture_count = 0;
  ~Compiled() { pcre2_code_free(code); }
};

namespace {

constexpr uint32_t kMaxPairs = 64;

// Per-thread match state, shared by all patterns: match data, and a JIT stack large enough for
// long runs (the default 32 KiB is not).
struct MatchScratch {
  pcre2_match_data* data = pcre2_match_data_create(kMaxPairs, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
  MatchScratch() {
    pcre2_jit_stack_assign(context, nullptr, stack);
    // Bounds backtracking so no input can make a pattern run for minutes.
    pcre2_set_match_limit(context, 50'000'000);
  }
  ~MatchScratch() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof buffer);
  return reinterpret_cast<const char*>(buffer);
}

// Runs the pattern from `start`; returns the ovector or nullptr when nothing matches.
const PCRE2_SIZE* match_from(pcre2_code* code, std::string_view text, std::size_t start) {
  auto& s = scratch();
  const int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start,
                             PCRE2_NO_UTF_CHECK, s.data, s.context);
  if (rc == PCRE2_ERROR_NOMATCH) return nullptr;
  if (rc < 0) throw RegexError(fmt::format("the pattern could not be matched against this text: {}", pcre2_message(rc)));
  return pcre2_get_ovector_pointer(s.data);
}

std::size_t next_code_point(std::string_view text, std::size_t pos) {
  return pos + utf8_sequence_length(static_cast<unsigned char>(text[pos]));
}

}  // namespace

Regex::Regex(const std::string& pcre2_source) : source_(pcre2_source), compiled_(std::make_unique<Compiled>()) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pcre2_source.data()), pcre2_source.size(),
                                  PCRE2_UTF | PCRE2_NO_UTF_CHECK | PCRE2_UCP, &error, &offset, nullptr);
  if (!compiled_->code)
    throw RegexError(fmt::format("PCRE2 refuses the pattern at offset {} of `{}`: {}", offset, pcre2_source, pcre2_message(error)));
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is absent
  pcre2_pattern_info(compiled_->code, PCRE2_INFO_CAPTURECOUNT, &compiled_->capture_count);
}

Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;
Regex::~Regex() = default;

void Regex::find_all(std::string_view text, std::vector<Span>& matches) const {
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto* ov = match_from(compiled_->code, text, pos);
    if (!ov) break;
    matches.emplace_back(ov[0], ov[1]);
    if (ov[1] > ov[0]) {
      pos = ov[1];
    } else {
      if (ov[1] >= text.size()) break;
      pos = next_code_point(text, ov[1]);
    }
  }
}

std::vector<std::string> Regex::split(std::string_view text) const {
  std::vector<std::string> pieces;
  auto push = [&](std::string_view piece) {
    if (!piece.empty()) pieces.emplace_back(piece);
  };
  std::size_t p = 0, q = 0;
  const uint32_t groups = std::min(compiled_->capture_count, kMaxPairs - 1);
  while (q < text.size()) {
    const auto* ov = match_from(compiled_->code, text, q);
    if (!ov || ov[0] >= text.size()) break;
    const std::size_t begin = ov[0], end = ov[1];
    if (end == p) {
      q = next_code_point(text, begin);
      continue;
    }
    push(text.substr(p, begin - p));
    for (uint32_t g = 1; g <= groups; ++g)
      if (ov[2 * g] != PCRE2_UNSET) push(text.substr(ov[2 * g], ov[2 * g + 1] - ov[2 * g]));
    p = q = end;
  }
  push(text.substr(p));
  return pieces;
}

std::string Regex::replace_all(std::string_view text, std::string_view replacement) const {
  std::string out;
  std::size_t copied = 0, pos = 0;
  const uint32_t groups = std::min(compiled_->capture_count, kMaxPairs - 1);
  while (pos <= text.size()) {
    const auto* ov = match_from(compiled_->code, text, pos);
    if (!ov) break;
    const std::size_t begin = ov[0], end = ov[1];
    out.append(text.substr(copied, begin - copied));
    // GetSubstitution (ECMA-262): $$, $&, $`, $', $n and $nn.
    for (std::size_t r = 0; r < replacement.size(); ++r) {
      const char ch = replacement[r];
      if (ch != '$' || r + 1 >= replacement.size()) {
        out += ch;
        continue;
      }
      const char n = replacement[r + 1];
      if (n == '$') { out += '$'; ++r; continue; }
      if (n == '&') { out.append(text.substr(begin, end - begin)); ++r; continue; }
      if (n == '`') { out.append(text.substr(0, begin)); ++r; continue; }
      if (n == '\'') { out.append(text.substr(end)); ++r; continue; }
      if (std::isdigit(static_cast<unsigned char>(n))) {
        uint32_t index = n - '0';
        std::size_t digits = 1;
        if (r + 2 < replacement.size() && std::isdigit(static_cast<unsigned char>(replacement[r + 2]))) {
          const uint32_t two = index * 10 + (replacement[r + 2] - '0');
          if (two >= 1 && two <= groups) {
            index = two;
            digits = 2;
          }
        }
        if (index >= 1 && index <= groups) {
          if (ov[2 * index] != PCRE2_UNSET) out.append(text.substr(ov[2 * index], ov[2 * index + 1] - ov[2 * index]));
          r += digits;
          continue;
        }
      }
      out += ch;
    }
    copied = end;
    if (end > begin) {
      pos = end;
    } else {
      if (end >= text.size()) break;
      pos = next_code_point(text, end);
    }
  }
  out.append(text.substr(copied));
  return out;
}

}  // namespace alignkit::tokenizer
