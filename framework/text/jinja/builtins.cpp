// String and dict methods ('x'.startswith(...), d.items()) and the global functions a template
// can call, with @huggingface/jinja's behaviour. Note that, as upstream, strip/lstrip/rstrip
// ignore their argument and remove whitespace: Qwen's `content.lstrip('\n')` strips spaces too.
#include "interpreter.hpp"

#include "js_text.hpp"
#include "template_error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <ctime>

namespace alignkit::jinja {

namespace {

constexpr std::array<std::string_view, 11> kStringMethods{
    "upper", "lower", "strip", "title", "capitalize", "rstrip", "lstrip", "startswith", "endswith", "split", "replace"};
constexpr std::array<std::string_view, 5> kObjectMethods{"get", "items", "keys", "values", "dictsort"};

bool is_ascii_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// JavaScript's value.replace(/\b\w/g, c => c.toUpperCase()): only ASCII word characters count,
// so a letter after an accented one starts a new "word".
std::string title_case(const std::string& text) {
  std::string out = text;
  for (std::size_t i = 0; i < out.size(); ++i) {
    const bool starts_word = is_ascii_word(out[i]) && (i == 0 || !is_ascii_word(text[i - 1]));
    if (starts_word && out[i] >= 'a' && out[i] <= 'z') out[i] = static_cast<char>(out[i] - 'a' + 'A');
  }
  return out;
}

// charAt(0).toUpperCase() + slice(1): the rest keeps its case; a first character outside the BMP
// (a surrogate pair in JavaScript) is left alone.
std::string capitalize(const std::string& text) {
  if (text.empty()) return text;
  char32_t cp = 0;
  const std::size_t n = decode_utf8(text, 0, cp);
  if (cp >= 0x10000) return text;
  return js_to_upper(std::string_view(text).substr(0, n)) + text.substr(n);
}

bool matches_affix(const std::string& text, const Value& pattern, bool prefix, std::string_view method) {
  const auto test = [&](const std::string& affix) { return prefix ? text.starts_with(affix) : text.ends_with(affix); };
  if (pattern.is_string()) return test(pattern.text);
  if (pattern.is_array()) {
    for (const Value& item : *pattern.array) {
      if (!item.is_string()) throw TemplateError(fmt::format("{}() tuple elements must be strings", method));
      if (test(item.text)) return true;
    }
    return false;
  }
  throw TemplateError(fmt::format("{}() takes a string or a tuple of strings, got {}", method, kind_description(pattern.kind)));
}

Array split(const std::string& text, const Value& separator, long long max_split) {
  Array parts;
  if (separator.is_null()) {
    // Runs of non-whitespace; with max_split, the last part is the rest of the text.
    const std::string_view rest = js_trim_start(text);
    std::size_t i = 0;
    while (i < rest.size()) {
      const std::size_t start = i;
      while (i < rest.size() && js_space_length(rest, i) == 0) {
        char32_t cp = 0;
        i += decode_utf8(rest, i, cp);
      }
      if (max_split != -1 && static_cast<long long>(parts.size()) >= max_split) {
        parts.push_back(Value::string(std::string(rest.substr(start))));
        break;
      }
      parts.push_back(Value::string(std::string(rest.substr(start, i - start))));
      while (std::size_t n = js_space_length(rest, i)) i += n;
    }
    return parts;
  }
  const std::string& sep = separator.text;
  if (sep.empty()) throw TemplateError("split(): empty separator");
  std::vector<std::string> pieces;
  std::size_t start = 0;
  while (true) {
    const std::size_t found = text.find(sep, start);
    if (found == std::string::npos) break;
    pieces.push_back(text.substr(start, found - start));
    start = found + sep.size();
  }
  pieces.push_back(text.substr(start));
  const auto count = static_cast<long long>(pieces.size());
  if (max_split != -1 && count > max_split) {
    // Array.prototype.splice(max_split): a negative start counts from the end.
    const long long keep = max_split < 0 ? std::max(count + max_split, 0LL) : std::min(max_split, count);
    std::string tail;
    for (long long i = keep; i < count; ++i) tail += (i > keep ? sep : "") + pieces[static_cast<std::size_t>(i)];
    pieces.resize(static_cast<std::size_t>(keep));
    pieces.push_back(std::move(tail));
  }
  for (auto& p : pieces) parts.push_back(Value::string(std::move(p)));
  return parts;
}

std::string replace(const std::string& text, const std::string& from, const std::string& to, double count) {
  if (count == 0) return text;
  double remaining = count < 0 ? INFINITY : count;
  std::string out;
  if (from.empty()) {
    // An empty pattern matches at every code point boundary, the ends included.
    for (std::size_t i = 0;; ) {
      if (remaining > 0) {
        out += to;
        --remaining;
      }
      if (i >= text.size()) break;
      char32_t cp = 0;
      const std::size_t n = decode_utf8(text, i, cp);
      out.append(text, i, n);
      i += n;
    }
    return out;
  }
  std::size_t start = 0;
  while (remaining > 0) {
    const std::size_t found = text.find(from, start);
    if (found == std::string::npos) break;
    out.append(text, start, found - start);
    out += to;
    start = found + from.size();
    --remaining;
  }
  out.append(text, start, std::string::npos);
  return out;
}

Value require_function_arguments_are_plain(const Arguments& arguments, std::string_view function) {
  for (const Value& a : arguments)
    if (a.kind == Kind::keyword_arguments)
      throw TemplateError(fmt::format("{}() takes no keyword arguments", function));
  return {};
}

Value range(Interpreter& interpreter, Arguments& arguments) {
  require_function_arguments_are_plain(arguments, "range");
  if (arguments.empty() || arguments.size() > 3) throw TemplateError("range() takes 1 to 3 arguments");
  for (const Value& a : arguments)
    if (!a.is_number() && a.kind != Kind::boolean)
      throw TemplateError(fmt::format("range() arguments must be numbers, got {}", kind_description(a.kind)));
  const auto number = [](const Value& v) { return v.kind == Kind::boolean ? (v.boolean ? 1.0 : 0.0) : v.number; };
  double start = 0, stop = number(arguments[0]), step = 1;
  if (arguments.size() >= 2) start = number(arguments[0]), stop = number(arguments[1]);
  if (arguments.size() == 3) step = number(arguments[2]);
  if (step == 0) throw TemplateError("range() step must not be zero");
  const double count = std::ceil((stop - start) / step);
  if (count > 0)
    interpreter.check_list_size(!std::isfinite(count) || count > 1e15 ? static_cast<std::size_t>(-1) : static_cast<std::size_t>(count));
  Array items;
  if (step > 0)
    for (double i = start; i < stop; i += step) items.push_back(std::floor(i) == i ? Value::integer(i) : Value::floating(i));
  else
    for (double i = start; i > stop; i += step) items.push_back(std::floor(i) == i ? Value::integer(i) : Value::floating(i));
  return Value::make_array(std::move(items));
}

Value make_namespace(Arguments& arguments) {
  Arguments positional = arguments;
  Value keywords;
  if (!positional.empty() && positional.back().kind == Kind::keyword_arguments) {
    keywords = positional.back();
    positional.pop_back();
  }
  if (positional.size() > 1) throw TemplateError(fmt::format("namespace() takes at most 1 positional argument, got {}", positional.size()));
  Object entries;
  if (positional.size() == 1) {
    const Value& source = positional[0];
    if (source.is_object()) {
      for (const auto& [key, value] : source.object->entries()) entries.set(key, value);
    } else if (source.is_array()) {
      for (const Value& pair : *source.array) {
        Array items;
        if (pair.is_array()) {
          items = *pair.array;
        } else if (pair.is_string()) {
          for (std::size_t i = 0; i < pair.text.size();) {
            char32_t cp = 0;
            const std::size_t n = decode_utf8(pair.text, i, cp);
            items.push_back(Value::string(pair.text.substr(i, n)));
            i += n;
          }
        }
        if (items.size() != 2) throw TemplateError("namespace() expects a dict or a list of [key, value] pairs");
        if (!items[0].is_string()) throw TemplateError("namespace keys must be strings");
        entries.set(items[0].text, items[1]);
      }
    } else {
      throw TemplateError(fmt::format("namespace() cannot read {}", kind_description(source.kind)));
    }
  }
  if (keywords.object)
    for (const auto& [key, value] : keywords.object->entries()) entries.set(key, value);
  return Value::make_object(std::move(entries), Kind::name_space);
}

// Upstream's strftime: %Y %m %d %b %B %H %M and %% in local time, English month names; any other
// directive is left as written.
std::string strftime_now(const std::string& format) {
  static constexpr std::array<const char*, 12> kMonths{"January", "February", "March",     "April",   "May",      "June",
                                                       "July",    "August",   "September", "October", "November", "December"};
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  const auto two = [](int n) { return fmt::format("{:02}", n); };
  std::string out;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 >= format.size()) {
      out += format[i];
      continue;
    }
    const char d = format[i + 1];
    switch (d) {
      case 'Y': out += std::to_string(local.tm_year + 1900); break;
      case 'm': out += two(local.tm_mon + 1); break;
      case 'd': out += two(local.tm_mday); break;
      case 'b': out += std::string(kMonths[static_cast<std::size_t>(local.tm_mon)]).substr(0, 3); break;
      case 'B': out += kMonths[static_cast<std::size_t>(local.tm_mon)]; break;
      case 'H': out += two(local.tm_hour); break;
      case 'M': out += two(local.tm_min); break;
      case '%': out += '%'; break;
      default: out += '%'; continue;
    }
    ++i;
  }
  return out;
}

}  // namespace

