// Evaluates a parsed template, following @huggingface/jinja's Interpreter: its scoping (a for loop
// opens a scope, if does not, macros see their caller's variables), its operators and its loop
// variables. Filters and tests are in filters.cpp, methods and globals in builtins.cpp.
#pragma once

#include "ast.hpp"
#include "value.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alignkit::jinja {

// Variables of one scope, with a link to the enclosing one.
struct Scope {
  Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> variables;

  explicit Scope(Scope* enclosing = nullptr) : parent(enclosing) {}
  // The variable in this scope or the nearest enclosing one that has it; null if none does.
  const Value* lookup(std::string_view name) const;
  bool has_local(std::string_view name) const;
  // Sets the variable in this scope (shadowing any outer one), as Jinja's {% set %} does.
  void set(std::string_view name, Value value);
};

// Bounds that keep a hostile or broken template from hanging or exhausting memory.
struct RenderLimits {
  std::size_t max_output_bytes = std::size_t{64} << 20;  // also caps any single string
  std::size_t max_list_items = 10'000'000;
  std::uint64_t max_steps = 1'000'000;  // loop iterations and macro calls per render
  int max_call_depth = 200;              // nested macro calls
  int max_evaluation_depth = 2000;       // nested evaluations, macros included
};

struct EvaluatedArguments {
  std::vector<Value> positional;
  Object keywords;
  const Value* keyword(std::string_view name) const { return keywords.find(name); }
};

class Interpreter {
 public:
  explicit Interpreter(RenderLimits limits = {}) : limits_(limits) {}

  std::string render(const Program& program, Scope& globals);

  Value evaluate(const Node& node, Scope& scope);
  void render_block(const std::vector<NodePtr>& statements, Scope& scope, std::string& out);
  EvaluatedArguments evaluate_arguments(const Node& call, std::size_t first_argument, Scope& scope);
  Value call(const Value& function, Arguments& arguments, Scope& scope);

  // filters.cpp
  Value apply_filter(Value operand, const Node& filter, Scope& scope);
  bool apply_test(std::string_view name, const Value& operand, const Value* argument);

  // Limits, for builtins that build strings and lists.
  void check_string_size(std::size_t size) const;
  void check_list_size(std::size_t size) const;
  void count_step();

 private:
  friend struct EvaluationGuard;

  void render_statement(const Node& node, Scope& scope, std::string& out);
  void render_for(const Node& node, Scope& scope, std::string& out);
  void render_set(const Node& node, Scope& scope);
  void define_macro(const Node& node, Scope& scope);
  Value call_macro(const Node& macro, Arguments& arguments, Scope& call_scope);
  Value render_call_block(const Node& node, Scope& scope);
  void bind_arguments(const Node& macro, std::size_t first_parameter, Arguments& arguments, Scope& scope);

  Value evaluate_node(const Node& node, Scope& scope);
  Value evaluate_binary(const Node& node, Scope& scope);
  Value evaluate_unary(const Node& node, Scope& scope);
  Value evaluate_member(const Node& node, Scope& scope);
  Value evaluate_slice(const Value& object, const Node& slice, Scope& scope);
  Value evaluate_call(const Node& node, Scope& scope);

  enum class Control { none, break_loop, continue_loop };

  RenderLimits limits_;
  Control control_ = Control::none;
  int evaluation_depth_ = 0;
  int call_depth_ = 0;
  std::uint64_t steps_ = 0;
};

// obj.name / obj[name] on any value: dict keys, then dict methods; string and list methods and
// length; integer indexes (negative from the end) into strings and lists. Undefined when absent.
Value get_member(const Value& object, const Value& property);
// An attribute path such as "function.name" (selectattr, map, sort): dict keys and list indexes.
Value get_attribute_path(const Value& item, std::string_view path);

// builtins.cpp
bool is_string_method(std::string_view name);
bool is_object_method(std::string_view name);
Value call_string_method(Interpreter& interpreter, const std::string& text, std::string_view name, Arguments& arguments);
Value call_object_method(Interpreter& interpreter, const Value& object, std::string_view name, Arguments& arguments);
// true/false/none, True/False/None, namespace, range, raise_exception and strftime_now.
void install_globals(Scope& globals);

}  // namespace alignkit::jinja
