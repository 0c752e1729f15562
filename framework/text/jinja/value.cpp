#include "value.hpp"

#include "js_text.hpp"
#include "template_error.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace alignkit::jinja {

namespace {

// Lists and dicts nested deeper than this are refused rather than overflowing the stack (a
// namespace can even contain itself).
constexpr int kMaxNesting = 512;

void check_nesting(int depth) {
  if (depth > kMaxNesting)
    throw TemplateError(fmt::format("value nested more than {} levels deep (a namespace containing itself?)", kMaxNesting));
}

// Primary collation weights of the printable ASCII characters in ICU's root order, which
// localeCompare (tojson's sort_keys) uses: whitespace, punctuation, symbols, digits, letters
// (case-insensitive at this level).
int ascii_collation_weight(unsigned char c) {
  static constexpr std::string_view kOrder =
      "\t\n\v\f\r _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz";
  if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
  const std::size_t at = kOrder.find(static_cast<char>(c));
  return at == std::string_view::npos ? static_cast<int>(c) : static_cast<int>(at) - 200;
}

// An approximation of String.prototype.localeCompare in ICU's root locale: letters ignore case
// first, punctuation sorts before digits before letters, then lowercase before uppercase.
int locale_compare(std::string_view a, std::string_view b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 0x80 || y >= 0x80) {
      if (x != y) return x < y ? -1 : 1;
      continue;
    }
    const int wx = ascii_collation_weight(x), wy = ascii_collation_weight(y);
    if (wx != wy) return wx < wy ? -1 : 1;
  }
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) {
      const bool lower_a = a[i] >= 'a' && a[i] <= 'z';
      return lower_a ? -1 : 1;
    }
  }
  return 0;
}

void write_json(std::string& out, const Value& value, const JsonOptions& options, int depth, bool convert_undefined) {
  check_nesting(depth);
  switch (value.kind) {
    case Kind::null: out += "null"; return;
    case Kind::undefined: out += convert_undefined ? "null" : "undefined"; return;
    case Kind::boolean: out += value.boolean ? "true" : "false"; return;
    case Kind::integer:
    case Kind::floating: out += js_number_to_json(value.number); return;
    case Kind::string: append_json_string(out, value.text, options.ensure_ascii); return;
    case Kind::array:
    case Kind::object:
    case Kind::name_space: break;
    case Kind::tuple: throw TemplateError("cannot convert a tuple to JSON (upstream refuses TupleValue)");
    case Kind::keyword_arguments: throw TemplateError("cannot convert keyword arguments to JSON");
    case Kind::function: throw TemplateError("cannot convert a function to JSON");
  }
  if (options.indent < 0) throw TemplateError("tojson indent must not be negative");
  const std::string item_separator = options.has_separators ? options.item_separator : options.indent ? "," : ", ";
  const std::string key_separator = options.has_separators ? options.key_separator : ": ";
  const std::string unit(static_cast<std::size_t>(options.indent), ' ');
  std::string base_padding = "\n";
  for (int i = 0; i < depth; ++i) base_padding += unit;
  const std::string child_padding = base_padding + unit;
  if (value.kind == Kind::array) {
    const Array& items = *value.array;
    out += '[';
    if (options.indent && !items.empty()) out += child_padding;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (i > 0) {
        out += item_separator;
        if (options.indent) out += child_padding;
      }
      write_json(out, items[i], options, depth + 1, convert_undefined);
    }
    if (options.indent && !items.empty()) out += base_padding;
    out += ']';
    return;
  }
  std::vector<const std::pair<std::string, Value>*> entries;
  for (const auto& entry : value.object->entries()) entries.push_back(&entry);
  if (options.sort_keys)
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto* a, const auto* b) { return locale_compare(a->first, b->first) < 0; });
  out += '{';
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i > 0) out += item_separator;
    if (options.indent) out += child_padding;
    append_json_string(out, entries[i]->first, options.ensure_ascii);
    out += key_separator;
    write_json(out, entries[i]->second, options, depth + 1, convert_undefined);
  }
  if (options.indent && !entries.empty()) out += base_padding;
  out += '}';
}

// The JavaScript type a value's raw contents have, for == and ===.
enum class JsType { undefined, null, boolean, number, string, object };

// Upstream's NullValue holds JavaScript's undefined (new NullValue() has no value), so none and
// undefined have the same raw contents: none === undefined, and none prints "undefined" inside
// `~` and `+`.
JsType js_type(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
    case Kind::null: return JsType::undefined;
    case Kind::boolean: return JsType::boolean;
    case Kind::integer:
    case Kind::floating: return JsType::number;
    case Kind::string: return JsType::string;
    default: return JsType::object;
  }
}

