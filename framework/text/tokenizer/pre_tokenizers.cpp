#include "pre_tokenizers.hpp"

#include <fmt/format.h>

#include "byte_level.hpp"
#include "pattern.hpp"
#include "regex.hpp"
#include "utf8.hpp"

namespace alignkit::tokenizer {

namespace {

using Spans = std::vector<Regex::Span>;

// Each match of `regex` becomes a piece (text between matches is dropped), as text.match(/../g).
void push_matches(const Regex& regex, std::string_view text, std::vector<std::string>& out) {
  thread_local Spans spans;
  spans.clear();
  regex.find_all(text, spans);
  for (const auto& [begin, end] : spans)
    if (end > begin) out.emplace_back(text.substr(begin, end - begin));
}

// tokenizers.js's fixed patterns use JavaScript's own \s (see kJsWhitespaceClass).
std::string js_pattern(std::string_view source) {
  std::string out;
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\\' && i + 1 < source.size() && (source[i + 1] == 's' || source[i + 1] == 'S')) {
      // Inside a class \s expands to the ranges; outside it becomes a class of its own.
      const bool in_class = [&] {
        int depth = 0;
        for (std::size_t k = 0; k < i; ++k) {
          if (source[k] == '\\') { ++k; continue; }
          if (source[k] == '[') depth = 1;
          if (source[k] == ']') depth = 0;
        }
        return depth > 0;
      }();
      if (in_class) {
        if (source[i + 1] == 'S') throw RegexError("internal: \\S inside a class");
        out += kJsWhitespaceClass;
      } else {
        out += fmt::format("[{}{}]", source[i + 1] == 'S' ? "^" : "", kJsWhitespaceClass);
      }
      ++i;
      continue;
    }
    out += source[i];
  }
  return out;
}

const std::string kPunctuation = "\\p{P}\\x{21}-\\x{2F}\\x{3A}-\\x{40}\\x{5B}-\\x{60}\\x{7B}-\\x{7E}";

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void split(std::string_view text, int section_index, std::vector<std::string>& out) const override {
    std::vector<std::string> pieces{std::string(text)}, next;
    for (const auto& step : steps_) {
      if (!step) continue;
      next.clear();
      for (const auto& piece : pieces) step->split(piece, section_index, next);
      pieces.swap(next);
    }
    for (auto& piece : pieces) out.push_back(std::move(piece));
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space),
        regex_(use_regex ? std::make_unique<Regex>(js_pattern(
                               "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"))
                         : nullptr) {}

  void split(std::string_view text, int, std::vector<std::string>& out) const override {
    std::string prefixed;
    if (add_prefix_space_ && (text.empty() || text.front() != ' ')) {
      prefixed = " " + std::string(text);
      text = prefixed;
    }
    if (!regex_) {
      out.emplace_back();
      append_byte_level(out.back(), text);
      return;
    }
    thread_local Spans spans;
    spans.clear();
    regex_->find_all(text, spans);
    for (const auto& [begin, end] : spans) {
      if (end == begin) continue;
      out.emplace_back();
      append_byte_level(out.back(), text.substr(begin, end - begin));
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  enum class Mode { matches, removed, isolated };
  SplitPreTokenizer(Pattern pattern, Mode mode) : pattern_(std::move(pattern)), mode_(mode) {}

  void split(std::string_view text, int, std::vector<std::string>& out) const override {
    switch (mode_) {
      case Mode::matches: return push_matches(pattern_.regex(), text, out);
      case Mode::removed:
        for (auto& piece : pattern_.regex().split(text)) out.push_back(std::move(piece));
        return;
      case Mode::isolated: {
        thread_local Spans spans;
        spans.clear();
        pattern_.regex().find_all(text, spans);
        std::size_t previous = 0;
        for (const auto& [begin, end] : spans) {
          if (previous < begin) out.emplace_back(text.substr(previous, begin - previous));
          if (end > begin) out.emplace_back(text.substr(begin, end - begin));
          previous = end;
        }
        if (previous < text.size()) out.emplace_back(text.substr(previous));
        return;
      }
    }
  }

 private:
  Pattern pattern_;
  Mode mode_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, std::string str_rep, std::string prepend_scheme)
      : replacement_(std::move(replacement)), str_rep_(std::move(str_rep)), prepend_scheme_(std::move(prepend_scheme)) {}

  // tokenizers.js replaces spaces and prepends; it does not split on the replacement.
  void split(std::string_view text, int section_index, std::vector<std::string>& out) const override {
    std::string normalized;
    for (char c : text) {
      if (c == ' ') normalized += str_rep_;
      else normalized += c;
    }
    const bool starts_with_replacement = normalized.compare(0, replacement_.size(), replacement_) == 0;
    if (!starts_with_replacement && (prepend_scheme_ == "always" || (prepend_scheme_ == "first" && section_index == 0)))
      normalized = str_rep_ + normalized;
    out.push_back(std::move(normalized));
  }

 private:
  std::string replacement_, str_rep_, prepend_scheme_;
};

