// Diagnostics: the one error type for recipes, data files, model files and plugins.
//
// Every message says where (file:line:column), what was found, what was expected, and, in `help`,
// what to do. Printed in the clang/rustc shape:
//
//   recipe.toml:12:1: error: unknown key 'lerning_rate' in [optimizer]
//      12 | lerning_rate = 1e-4
//         | ^
//   help: did you mean 'lr'?
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace alignkit {

struct SourceLocation {
  std::string file;  // a path, or a pseudo-file such as "<--set 1>"
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown

  bool known() const { return !file.empty(); }
};

enum class Severity { error, warning, note };

struct Diagnostic {
  Severity severity = Severity::error;
  SourceLocation where;
  std::string message;      // lowercase, no final period
  std::string source_line;  // the offending line of text, if known
  std::vector<std::string> notes;
  std::string help;  // the suggested fix, if any

  // The diagnostic in the printed shape shown above, ending with a newline.
  std::string format() const;
};

// Thrown by the host and by plugins; carries one or more diagnostics.
class DiagnosticError : public std::runtime_error {
 public:
  explicit DiagnosticError(Diagnostic diagnostic);
  explicit DiagnosticError(std::vector<Diagnostic> diagnostics);
  ~DiagnosticError() override;

  const std::vector<Diagnostic>& diagnostics() const { return diagnostics_; }
  // All diagnostics, formatted, one after the other.
  std::string format() const;

 private:
  std::vector<Diagnostic> diagnostics_;
};

// A diagnostic with no source location, e.g. for a missing file.
Diagnostic make_error(std::string message, std::string help = {});

// Throws a DiagnosticError located at a file as a whole (a model, data or adapter file).
[[noreturn]] void throw_file_error(const std::string& file, std::string message, std::string help = {});

}  // namespace alignkit
