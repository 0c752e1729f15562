// JavaScript's text and number semantics, on UTF-8 strings.
//
// @huggingface/jinja runs on JavaScript strings (UTF-16) and numbers (doubles); to render the same
// characters we reproduce the few JavaScript behaviours it relies on: what counts as whitespace
// for trim() and \s, length and indexing in UTF-16 code units, Number.prototype.toString,
// JSON.stringify for strings, parseInt/parseFloat, and toUpperCase/toLowerCase.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace alignkit::jinja {

// Decodes the code point at `at` into `code_point` and returns its length in bytes. A malformed
// sequence decodes as U+FFFD, one byte long, so every loop over text advances.
std::size_t decode_utf8(std::string_view text, std::size_t at, char32_t& code_point);
void append_utf8(std::string& out, char32_t code_point);

// JavaScript's WhiteSpace and LineTerminator set (what \s, trim() and parseInt skip).
bool is_js_space(char32_t code_point);
// The byte length of the JavaScript whitespace character at `at`, or 0 if there is none.
std::size_t js_space_length(std::string_view text, std::size_t at);
// The byte length of the JavaScript whitespace ending just before `end`, or 0 if there is none.
std::size_t js_space_length_before(std::string_view text, std::size_t end);

std::string_view js_trim(std::string_view text);
std::string_view js_trim_start(std::string_view text);
std::string_view js_trim_end(std::string_view text);

// String.prototype.length: UTF-16 code units.
std::size_t utf16_length(std::string_view text);
// The character at UTF-16 index `index` (negative counts from the end, as String.prototype.at);
// false when out of range. Half of a surrogate pair comes back as U+FFFD.
bool utf16_char_at(std::string_view text, long long index, std::string& out);
// JavaScript's < on strings: by UTF-16 code units. Returns <0, 0 or >0.
int utf16_compare(std::string_view a, std::string_view b);

// Number.prototype.toString() (radix 10), e.g. 1e21 -> "1e+21", 0.1 -> "0.1", -0 -> "0".
std::string js_number_to_string(double value);
// How @huggingface/jinja prints a float: integral values keep one decimal ("2.0"), -0 is "-0.0".
std::string js_float_to_string(double value);
// JSON.stringify of a number: like toString, but NaN and the infinities become null.
std::string js_number_to_json(double value);

// JSON.stringify of a string. With ensure_ascii, every UTF-16 unit from U+007F up is then
// escaped as \uXXXX, which is what @huggingface/jinja's tojson(ensure_ascii=true) produces.
void append_json_string(std::string& out, std::string_view text, bool ensure_ascii);

// parseInt(text, 10) and parseFloat(text); NaN when there is no number.
double js_parse_int(std::string_view text);
double js_parse_float(std::string_view text);
// Number(text), as == uses when it compares a string to a number.
double js_string_to_number(std::string_view text);

std::string js_to_upper(std::string_view text);
std::string js_to_lower(std::string_view text);

}  // namespace alignkit::jinja