bool is_string_method(std::string_view name) {
  return std::find(kStringMethods.begin(), kStringMethods.end(), name) != kStringMethods.end();
}

bool is_object_method(std::string_view name) {
  return std::find(kObjectMethods.begin(), kObjectMethods.end(), name) != kObjectMethods.end();
}

Value call_string_method(Interpreter& interpreter, const std::string& text, std::string_view name, Arguments& arguments) {
  if (name == "upper") return Value::string(js_to_upper(text));
  if (name == "lower") return Value::string(js_to_lower(text));
  if (name == "strip") return Value::string(std::string(js_trim(text)));
  if (name == "lstrip") return Value::string(std::string(js_trim_start(text)));
  if (name == "rstrip") return Value::string(std::string(js_trim_end(text)));
  if (name == "title") return Value::string(title_case(text));
  if (name == "capitalize") return Value::string(capitalize(text));
  if (name == "startswith" || name == "endswith") {
    if (arguments.empty()) throw TemplateError(fmt::format("{}() needs an argument", name));
    return Value::from_bool(matches_affix(text, arguments[0], name == "startswith", name));
  }
  if (name == "split") {
    const Value separator = arguments.size() > 0 ? arguments[0] : Value::null();
    if (!separator.is_string() && !separator.is_null()) throw TemplateError("split() separator must be a string or none");
    const Value max_split = arguments.size() > 1 ? arguments[1] : Value::integer(-1);
    if (max_split.kind != Kind::integer) throw TemplateError("split() maxsplit must be an integer");
    Array parts = split(text, separator, static_cast<long long>(max_split.number));
    return Value::make_array(std::move(parts));
  }
  if (name == "replace") {
    if (arguments.size() < 2) throw TemplateError("replace() needs at least two arguments");
    if (!arguments[0].is_string() || !arguments[1].is_string()) throw TemplateError("replace() arguments must be strings");
    Value count = Value::null();
    if (arguments.size() > 2) {
      if (arguments[2].kind == Kind::keyword_arguments) {
        const Value* c = arguments[2].object->find("count");
        count = c ? *c : Value::null();
      } else {
        count = arguments[2];
      }
    }
    if (count.kind != Kind::integer && !count.is_null()) throw TemplateError("replace() count must be an integer or none");
    std::string out = replace(text, arguments[0].text, arguments[1].text, count.is_null() ? -1 : count.number);
    interpreter.check_string_size(out.size());
    return Value::string(std::move(out));
  }
  throw TemplateError(fmt::format("strings have no method '{}'", name));
}

