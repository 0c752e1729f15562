// Errors: located at origin:line:col with what was expected; raise_exception carries the
// template's own text; hostile templates fail cleanly instead of crashing or hanging.
#include "oracle.hpp"

#include <alignkit/chat_template.hpp>
#include <alignkit/diagnostic.hpp>

#include <gtest/gtest.h>

#include <random>

namespace alignkit::jinja_test {
namespace {

const char* const kOrigin = "/models/x/tokenizer_config.json: chat_template";

// The formatted diagnostic of constructing and rendering `source`, or "" if it succeeded.
std::string error_of(const std::string& source, const nlohmann::json& context = nlohmann::json::object()) {
  try {
    ChatTemplate(source, kOrigin).render(context);
  } catch (const DiagnosticError& e) {
    return e.format();
  }
  return {};
}

TEST(JinjaErrors, UnclosedBlockNamesTheOpenerAndTheExpectedEnd) {
  const std::string e = error_of("Hello\n{% if x %}\nabc");
  EXPECT_NE(e.find(std::string(kOrigin) + ":2:1: error: unclosed '{% if %}' block: expected '{% elif %}' or '{% else %}' or "
                                          "'{% endif %}' before the end of the template"),
            std::string::npos)
      << e;
  const std::string crossed = error_of("Hello\n{% for m in messages %}\n{% if m %}x{% endfor %}");
  EXPECT_NE(crossed.find(":3:12: error: unexpected '{% endfor %}': the '{% if %}' block must be closed first with '{% endif %}'"),
            std::string::npos)
      << crossed;
  const std::string f = error_of("{% for m in messages %}abc");
  EXPECT_NE(f.find(":1:1: error: unclosed '{% for %}' block: expected '{% endfor %}' or '{% else %}'"), std::string::npos) << f;
  EXPECT_NE(f.find(" 1 | {% for m in messages %}abc\n   | ^"), std::string::npos) << f;
}

TEST(JinjaErrors, SyntaxErrorsSayWhatWasExpected) {
  EXPECT_NE(error_of("{{ 1 + }}").find(":1:8: error: expected an expression, found '}}'"), std::string::npos) << error_of("{{ 1 + }}");
  EXPECT_NE(error_of("{{ x ").find("error: unexpected end of template inside a tag"), std::string::npos);
  EXPECT_NE(error_of("ab\n  {{ 'unterminated }}").find(":2:6: error: unterminated string literal"), std::string::npos)
      << error_of("ab\n  {{ 'unterminated }}");
  EXPECT_NE(error_of("{% endfor %}").find("error: unexpected '{% endfor %}' with no open block"), std::string::npos);
  EXPECT_NE(error_of("{% include 'x' %}").find("error: unknown statement 'include'"), std::string::npos);
  EXPECT_NE(error_of("{{ a b }}").find("error: expected '}}', found 'b'"), std::string::npos) << error_of("{{ a b }}");
  EXPECT_NE(error_of("{{ 'a\\q' }}").find("unknown escape sequence '\\q'"), std::string::npos);
  EXPECT_NE(error_of("{{ x is foo }}").find("error: unknown test 'foo'"), std::string::npos);
  EXPECT_NE(error_of("{{ 1 @ 2 }}").find("unexpected character '@'"), std::string::npos);
  EXPECT_NE(error_of("{# never closed").find("unclosed comment: expected '#}'"), std::string::npos);
}

TEST(JinjaErrors, UnknownFilterIsAParseErrorWithASuggestion) {
  // Rejected when the template is loaded, as Python Jinja2 does, even in a branch never taken.
  const std::string e = error_of("{% if false %}\n  {{ messages[0].content | trimm }}\n{% endif %}");
  EXPECT_NE(e.find(std::string(kOrigin) + ":2:28: error: unknown filter 'trimm'"), std::string::npos) << e;
  EXPECT_NE(e.find("help: did you mean 'trim'?"), std::string::npos) << e;
}

TEST(JinjaErrors, RaiseExceptionCarriesTheTemplatesMessage) {
  const std::string source = read_source_file("tests/jinja/templates/mistral_instruct.jinja");
  const nlohmann::ordered_json context = nlohmann::ordered_json::parse(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "bos_token": "<s>", "eos_token": "</s>"})");
  const std::vector<OracleRender> theirs = render_with_oracle({{"raise", source, context}});
  ASSERT_EQ(theirs.size(), 1u);
  ASSERT_FALSE(theirs[0].output.has_value());
  try {
    ChatTemplate(source, kOrigin).render_ordered(context);
    FAIL() << "expected raise_exception to throw";
  } catch (const DiagnosticError& e) {
    ASSERT_EQ(e.diagnostics().size(), 1u);
    const Diagnostic& d = e.diagnostics()[0];
    EXPECT_EQ(d.message, theirs[0].error);
    EXPECT_EQ(d.message, "After the optional system message, conversation roles must alternate user/assistant/user/assistant/...");
    EXPECT_EQ(d.where.file, kOrigin);
    EXPECT_EQ(d.where.line, 11);
    EXPECT_EQ(d.where.column, 13);
    EXPECT_NE(e.format().find("note: raised by the template with raise_exception()"), std::string::npos);
  }
}

TEST(JinjaErrors, RuntimeErrorsAreLocated) {
  const std::string e = error_of("line one\n{{ 'a' ~ none }}");
  EXPECT_NE(e.find(":2:8: error: cannot apply '~' to none"), std::string::npos) << e;
  const std::string f = error_of("{% for x in 5 %}{% endfor %}");
  EXPECT_NE(f.find(":1:13: error: cannot loop over an integer"), std::string::npos) << f;
  const std::string g = error_of("{{ undefined_macro() }}");
  EXPECT_NE(g.find(":1:4: error: cannot call 'undefined_macro': it is an undefined value"), std::string::npos) << g;
  EXPECT_NE(g.find("help: no variable, macro or function has that name"), std::string::npos) << g;
}

TEST(JinjaErrors, LongLinesAreShownAsAnExcerpt) {
  const std::string source = std::string(300, 'x') + "{{ 1 + }}" + std::string(300, 'y');
  const std::string e = error_of(source);
  EXPECT_NE(e.find(":1:308: error: expected an expression"), std::string::npos) << e;
  EXPECT_NE(e.find("note: here: ..." + std::string(43, 'x') + "{{ 1 + <HERE>}}"), std::string::npos) << e;
}

TEST(JinjaErrors, ContextMustBeAnObjectAndMayNotShadowBuiltins) {
  EXPECT_NE(error_of("x", nlohmann::json::array()).find("the template context must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of("x", {{"range", 1}}).find("context variable 'range' has the name of a built-in"), std::string::npos);
}

TEST(JinjaErrors, HostileTemplatesFailCleanly) {
  // Unbounded recursion, nesting, output and work all end in a DiagnosticError.
  EXPECT_NE(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("nested more than"), std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}").find("nested more than"), std::string::npos);
  EXPECT_NE(error_of(std::string(100000, '{')).size(), 0u);
  std::string chain = "{{ 1";
  for (int i = 0; i < 20000; ++i) chain += " + 1";
  EXPECT_NE(error_of(chain + " }}").find("nested more than 400 levels"), std::string::npos);
  std::string blocks;
  for (int i = 0; i < 3000; ++i) blocks += "{% if true %}";
  EXPECT_NE(error_of(blocks).find("nested more than"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='xy') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}")
                .find("a string of more than"),
            std::string::npos);
  EXPECT_NE(error_of("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}").find("loop iterations"),
            std::string::npos);
  EXPECT_NE(error_of("{{ range(1000000000000) }}").find("a list of more than"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}").find("nested more than"), std::string::npos);
  nlohmann::json deep = 1;
  for (int i = 0; i < 2000; ++i) deep = nlohmann::json::array({deep});
  EXPECT_NE(error_of("{{ x|length }}", {{"x", deep}}).find("nested more than"), std::string::npos);
}

// Random token soup and random bytes: every outcome is a render or a DiagnosticError.
TEST(JinjaErrors, RandomTemplatesNeverCrash) {
  const std::vector<std::string> pieces = {
      "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", " ", "\n", "if", "elif", "else", "endif", "for", "in",
      "endfor", "set", "endset", "macro", "endmacro", "call", "endcall", "filter", "endfilter", "x", "messages", "loop",
      "ns", "namespace", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|", "=", "==", "+", "-", "*", "/", "//", "%", "**",
      "~", "not", "and", "or", "is", "defined", "none", "1", "2.5", "-3", "'s'", "\"t\"", "trim", "tojson", "length",
      "items", "caller", "range", "raise_exception", "break", "continue", "😀", "\\", "'", "\"", "é"};
  std::mt19937 rng(12345);
  const nlohmann::json context = nlohmann::json::parse(
      R"({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}], "x": [1, "a", {"b": null}]})");
  int rendered = 0, refused = 0;
  for (int n = 0; n < 3000; ++n) {
    std::string source;
    const int length = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < length; ++i) {
      if (n % 5 == 4) source += static_cast<char>(rng() % 256);
      else source += pieces[rng() % pieces.size()];
    }
    try {
      ChatTemplate(source, "fuzz").render(context);
      ++rendered;
    } catch (const DiagnosticError&) {
      ++refused;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw " << e.what() << " for: " << source;
    }
  }
  EXPECT_GT(rendered, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace alignkit::jinja_test
