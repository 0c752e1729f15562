// alignkit::ChatTemplate: parses once with the lexer and parser, renders with a fresh global
// scope per call (as transformers.js does with a new Environment), and reports every error as a
// DiagnosticError located in the template source.
#include <alignkit/chat_template.hpp>
#include <alignkit/diagnostic.hpp>

#include "interpreter.hpp"
#include "lexer.hpp"
#include "parser.hpp"
#include "template_error.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace alignkit {

namespace {

// Lines longer than this (one-line templates are common) are shown as an excerpt in a note, so
// the caret line stays readable.
constexpr std::size_t kMaxShownLine = 160;
constexpr std::size_t kExcerptRadius = 50;

DiagnosticError to_diagnostic(const jinja::TemplateError& error, const std::string& source, const std::string& origin) {
  Diagnostic d;
  d.message = error.message();
  d.help = error.help();
  if (error.raised_by_template) d.notes.push_back("raised by the template with raise_exception()");
  if (!error.located()) {
    d.where = SourceLocation{origin, 0, 0};
    return DiagnosticError(std::move(d));
  }
  const std::size_t offset = std::min(error.offset(), source.size());
  const std::size_t line_start = offset == 0 ? 0 : source.rfind('\n', offset - 1) + 1;  // npos + 1 == 0
  std::size_t line_end = source.find('\n', offset);
  if (line_end == std::string::npos) line_end = source.size();
  const int line = 1 + static_cast<int>(std::count(source.begin(), source.begin() + static_cast<std::ptrdiff_t>(line_start), '\n'));
  const int column = 1 + static_cast<int>(offset - line_start);
  d.where = SourceLocation{origin, line, column};
  std::string text = source.substr(line_start, line_end - line_start);
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.size() <= kMaxShownLine) {
    d.source_line = std::move(text);
  } else {
    const std::size_t at = offset - line_start;
    std::size_t from = at > kExcerptRadius ? at - kExcerptRadius : 0;
    std::size_t to = std::min(text.size(), at + kExcerptRadius);
    // Keep whole UTF-8 characters.
    while (from > 0 && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) --from;
    while (to < text.size() && (static_cast<unsigned char>(text[to]) & 0xC0) == 0x80) ++to;
    d.notes.push_back(fmt::format("here: {}{}<HERE>{}{}", from > 0 ? "..." : "", text.substr(from, at - from),
                                  text.substr(at, to - at), to < text.size() ? "..." : ""));
  }
  return DiagnosticError(std::move(d));
}

}  // namespace

struct ChatTemplate::Impl {
  std::string source;
  std::string origin;
  jinja::Program program;
};

ChatTemplate::ChatTemplate(std::string source, std::string origin) : impl_(std::make_unique<Impl>()) {
  impl_->source = std::move(source);
  impl_->origin = std::move(origin);
  try {
    impl_->program = jinja::parse(jinja::tokenize(impl_->source), impl_->source.size());
  } catch (const jinja::TemplateError& e) {
    throw to_diagnostic(e, impl_->source, impl_->origin);
  }
}

ChatTemplate::~ChatTemplate() = default;
ChatTemplate::ChatTemplate(ChatTemplate&&) noexcept = default;
ChatTemplate& ChatTemplate::operator=(ChatTemplate&&) noexcept = default;

namespace {

template <typename Json>
std::string render_program(const jinja::Program& program, const std::string& source, const std::string& origin,
                           const Json& context) {
  try {
    if (!context.is_object() && !context.is_null())
      throw jinja::TemplateError(fmt::format("the template context must be a JSON object, got {}", context.type_name()));
    jinja::Scope globals;
    jinja::install_globals(globals);
    if (context.is_object()) {
      const jinja::Value variables = jinja::from_json(context);
      for (const auto& [name, value] : variables.object->entries()) {
        // Upstream refuses to redeclare a global (Environment.declareVariable).
        if (globals.has_local(name))
          throw jinja::TemplateError(fmt::format("context variable '{}' has the name of a built-in", name),
                                     jinja::TemplateError::kNoOffset, "rename the variable");
        globals.set(name, value);
      }
    }
    jinja::Interpreter interpreter;
    return interpreter.render(program, globals);
  } catch (const jinja::TemplateError& e) {
    throw to_diagnostic(e, source, origin);
  }
}

}  // namespace

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return render_program(impl_->program, impl_->source, impl_->origin, context);
}

std::string ChatTemplate::render_ordered(const nlohmann::ordered_json& context) const {
  return render_program(impl_->program, impl_->source, impl_->origin, context);
}

}  // namespace alignkit