Value call_object_method(Interpreter&, const Value& object, std::string_view name, Arguments& arguments) {
  const Object& entries = *object.object;
  if (name == "get") {
    if (arguments.empty() || !arguments[0].is_string())
      throw TemplateError(fmt::format("get() key must be a string, got {}",
                                      arguments.empty() ? "nothing" : kind_description(arguments[0].kind)));
    if (const Value* v = entries.find(arguments[0].text)) return *v;
    return arguments.size() > 1 ? arguments[1] : Value::null();
  }
  if (name == "items" || name == "dictsort") {
    Array items;
    for (const auto& [key, value] : entries.entries()) items.push_back(Value::make_array({Value::string(key), value}));
    if (name == "items") return Value::make_array(std::move(items));
    std::vector<Value> positional;
    const Value* keywords = nullptr;
    for (const Value& a : arguments) {
      if (a.kind == Kind::keyword_arguments) keywords = &a;
      else positional.push_back(a);
    }
    const auto option = [&](std::size_t index, std::string_view key) -> const Value* {
      if (index < positional.size()) return &positional[index];
      return keywords ? keywords->object->find(key) : nullptr;
    };
    const Value* case_sensitive = option(0, "case_sensitive");
    const Value* by = option(1, "by");
    const Value* reverse = option(2, "reverse");
    if (case_sensitive && case_sensitive->kind != Kind::boolean) throw TemplateError("dictsort case_sensitive must be a boolean");
    if (by && (!by->is_string() || (by->text != "key" && by->text != "value")))
      throw TemplateError("dictsort by must be 'key' or 'value'");
    if (reverse && reverse->kind != Kind::boolean) throw TemplateError("dictsort reverse must be a boolean");
    const std::size_t index = by && by->text == "value" ? 1 : 0;
    const bool sensitive = case_sensitive && case_sensitive->boolean;
    const bool reversed = reverse && reverse->boolean;
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      const int c = compare_values((*a.array)[index], (*b.array)[index], sensitive);
      return reversed ? c > 0 : c < 0;
    });
    return Value::make_array(std::move(items));
  }
  if (name == "keys" || name == "values") {
    Array items;
    for (const auto& [key, value] : entries.entries()) items.push_back(name == "keys" ? Value::string(key) : value);
    return Value::make_array(std::move(items));
  }
  throw TemplateError(fmt::format("dicts have no method '{}'", name));
}

