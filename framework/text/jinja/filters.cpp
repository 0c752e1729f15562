// Filters (value|name, value|name(args)) and tests (value is name), with @huggingface/jinja's
// per-type behaviour: which filters exist depends on the operand's type, and a filter written
// with parentheses may behave differently from one without (e.g. int(...) returns numbers as
// they are, while |int floors them).
#include "interpreter.hpp"

#include "js_text.hpp"
#include "parser.hpp"
#include "template_error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace alignkit::jinja {

namespace {

// JavaScript truthiness of a value's raw contents: lists and dicts are true even when empty.
bool raw_truthy(const Value& v) {
  if (v.is_array() || v.has_attributes() || v.kind == Kind::function) return true;
  return truthy(v);
}

[[noreturn]] void unknown_for_type(std::string_view filter, const Value& operand) {
  throw TemplateError(fmt::format("filter '{}' does not apply to {}", filter, kind_description(operand.kind)));
}

// What JavaScript's Array.prototype.join writes for one raw item.
std::string join_item(const Value& item) {
  if (item.is_null() || item.is_undefined()) return {};
  return js_string(item);
}

std::string join_items(const Array& items, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += join_item(items[i]);
  }
  return out;
}

Value indent_lines(const std::string& text, int width, bool first, bool blank) {
  if (width < 0) throw TemplateError("indent width must not be negative");
  const std::string pad(static_cast<std::size_t>(width), ' ');
  std::string out;
  std::size_t start = 0;
  for (std::size_t line = 0;; ++line) {
    const std::size_t end = text.find('\n', start);
    const std::string_view piece = std::string_view(text).substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (line > 0) out += '\n';
    if (!((line == 0 && !first) || (piece.empty() && !blank))) out += pad;
    out += piece;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return Value::string(std::move(out));
}

// A positional argument, else a keyword argument, else null.
const Value* argument(const EvaluatedArguments& args, std::size_t index, std::string_view keyword) {
  if (index < args.positional.size()) return &args.positional[index];
  return args.keyword(keyword);
}

bool bool_argument(const EvaluatedArguments& args, std::size_t index, std::string_view keyword, bool fallback) {
  const Value* v = argument(args, index, keyword);
  if (!v) return fallback;
  if (v->kind != Kind::boolean) throw TemplateError(fmt::format("'{}' must be a boolean", keyword));
  return v->boolean;
}

bool numeric_like_for_round(const Value& v) { return v.is_number() || v.kind == Kind::boolean; }

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

bool Interpreter::apply_test(std::string_view name, const Value& operand, const Value* argument) {
  const Kind k = operand.kind;
  if (name == "boolean") return k == Kind::boolean;
  if (name == "callable") return k == Kind::function;
  if (name == "odd" || name == "even") {
    if (k != Kind::integer) throw TemplateError(fmt::format("test '{}' needs an integer, got {}", name, kind_description(k)));
    const bool odd = std::fmod(operand.number, 2) != 0;
    return name == "odd" ? odd : !odd;
  }
  if (name == "false") return k == Kind::boolean && !operand.boolean;
  if (name == "true") return k == Kind::boolean && operand.boolean;
  if (name == "none") return k == Kind::null;
  if (name == "string") return k == Kind::string;
  if (name == "number") return operand.is_number();
  if (name == "integer") return k == Kind::integer;
  if (name == "iterable") return k == Kind::array || k == Kind::string;
  if (name == "mapping") return operand.is_object();
  if (name == "sequence") return operand.is_array() || operand.is_object() || k == Kind::string;
  if (name == "lower") return k == Kind::string && operand.text == js_to_lower(operand.text);
  if (name == "upper") return k == Kind::string && operand.text == js_to_upper(operand.text);
  if (name == "defined") return k != Kind::undefined;
  if (name == "undefined") return k == Kind::undefined;
  if (name == "equalto" || name == "eq") {
    if (!argument) throw TemplateError(fmt::format("test '{}' needs a value to compare with", name));
    return strict_equals(operand, *argument);
  }
  throw TemplateError(fmt::format("unknown test '{}'", name), TemplateError::kNoOffset, "the tests are listed in docs/chat-templates.md");
}

Value Interpreter::apply_filter(Value operand, const Node& filter, Scope& scope) {
  const std::string& name = filter.name;
  const bool called = filter.flag;

  // Beyond upstream (which has none of these): Python Jinja2's semantics.
  if (name == "round") {
    EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
    if (!numeric_like_for_round(operand)) unknown_for_type(name, operand);
    const Value* precision_value = argument(args, 0, "precision");
    const Value* method_value = argument(args, 1, "method");
    const int precision = precision_value && precision_value->is_number() ? static_cast<int>(precision_value->number) : 0;
    const std::string method = method_value && method_value->is_string() ? method_value->text : "common";
    const double scale = std::pow(10.0, precision);
    const double x = (operand.kind == Kind::boolean ? (operand.boolean ? 1 : 0) : operand.number) * scale;
    const double rounded = method == "floor" ? std::floor(x) : method == "ceil" ? std::ceil(x) : std::round(x);
    return Value::floating(rounded / scale);
  }
  if (name == "escape" || name == "e") return Value::string(html_escape(operand.is_string() ? operand.text : display_string(operand)));
  if (name == "count") {
    if (operand.is_string()) return Value::integer(static_cast<double>(utf16_length(operand.text)));
    if (operand.is_array()) return Value::integer(static_cast<double>(operand.array->size()));
    if (operand.has_attributes()) return Value::integer(static_cast<double>(operand.object->size()));
    unknown_for_type(name, operand);
  }
  if (name == "select" || name == "reject" || name == "sum") {
    if (!operand.is_array()) unknown_for_type(name, operand);
    EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
    if (name == "sum") {
      const Value* attribute = args.keyword("attribute");
      const Value* start = argument(args, 1, "start");
      double total = start && start->is_number() ? start->number : 0;
      bool is_float = start && start->kind == Kind::floating;
      for (const Value& item : *operand.array) {
        const Value v = attribute && attribute->is_string() ? get_attribute_path(item, attribute->text) : item;
        if (!v.is_number()) throw TemplateError(fmt::format("sum needs numbers, got {}", kind_description(v.kind)));
        total += v.number;
        is_float = is_float || v.kind == Kind::floating;
      }
      return is_float ? Value::floating(total) : Value::integer(total);
    }
    const bool keep = name == "select";
    Array out;
    for (const Value& item : *operand.array) {
      bool result = false;
      if (args.positional.empty()) {
        result = truthy(item);
      } else {
        if (!args.positional[0].is_string()) throw TemplateError("select/reject take a test name");
        result = apply_test(args.positional[0].text, item, args.positional.size() > 1 ? &args.positional[1] : nullptr);
      }
      if (result == keep) out.push_back(item);
    }
    return Value::make_array(std::move(out));
  }

  if (!called) {
    if (name == "safe") return operand;
    if (name == "tojson") {
      std::string json = to_json(operand, JsonOptions{});
      check_string_size(json.size());
      return Value::string(std::move(json));
    }
    if (operand.is_array()) {
      const Array& items = *operand.array;
      if (name == "list") return operand;
      if (name == "first") return items.empty() ? Value::undefined() : items.front();
      if (name == "last") return items.empty() ? Value::undefined() : items.back();
      if (name == "length") return Value::integer(static_cast<double>(items.size()));
      if (name == "reverse") return Value::make_array(Array(items.rbegin(), items.rend()));
      if (name == "sort") {
        Array sorted = items;
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const Value& a, const Value& b) { return compare_values(a, b, false) < 0; });
        return Value::make_array(std::move(sorted));
      }
      if (name == "join") return Value::string(join_items(items, ""));
      if (name == "string") return Value::string(to_json(operand, JsonOptions{}, false));
      if (name == "unique") {
        Array out;
        for (const Value& item : items) {
          const bool nan = item.is_number() && std::isnan(item.number);
          const bool seen = std::any_of(out.begin(), out.end(), [&](const Value& kept) {
            return strict_equals(kept, item) || (nan && kept.is_number() && std::isnan(kept.number));
          });
          if (!seen) out.push_back(item);
        }
        return Value::make_array(std::move(out));
      }
      unknown_for_type(name, operand);
    }
    if (operand.is_string()) {
      const std::string& text = operand.text;
      if (name == "length") return Value::integer(static_cast<double>(utf16_length(text)));
      if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
        Arguments none;
        return call_string_method(*this, text, name, none);
      }
      if (name == "trim") return Value::string(std::string(js_trim(text)));
      if (name == "indent") return indent_lines(text, 4, false, false);
      if (name == "join" || name == "string") return operand;
      if (name == "int") {
        const double n = js_parse_int(text);
        return Value::integer(std::isnan(n) ? 0 : n);
      }
      if (name == "float") {
        const double n = js_parse_float(text);
        return Value::floating(std::isnan(n) ? 0 : n);
      }
      unknown_for_type(name, operand);
    }
    if (operand.is_number()) {
      if (name == "abs") return operand.kind == Kind::integer ? Value::integer(std::abs(operand.number)) : Value::floating(std::abs(operand.number));
      if (name == "int") return Value::integer(std::floor(operand.number));
      if (name == "float") return Value::floating(operand.number);
      if (name == "string") return Value::string(display_string(operand));
      unknown_for_type(name, operand);
    }
    if (operand.is_object()) {
      if (name == "items") {
        Arguments none;
        return call_object_method(*this, operand, "items", none);
      }
      if (name == "length") return Value::integer(static_cast<double>(operand.object->size()));
      if (is_object_method(name)) {
        Arguments none;
        return call_object_method(*this, operand, name, none);
      }
      unknown_for_type(name, operand);
    }
    if (operand.kind == Kind::boolean) {
      if (name == "bool") return operand;
      if (name == "int") return Value::integer(operand.boolean ? 1 : 0);
      if (name == "float") return Value::floating(operand.boolean ? 1 : 0);
      if (name == "string") return Value::string(operand.boolean ? "true" : "false");
      unknown_for_type(name, operand);
    }
    unknown_for_type(name, operand);
  }

  // Written with parentheses: name(...).
  if (name == "tojson") {
    EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
    JsonOptions options;
    if (const Value* indent = args.keyword("indent"); indent && !indent->is_null()) {
      if (indent->kind != Kind::integer) throw TemplateError("tojson indent must be an integer");
      options.indent = static_cast<int>(indent->number);
    }
    // Only the keyword forms count, as upstream reads them.
    constexpr std::size_t kKeywordOnly = static_cast<std::size_t>(-1);
    options.ensure_ascii = bool_argument(args, kKeywordOnly, "ensure_ascii", false);
    options.sort_keys = bool_argument(args, kKeywordOnly, "sort_keys", false);
    if (const Value* separators = args.keyword("separators"); separators && !separators->is_null()) {
      if (!separators->is_array() || separators->array->size() != 2 || !(*separators->array)[0].is_string() ||
          !(*separators->array)[1].is_string())
        throw TemplateError("tojson separators must be a pair of strings (item separator, key separator)");
      options.has_separators = true;
      options.item_separator = (*separators->array)[0].text;
      options.key_separator = (*separators->array)[1].text;
    }
    std::string json = to_json(operand, options);
    check_string_size(json.size());
    return Value::string(std::move(json));
  }
  if (name == "join") {
    if (!operand.is_string() && !operand.is_array()) unknown_for_type(name, operand);
    EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
    const Value* separator = argument(args, 0, "separator");
    if (separator && !separator->is_string()) throw TemplateError("the join separator must be a string");
    const std::string sep = separator ? separator->text : "";
    std::string out;
    if (operand.is_array()) {
      check_string_size(operand.array->size() * sep.size());
      out = join_items(*operand.array, sep);
    } else {
      for (std::size_t i = 0; i < operand.text.size();) {
        char32_t cp = 0;
        const std::size_t n = decode_utf8(operand.text, i, cp);
        if (i > 0) out += sep;
        out.append(operand.text, i, n);
        i += n;
        check_string_size(out.size());
      }
    }
    check_string_size(out.size());
    return Value::string(std::move(out));
  }
  if (name == "int" || name == "float") {
    EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
    const bool to_int = name == "int";
    const Value* fallback = argument(args, 0, "default");
    const Value default_value = fallback ? *fallback : to_int ? Value::integer(0) : Value::floating(0);
    if (operand.is_string()) {
      const double n = to_int ? js_parse_int(operand.text) : js_parse_float(operand.text);
      if (std::isnan(n)) return default_value;
      return to_int ? Value::integer(n) : Value::floating(n);
    }
    if (operand.is_number()) return operand;
    if (operand.kind == Kind::boolean) return to_int ? Value::integer(operand.boolean ? 1 : 0) : Value::floating(operand.boolean ? 1 : 0);
    unknown_for_type(name, operand);
  }
  if (name == "default") {
    EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
    const Value default_value = args.positional.empty() ? Value::string("") : args.positional[0];
    const bool boolean = bool_argument(args, 1, "boolean", false);
    if (operand.is_undefined() || (boolean && !truthy(operand))) return default_value;
    return operand;
  }
  if (operand.is_array()) {
    const Array& items = *operand.array;
    if (name == "sort") {
      EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
      const bool reverse = bool_argument(args, 0, "reverse", false);
      const bool case_sensitive = bool_argument(args, 1, "case_sensitive", false);
      const Value* attribute = argument(args, 2, "attribute");
      if (attribute && !attribute->is_null() && !attribute->is_string() && attribute->kind != Kind::integer)
        throw TemplateError("sort attribute must be a string or an integer");
      const bool by_attribute = attribute && !attribute->is_null();
      const std::string path = !by_attribute ? "" : attribute->is_string() ? attribute->text : js_number_to_string(attribute->number);
      const auto key = [&](const Value& item) { return by_attribute ? get_attribute_path(item, path) : item; };
      Array sorted = items;
      std::stable_sort(sorted.begin(), sorted.end(), [&](const Value& a, const Value& b) {
        const int c = compare_values(key(a), key(b), case_sensitive);
        return reverse ? c > 0 : c < 0;
      });
      return Value::make_array(std::move(sorted));
    }
    if (name == "selectattr" || name == "rejectattr") {
      for (const Value& item : items)
        if (!item.has_attributes()) throw TemplateError(fmt::format("'{}' needs a list of dicts, found {} in it", name, kind_description(item.kind)));
      for (std::size_t i = 1; i < filter.children.size(); ++i)
        if (filter.children[i]->kind != NodeKind::string_literal)
          throw TemplateError(fmt::format("the arguments of '{}' must be string literals (upstream restriction)", name),
                              filter.children[i]->offset);
      std::vector<Value> args;
      for (std::size_t i = 1; i < filter.children.size(); ++i) args.push_back(evaluate(*filter.children[i], scope));
      if (args.empty()) throw TemplateError(fmt::format("'{}' needs an attribute name", name));
      const std::string test_name = args.size() > 1 ? args[1].text : "";
      if (!test_name.empty() && !is_known_test(test_name))
        throw TemplateError(fmt::format("unknown test '{}'", test_name));
      const Value* test_argument = args.size() > 2 ? &args[2] : nullptr;
      const bool keep = name == "selectattr";
      Array out;
      for (const Value& item : items) {
        const Value* attribute = item.object->find(args[0].text);
        bool result = false;
        if (attribute) result = test_name.empty() ? truthy(*attribute) : apply_test(test_name, *attribute, test_argument);
        if (result == keep) out.push_back(item);
      }
      return Value::make_array(std::move(out));
    }
    if (name == "map") {
      EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
      const Value* attribute = args.keyword("attribute");
      if (!attribute)
        throw TemplateError("map without attribute= is not supported (upstream supports only map(attribute=...))");
      if (!attribute->is_string()) throw TemplateError("map attribute must be a string");
      const Value* fallback = args.keyword("default");
      Array out;
      for (const Value& item : items) {
        if (!item.has_attributes()) throw TemplateError(fmt::format("map(attribute=...) needs dicts, found {}", kind_description(item.kind)));
        Value v = get_attribute_path(item, attribute->text);
        out.push_back(v.is_undefined() && fallback ? *fallback : std::move(v));
      }
      return Value::make_array(std::move(out));
    }
    unknown_for_type(name, operand);
  }
  if (operand.is_string()) {
    if (name == "indent") {
      EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
      const Value* width = argument(args, 0, "width");
      if (width && width->kind != Kind::integer) throw TemplateError("indent width must be an integer");
      const Value* first = argument(args, 1, "first");
      const Value* blank = argument(args, 2, "blank");
      Value result = indent_lines(operand.text, width ? static_cast<int>(width->number) : 4, first && raw_truthy(*first),
                                  blank && raw_truthy(*blank));
      check_string_size(result.text.size());
      return result;
    }
    if (name == "replace") {
      EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
      Arguments call_arguments = std::move(args.positional);
      call_arguments.push_back(Value::make_object(std::move(args.keywords), Kind::keyword_arguments));
      return call_string_method(*this, operand.text, "replace", call_arguments);
    }
    unknown_for_type(name, operand);
  }
  if (operand.is_object()) {
    if (!is_object_method(name)) unknown_for_type(name, operand);
    EvaluatedArguments args = evaluate_arguments(filter, 1, scope);
    Arguments call_arguments = std::move(args.positional);
    if (args.keywords.size() > 0) call_arguments.push_back(Value::make_object(std::move(args.keywords), Kind::keyword_arguments));
    return call_object_method(*this, operand, name, call_arguments);
  }
  unknown_for_type(name, operand);
}

}  // namespace alignkit::jinja
