// Builds the AST from tokens with @huggingface/jinja's grammar and operator precedence (which
// differs from Python Jinja2 in places: `is` tests and `|` filters bind tighter than `*` and `**`,
// and `**` is left-associative).
#pragma once

#include "ast.hpp"
#include "lexer.hpp"

#include <string_view>
#include <vector>

namespace alignkit::jinja {

// Throws TemplateError at the offending token, naming what was expected.
Program parse(const std::vector<Token>& tokens, std::size_t source_size);

// Whether a filter or test name is implemented (by upstream, or by us as an extension).
bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);
// The known names, comma-separated, for help text.
std::string known_filter_list();
std::string known_test_list();

}  // namespace alignkit::jinja
