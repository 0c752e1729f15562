#include <alignkit/diagnostic.hpp>

#include <fmt/format.h>

namespace alignkit {

namespace {

const char* severity_name(Severity severity) {
  switch (severity) {
    case Severity::error: return "error";
    case Severity::warning: return "warning";
    case Severity::note: return "note";
  }
  return "error";
}

std::string join_messages(const std::vector<Diagnostic>& diagnostics) {
  std::string out;
  for (const auto& d : diagnostics) out += d.format();
  return out;
}

}  // namespace

std::string Diagnostic::format() const {
  std::string out;
  if (where.known()) {
    out += where.file;
    if (where.line > 0) out += fmt::format(":{}", where.line);
    if (where.line > 0 && where.column > 0) out += fmt::format(":{}", where.column);
    out += ": ";
  }
  out += fmt::format("{}: {}\n", severity_name(severity), message);
  if (!source_line.empty() && where.line > 0) {
    const std::string gutter = std::to_string(where.line);
    out += fmt::format(" {} | {}\n", gutter, source_line);
    if (where.column > 0) {
      // Keep tabs so the caret lines up under the offending column.
      std::string pad;
      for (int i = 0; i + 1 < where.column && i < static_cast<int>(source_line.size()); ++i)
        pad += source_line[static_cast<std::size_t>(i)] == '\t' ? '\t' : ' ';
      out += fmt::format(" {} | {}^\n", std::string(gutter.size(), ' '), pad);
    }
  }
  for (const auto& note : notes) out += fmt::format("note: {}\n", note);
  if (!help.empty()) out += fmt::format("help: {}\n", help);
  return out;
}

DiagnosticError::DiagnosticError(Diagnostic diagnostic)
    : DiagnosticError(std::vector<Diagnostic>{std::move(diagnostic)}) {}

DiagnosticError::DiagnosticError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(join_messages(diagnostics)), diagnostics_(std::move(diagnostics)) {}

DiagnosticError::~DiagnosticError() = default;

std::string DiagnosticError::format() const { return join_messages(diagnostics_); }

void throw_file_error(const std::string& file, std::string message, std::string help) {
  Diagnostic d;
  d.where = SourceLocation{file, 0, 0};
  d.message = std::move(message);
  d.help = std::move(help);
  throw DiagnosticError(std::move(d));
}

Diagnostic make_error(std::string message, std::string help) {
  Diagnostic d;
  d.message = std::move(message);
  d.help = std::move(help);
  return d;
}

}  // namespace alignkit