void install_globals(Scope& globals) {
  globals.set("namespace", Value::make_function("namespace", [](Interpreter&, Arguments& arguments, Scope&) {
                return make_namespace(arguments);
              }));
  globals.set("false", Value::from_bool(false));
  globals.set("true", Value::from_bool(true));
  globals.set("none", Value::null());
  globals.set("raise_exception", Value::make_function("raise_exception", [](Interpreter&, Arguments& arguments, Scope&) -> Value {
                // new Error(message): an absent message is empty, anything else its String() form.
                const std::string message =
                    arguments.empty() || arguments[0].is_undefined() ? std::string() : js_string(arguments[0]);
                TemplateError error(message);
                error.raised_by_template = true;
                throw error;
              }));
  globals.set("range", Value::make_function("range", [](Interpreter& in, Arguments& arguments, Scope&) {
                return range(in, arguments);
              }));
  globals.set("strftime_now", Value::make_function("strftime_now", [](Interpreter&, Arguments& arguments, Scope&) {
                if (arguments.empty() || !arguments[0].is_string()) throw TemplateError("strftime_now() takes a format string");
                return Value::string(strftime_now(arguments[0].text));
              }));
  globals.set("True", Value::from_bool(true));
  globals.set("False", Value::from_bool(false));
  globals.set("None", Value::null());
}

}  // namespace alignkit::jinja