// A pre-tokenizer that keeps the matches of a fixed pattern (Digits, Punctuation, ...).
class MatchPreTokenizer final : public PreTokenizer {
 public:
  explicit MatchPreTokenizer(const std::string& source, bool trim_first = false)
      : regex_(source), trim_first_(trim_first) {}
  void split(std::string_view text, int, std::vector<std::string>& out) const override {
    if (trim_first_) text = js_trim_end(js_trim_start(text));
    push_matches(regex_, text, out);
  }

 private:
  Regex regex_;
  bool trim_first_;
};

class ReplacePreTokenizer final : public PreTokenizer {
 public:
  ReplacePreTokenizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void split(std::string_view text, int, std::vector<std::string>& out) const override {
    out.push_back(pattern_.replace_all(text, content_));
  }

 private:
  Pattern pattern_;
  std::string content_;
};

}  // namespace

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const JsonNode& node) {
  if (node.is_null()) return nullptr;
  node.expect_object();
  const auto type_node = node.at("type");
  const std::string type = type_node.as_string();
  if (type == "Sequence") {
    node.expect_sequence_depth("pretokenizers");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    if (const auto list = node.find("pretokenizers"))
      for (std::size_t i = 0; i < list->size(); ++i) steps.push_back(parse_pre_tokenizer(list->at(i)));
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(node.bool_or("add_prefix_space", false), node.bool_or("use_regex", true));
  if (type == "Split") {
    const bool invert = node.bool_or("invert", false);
    auto pattern = parse_pattern(node.at("pattern"), node.find("invert") ? invert : true);
    std::string behavior = node.string_or("behavior", "");
    for (char& c : behavior) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto mode = invert ? SplitPreTokenizer::Mode::matches
                      : behavior == "removed" ? SplitPreTokenizer::Mode::removed
                                              : SplitPreTokenizer::Mode::isolated;
    return std::make_unique<SplitPreTokenizer>(std::move(pattern), mode);
  }
  if (type == "Metaspace") {
    const std::string replacement = node.string_or("replacement", "\xE2\x96\x81");
    std::string str_rep = node.string_or("str_rep", "");
    if (str_rep.empty()) str_rep = replacement;
    const std::string scheme = node.string_or("prepend_scheme", "always");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      node.at("prepend_scheme").fail(fmt::format("expected \"always\", \"first\" or \"never\", found \"{}\"", scheme));
    return std::make_unique<MetaspacePreTokenizer>(replacement, str_rep, scheme);
  }
  if (type == "Digits")
    return std::make_unique<MatchPreTokenizer>(node.bool_or("individual_digits", false) ? "[^0-9]+|[0-9]" : "[^0-9]+|[0-9]+");
  if (type == "Punctuation")
    return std::make_unique<MatchPreTokenizer>(fmt::format("[^{0}]+|[{0}]+", kPunctuation));
  if (type == "Whitespace")
    return std::make_unique<MatchPreTokenizer>(fmt::format("[A-Za-z0-9_]+|[^A-Za-z0-9_{}]+", kJsWhitespaceClass));
  if (type == "WhitespaceSplit") return std::make_unique<MatchPreTokenizer>(fmt::format("[^{}]+", kJsWhitespaceClass));
  if (type == "BertPreTokenizer")
    return std::make_unique<MatchPreTokenizer>(fmt::format("[^{0}{1}]+|[{1}]", kJsWhitespaceClass, kPunctuation), true);
  if (type == "Replace")
    return std::make_unique<ReplacePreTokenizer>(parse_pattern(node.at("pattern"), true), node.string_or("content", ""));
  type_node.fail(fmt::format("unknown pre-tokenizer type `{}`", type),
                 "supported: Sequence, Split, ByteLevel, Metaspace, Digits, Punctuation, Whitespace, WhitespaceSplit, "
                 "BertPreTokenizer, Replace");
}

}  // namespace alignkit::tokenizer
