// The error the lexer, parser and interpreter throw; chat_template.cpp turns it into a
// DiagnosticError with the template's origin, line, column and source line.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace alignkit::jinja {

class TemplateError : public std::runtime_error {
 public:
  static constexpr std::size_t kNoOffset = static_cast<std::size_t>(-1);

  explicit TemplateError(std::string message, std::size_t offset = kNoOffset, std::string help = {})
      : std::runtime_error(message), message_(std::move(message)), help_(std::move(help)), offset_(offset) {}

  const std::string& message() const { return message_; }
  const std::string& help() const { return help_; }
  // Byte offset into the template source; kNoOffset until the interpreter attaches the node
  // being evaluated.
  std::size_t offset() const { return offset_; }
  bool located() const { return offset_ != kNoOffset; }
  void locate(std::size_t offset) {
    if (!located()) offset_ = offset;
  }
  // Set for raise_exception(...): the message is the template's own text.
  bool raised_by_template = false;

 private:
  std::string message_;
  std::string help_;
  std::size_t offset_;
};

}  // namespace alignkit::jinja
