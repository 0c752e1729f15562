// The values a template computes with, shaped after @huggingface/jinja's runtime values.
//
// Numbers are doubles, as in JavaScript, with a flag that says whether the value is an integer
// (IntegerValue) or a float (FloatValue): the flag decides how it prints ("2" or "2.0").
// Arrays and objects are shared, so `==` can compare them by identity as JavaScript does and a
// namespace assigned to in a loop is the same namespace outside it.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alignkit::jinja {

class Interpreter;
struct Scope;
struct Value;

enum class Kind : unsigned char {
  undefined,
  null,
  boolean,
  integer,
  floating,
  string,
  array,
  tuple,              // (a, b): an array that tojson and printing refuse, as upstream does
  object,
  keyword_arguments,  // f(x=1): passed to functions as a trailing argument
  name_space,         // namespace(...): the one value a template can mutate
  function,
};

using Array = std::vector<Value>;

// A string-keyed map that keeps insertion order (JavaScript's Map).
class Object {
 public:
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Replaces the value in place if the key exists (keeping its position), else appends.
  void set(std::string key, Value value);
  void erase(std::string_view key);
  std::size_t size() const;  // defined below Value: clang needs Value complete for the pair
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
};

// Arguments as upstream passes them: positional values, then, if any keyword was given, one
// trailing Kind::keyword_arguments value holding them.
using Arguments = std::vector<Value>;
using NativeFunction = std::function<Value(Interpreter&, Arguments&, Scope&)>;

struct Function {
  std::string name;  // for messages
  NativeFunction call;
};

struct Value {
  Kind kind = Kind::undefined;
  bool boolean = false;
  double number = 0;
  std::string text;
  std::shared_ptr<Array> array;
  std::shared_ptr<Object> object;
  std::shared_ptr<Function> function;

  static Value undefined() { return {}; }
  static Value null();
  static Value from_bool(bool b);
  static Value integer(double n);
  static Value floating(double n);
  static Value string(std::string s);
  static Value make_array(Array items, Kind kind = Kind::array);
  static Value make_object(Object entries, Kind kind = Kind::object);
  static Value make_function(std::string name, NativeFunction call);

  bool is_undefined() const { return kind == Kind::undefined; }
  bool is_null() const { return kind == Kind::null; }
  bool is_number() const { return kind == Kind::integer || kind == Kind::floating; }
  bool is_string() const { return kind == Kind::string; }
  bool is_array() const { return kind == Kind::array || kind == Kind::tuple; }
  bool is_object() const { return kind == Kind::object || kind == Kind::keyword_arguments; }
  // An object or a namespace: what `.attr` and selectattr read from.
  bool has_attributes() const { return is_object() || kind == Kind::name_space; }
};

inline std::size_t Object::size() const { return entries_.size(); }

// Upstream's type names (e.g. "StringValue"), which its error messages use.
const char* kind_name(Kind kind);
// A short English name for our messages ("a string", "a list").
const char* kind_description(Kind kind);

// Python truthiness, as upstream's __bool__: empty strings, lists and dicts are false.
bool truthy(const Value& value);

// What {{ value }} prints (upstream's toString()): lists and dicts as JSON with ", " and ": ",
// floats with a decimal point. Undefined and none print nothing at the top level; inside a list
// they print as JSON ("undefined" and "null"), and joined by `~` both as "undefined".
std::string display_string(const Value& value);
// JavaScript's String(value.value), which `~` and `+` use: 1.0 is "1", a list joins its items'
// display strings with ",", a dict is "[object Map]".
std::string js_string(const Value& value);

struct JsonOptions {
  int indent = 0;  // 0: everything on one line
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_separator;
  std::string key_separator;
};
// The tojson filter. Undefined becomes null when convert_undefined is set (tojson), or the word
// undefined (printing a list). Throws for tuples, functions and keyword arguments, as upstream.
std::string to_json(const Value& value, const JsonOptions& options, bool convert_undefined = true);

// JavaScript's == on the values' raw contents, which upstream's == and != use: numbers compare
// with strings and booleans numerically, none equals undefined, lists and dicts by identity.
bool loose_equals(const Value& a, const Value& b);
// JavaScript's ===, which `in` over a list, `unique` and the equalto test use.
bool strict_equals(const Value& a, const Value& b);
// Upstream's compareRuntimeValues, for sort and dictsort: numbers (and booleans) numerically,
// strings by UTF-16 units, lowercased unless case_sensitive. Throws for other mixes.
int compare_values(const Value& a, const Value& b, bool case_sensitive);

// The template context, converted as upstream's convertToRuntimeValues does: integral numbers
// become integers, objects keep their keys in JavaScript's order (array-index keys first).
Value from_json(const nlohmann::json& json);
Value from_json(const nlohmann::ordered_json& json);

}  // namespace alignkit::jinja
