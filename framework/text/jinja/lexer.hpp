// Turns template text into tokens, the way @huggingface/jinja's tokenize() does with the options
// transformers passes (lstrip_blocks and trim_blocks on).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace alignkit::jinja {

enum class TokenType : unsigned char {
  text,
  numeric,
  string,
  identifier,
  equals,
  open_paren,
  close_paren,
  open_statement,
  close_statement,
  open_expression,
  close_expression,
  open_square,
  close_square,
  open_curly,
  close_curly,
  comma,
  dot,
  colon,
  pipe,
  additive,        // + - ~
  multiplicative,  // * / // %
  power,           // **
  comparison,      // < > <= >= == !=
  unary,           // - + with no number after them, where an operand is expected
  comment,
};

struct Token {
  TokenType type;
  std::string value;   // a string literal's value unescaped; a text token's text
  std::size_t offset;  // byte offset of the token in the original source
};

// Throws TemplateError with the offset of the offending character.
std::vector<Token> tokenize(const std::string& source);

// A readable name of a token type for messages, e.g. "'%}'" or "a name".
const char* token_description(TokenType type);

}  // namespace alignkit::jinja
