#include <alignkit/json_file.hpp>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>

namespace alignkit {

namespace {

// Thrown by the parser callback at the first array or object past the limit.
struct TooDeep {};

// The byte offset of the first opening bracket nested deeper than kMaxJsonDepth (the callback does
// not say where it is); strings are skipped so that brackets inside them do not count.
std::size_t offset_of_too_deep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return text.size();
}

// A located error at byte `offset` of `text`, with the offending line when it is short enough to show.
[[noreturn]] void fail_at(std::string_view text, std::size_t offset, const JsonSource& source, std::string message,
                          std::string help = {}) {
  offset = std::min(offset, text.size());
  const auto line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  const std::size_t begin = line_start == std::string_view::npos || offset == 0 ? 0 : line_start + 1;
  int line = source.first_line;
  for (std::size_t i = 0; i < begin; ++i) line += text[i] == '\n';
  auto end = text.find('\n', begin);
  if (end == std::string_view::npos) end = text.size();
  Diagnostic d;
  d.where = SourceLocation{source.file, line, static_cast<int>(offset - begin) + 1};
  d.message = std::move(message);
  constexpr std::size_t kShownLine = 160;  // a minified tokenizer.json is one line of megabytes
  if (end - begin <= kShownLine) {
    d.source_line = std::string(text.substr(begin, end - begin));
    if (!d.source_line.empty() && d.source_line.back() == '\r') d.source_line.pop_back();
  }
  d.help = std::move(help);
  throw DiagnosticError(std::move(d));
}

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1, column 5: "
// prefix: the diagnostic says where itself.
std::string parse_error_reason(const nlohmann::json::parse_error& e) {
  const std::string what = e.what();
  const auto at = what.find("parse error");
  const auto colon = at == std::string::npos ? std::string::npos : what.find(": ", at);
  return colon == std::string::npos ? what : what.substr(colon + 2);
}

template <typename Json>
Json parse_limited(std::string_view text, const JsonSource& source) {
  const typename Json::parser_callback_t refuse_deep = [](int depth, typename Json::parse_event_t event, Json&) {
    // `depth` counts the containers around this one: the top-level value's is 0.
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      throw TooDeep{};
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), refuse_deep);
  } catch (const TooDeep&) {
    fail_at(text, offset_of_too_deep(text), source,
            fmt::format("JSON nested more than {} levels deep", kMaxJsonDepth),
            "alignkit refuses deeper arrays and objects (docs/robustness.md); real model, tokenizer and data "
            "files nest a few levels");
  } catch (const nlohmann::json::parse_error& e) {
    // `byte` is 1-based and points at the last character read.
    fail_at(text, e.byte == 0 ? 0 : e.byte - 1, source, fmt::format("not valid JSON: {}", parse_error_reason(e)));
  }
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const JsonSource& source) {
  return parse_limited<nlohmann::json>(text, source);
}

nlohmann::ordered_json parse_ordered_json(std::string_view text, const JsonSource& source) {
  return parse_limited<nlohmann::ordered_json>(text, source);
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_file_error(path.string(), "cannot be opened for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw_file_error(path.string(), "cannot be read");
  return parse_json(buffer.view(), JsonSource{path.string()});
}

}  // namespace alignkit