const void* identity(const Value& v) {
  if (v.array) return v.array.get();
  if (v.object) return v.object.get();
  return v.function.get();
}

bool is_array_index(std::string_view key, unsigned long long& index) {
  if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return false;
  index = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return false;
    index = index * 10 + static_cast<unsigned long long>(c - '0');
  }
  return index < 4294967295ULL;
}

template <typename Json>
Value convert(const Json& json, int depth) {
  check_nesting(depth);
  switch (json.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded: return Value::null();
    case nlohmann::json::value_t::boolean: return Value::from_bool(json.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(static_cast<double>(json.template get<std::int64_t>()));
    case nlohmann::json::value_t::number_unsigned:
      return Value::integer(static_cast<double>(json.template get<std::uint64_t>()));
    case nlohmann::json::value_t::number_float: {
      const double n = json.template get<double>();
      return std::isfinite(n) && std::floor(n) == n ? Value::integer(n) : Value::floating(n);
    }
    case nlohmann::json::value_t::string: return Value::string(json.template get<std::string>());
    case nlohmann::json::value_t::binary: throw TemplateError("binary JSON values are not supported in a template context");
    case nlohmann::json::value_t::array: {
      Array items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(convert(item, depth + 1));
      return Value::make_array(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      // Object.entries order: array-index keys ascending, then the rest in insertion order.
      std::vector<std::pair<unsigned long long, std::string>> indexed;
      Object entries;
      for (const auto& [key, item] : json.items()) {
        unsigned long long index = 0;
        if (is_array_index(key, index)) indexed.emplace_back(index, key);
      }
      std::sort(indexed.begin(), indexed.end());
      for (const auto& [index, key] : indexed) entries.set(key, convert(json.at(key), depth + 1));
      for (const auto& [key, item] : json.items()) {
        unsigned long long index = 0;
        if (!is_array_index(key, index)) entries.set(key, convert(item, depth + 1));
      }
      return Value::make_object(std::move(entries));
    }
  }
  return Value::undefined();
}

}  // namespace

const Value* Object::find(std::string_view key) const {
  for (const auto& entry : entries_)
    if (entry.first == key) return &entry.second;
  return nullptr;
}

Value* Object::find(std::string_view key) {
  for (auto& entry : entries_)
    if (entry.first == key) return &entry.second;
  return nullptr;
}

void Object::set(std::string key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

void Object::erase(std::string_view key) {
  std::erase_if(entries_, [&](const auto& entry) { return entry.first == key; });
}

Value Value::null() {
  Value v;
  v.kind = Kind::null;
  return v;
}

Value Value::from_bool(bool b) {
  Value v;
  v.kind = Kind::boolean;
  v.boolean = b;
  return v;
}

Value Value::integer(double n) {
  Value v;
  v.kind = Kind::integer;
  v.number = n;
  return v;
}

Value Value::floating(double n) {
  Value v;
  v.kind = Kind::floating;
  v.number = n;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind = Kind::string;
  v.text = std::move(s);
  return v;
}

Value Value::make_array(Array items, Kind kind) {
  Value v;
  v.kind = kind;
  v.array = std::make_shared<Array>(std::move(items));
  return v;
}

Value Value::make_object(Object entries, Kind kind) {
  Value v;
  v.kind = kind;
  v.object = std::make_shared<Object>(std::move(entries));
  return v;
}

Value Value::make_function(std::string name, NativeFunction call) {
  Value v;
  v.kind = Kind::function;
  v.function = std::make_shared<Function>(Function{std::move(name), std::move(call)});
  return v;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::undefined: return "UndefinedValue";
    case Kind::null: return "NullValue";
    case Kind::boolean: return "BooleanValue";
    case Kind::integer: return "IntegerValue";
    case Kind::floating: return "FloatValue";
    case Kind::string: return "StringValue";
    case Kind::array: return "ArrayValue";
    case Kind::tuple: return "TupleValue";
    case Kind::object: return "ObjectValue";
    case Kind::keyword_arguments: return "KeywordArgumentsValue";
    case Kind::name_space: return "NamespaceValue";
    case Kind::function: return "FunctionValue";
  }
  return "Value";
}

const char* kind_description(Kind kind) {
  switch (kind) {
    case Kind::undefined: return "an undefined value";
    case Kind::null: return "none";
    case Kind::boolean: return "a boolean";
    case Kind::integer: return "an integer";
    case Kind::floating: return "a float";
    case Kind::string: return "a string";
    case Kind::array: return "a list";
    case Kind::tuple: return "a tuple";
    case Kind::object: return "a dict";
    case Kind::keyword_arguments: return "keyword arguments";
    case Kind::name_space: return "a namespace";
    case Kind::function: return "a function";
  }
  return "a value";
}

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::undefined:
    case Kind::null: return false;
    case Kind::boolean: return v.boolean;
    case Kind::integer:
    case Kind::floating: return v.number != 0 && !std::isnan(v.number);
    case Kind::string: return !v.text.empty();
    case Kind::array:
    case Kind::tuple: return !v.array->empty();
    case Kind::object:
    case Kind::keyword_arguments: return v.object->size() > 0;
    case Kind::name_space:
    case Kind::function: return true;
  }
  return false;
}

std::string display_string(const Value& v) {
  switch (v.kind) {
    case Kind::undefined: return "undefined";
    case Kind::null: return "undefined";  // String(NullValue.value), see js_type
    case Kind::boolean: return v.boolean ? "true" : "false";
    case Kind::integer: return js_number_to_string(v.number);
    case Kind::floating: return js_float_to_string(v.number);
    case Kind::string: return v.text;
    case Kind::array:
    case Kind::tuple:
    case Kind::object:
    case Kind::keyword_arguments:
    case Kind::name_space: return to_json(v, JsonOptions{}, false);
    case Kind::function: return "function " + v.function->name + "() { [native code] }";
  }
  return {};
}

std::string js_string(const Value& v) {
  switch (v.kind) {
    case Kind::integer:
    case Kind::floating: return js_number_to_string(v.number);
    case Kind::array:
    case Kind::tuple: {
      std::string out;
      for (std::size_t i = 0; i < v.array->size(); ++i) {
        if (i > 0) out += ',';
        out += display_string((*v.array)[i]);
      }
      return out;
    }
    case Kind::object:
    case Kind::keyword_arguments:
    case Kind::name_space: return "[object Map]";
    default: return display_string(v);
  }
}

std::string to_json(const Value& value, const JsonOptions& options, bool convert_undefined) {
  std::string out;
  write_json(out, value, options, 0, convert_undefined);
  return out;
}

bool strict_equals(const Value& a, const Value& b) {
  const JsType ta = js_type(a), tb = js_type(b);
  if (ta != tb) return false;
  switch (ta) {
    case JsType::undefined:
    case JsType::null: return true;
    case JsType::boolean: return a.boolean == b.boolean;
    case JsType::number: return a.number == b.number;
    case JsType::string: return a.text == b.text;
    case JsType::object: return identity(a) == identity(b);
  }
  return false;
}

bool loose_equals(const Value& a, const Value& b) {
  const JsType ta = js_type(a), tb = js_type(b);
  if (ta == tb) return strict_equals(a, b);
  const auto nullish = [](JsType t) { return t == JsType::undefined || t == JsType::null; };
  if (nullish(ta) || nullish(tb)) return nullish(ta) && nullish(tb);
  if (ta == JsType::boolean) return loose_equals(Value::integer(a.boolean ? 1 : 0), b);
  if (tb == JsType::boolean) return loose_equals(a, Value::integer(b.boolean ? 1 : 0));
  if (ta == JsType::number && tb == JsType::string) return a.number == js_string_to_number(b.text);
  if (ta == JsType::string && tb == JsType::number) return js_string_to_number(a.text) == b.number;
  // An object against a string or number: compare its primitive (string) form.
  if (ta == JsType::object) return loose_equals(Value::string(js_string(a)), b);
  if (tb == JsType::object) return loose_equals(a, Value::string(js_string(b)));
  return false;
}

int compare_values(const Value& a, const Value& b, bool case_sensitive) {
  const auto fail = [&](const char* what) -> int {
    throw TemplateError(fmt::format("cannot compare {} with {} ({})", kind_description(a.kind), kind_description(b.kind), what));
  };
  if (a.is_null() && b.is_null()) return 0;
  if (a.is_null() || b.is_null()) fail("none is not ordered");
  if (a.is_undefined() && b.is_undefined()) return 0;
  if (a.is_undefined() || b.is_undefined()) fail("undefined is not ordered");
  const auto numeric = [](const Value& v) { return v.is_number() || v.kind == Kind::boolean; };
  if (numeric(a) && numeric(b)) {
    const double x = a.kind == Kind::boolean ? (a.boolean ? 1 : 0) : a.number;
    const double y = b.kind == Kind::boolean ? (b.boolean ? 1 : 0) : b.number;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (a.kind != b.kind) fail("different types");
  if (a.kind != Kind::string) fail("only numbers and strings are ordered");
  if (case_sensitive) return utf16_compare(a.text, b.text);
  return utf16_compare(js_to_lower(a.text), js_to_lower(b.text));
}

Value from_json(const nlohmann::json& json) { return convert(json, 0); }
Value from_json(const nlohmann::ordered_json& json) { return convert(json, 0); }

}  // namespace alignkit::jinja
