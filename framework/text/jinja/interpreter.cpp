#include "interpreter.hpp"

#include "js_text.hpp"
#include "template_error.hpp"

#include <fmt/format.h>

#include <cmath>
#include <memory>

namespace alignkit::jinja {

// Counts nested evaluations (and macro calls) so that recursion fails with a message instead of
// overflowing the stack.
struct EvaluationGuard {
  Interpreter& in;
  EvaluationGuard(Interpreter& interpreter, const Node& node) : in(interpreter) {
    if (++in.evaluation_depth_ > in.limits_.max_evaluation_depth)
      throw TemplateError(fmt::format("evaluation nested more than {} levels deep (runaway macro recursion?)",
                                      in.limits_.max_evaluation_depth),
                          node.offset);
  }
  ~EvaluationGuard() { --in.evaluation_depth_; }
};

namespace {

const char* op_spelling(Op op) {
  switch (op) {
    case Op::add: return "+";
    case Op::subtract: return "-";
    case Op::concat: return "~";
    case Op::multiply: return "*";
    case Op::divide: return "/";
    case Op::floor_divide: return "//";
    case Op::modulo: return "%";
    case Op::power: return "**";
    case Op::equal: return "==";
    case Op::not_equal: return "!=";
    case Op::less: return "<";
    case Op::greater: return ">";
    case Op::less_equal: return "<=";
    case Op::greater_equal: return ">=";
    case Op::in: return "in";
    case Op::not_in: return "not in";
    case Op::logical_and: return "and";
    case Op::logical_or: return "or";
    case Op::logical_not: return "not";
    case Op::negate: return "-";
    case Op::plus: return "+";
    case Op::none: break;
  }
  return "?";
}

bool numeric_like(const Value& v) { return v.is_number() || v.kind == Kind::boolean; }
double numeric_value(const Value& v) { return v.kind == Kind::boolean ? (v.boolean ? 1 : 0) : v.number; }

Value number_result(double n, bool is_float) { return is_float ? Value::floating(n) : Value::integer(n); }

// Python-style slice bounds as upstream computes them; returns the selected indexes.
std::vector<long long> slice_indexes(long long length, const Value& start_value, const Value& stop_value,
                                     const Value& step_value) {
  const long long step = step_value.is_undefined() ? 1 : static_cast<long long>(step_value.number);
  const int direction = step > 0 ? 1 : step < 0 ? -1 : 0;
  long long start = 0, stop = 0;
  if (direction >= 0) {
    start = start_value.is_undefined() ? 0 : static_cast<long long>(start_value.number);
    start = start < 0 ? std::max(length + start, 0LL) : std::min(start, length);
    stop = stop_value.is_undefined() ? length : static_cast<long long>(stop_value.number);
    stop = stop < 0 ? std::max(length + stop, 0LL) : std::min(stop, length);
  } else {
    start = start_value.is_undefined() ? length - 1 : static_cast<long long>(start_value.number);
    start = start < 0 ? std::max(length + start, -1LL) : std::min(start, length - 1);
    stop = stop_value.is_undefined() ? -1 : static_cast<long long>(stop_value.number);
    stop = stop < -1 ? std::max(length + stop, -1LL) : std::min(stop, length - 1);
  }
  std::vector<long long> indexes;
  if (direction == 0) return indexes;
  for (long long i = start; direction * i < direction * stop; i += step) indexes.push_back(i);
  return indexes;
}

Value make_loop_object(std::size_t i, const std::vector<std::size_t>& selected, const Array& items) {
  const std::size_t n = selected.size();
  Object loop;
  loop.set("index", Value::integer(static_cast<double>(i + 1)));
  loop.set("index0", Value::integer(static_cast<double>(i)));
  loop.set("revindex", Value::integer(static_cast<double>(n - i)));
  loop.set("revindex0", Value::integer(static_cast<double>(n - i - 1)));
  loop.set("first", Value::from_bool(i == 0));
  loop.set("last", Value::from_bool(i + 1 == n));
  loop.set("length", Value::integer(static_cast<double>(n)));
  loop.set("previtem", i > 0 ? items[selected[i - 1]] : Value::undefined());
  loop.set("nextitem", i + 1 < n ? items[selected[i + 1]] : Value::undefined());
  return Value::make_object(std::move(loop));
}

// Binds a for loop's target (a name, or names unpacking a list) to one item.
void bind_target(const Node& target, const Value& item, Scope& scope) {
  if (target.kind == NodeKind::identifier) {
    scope.set(target.name, item);
    return;
  }
  if (item.kind != Kind::array)
    throw TemplateError(fmt::format("cannot unpack {} into {} loop variables", kind_description(item.kind), target.children.size()),
                        target.offset);
  if (item.array->size() != target.children.size())
    throw TemplateError(fmt::format("too {} items to unpack: {} loop variables, {} items",
                                    target.children.size() > item.array->size() ? "few" : "many", target.children.size(),
                                    item.array->size()),
                        target.offset);
  for (std::size_t j = 0; j < target.children.size(); ++j) {
    const Node& name = *target.children[j];
    if (name.kind != NodeKind::identifier) throw TemplateError("loop variables must be names", name.offset);
    scope.set(name.name, (*item.array)[j]);
  }
}

}  // namespace

// --- Scope -----------------------------------------------------------------------------------

const Value* Scope::lookup(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent)
    for (const auto& [key, value] : s->variables)
      if (key == name) return &value;
  return nullptr;
}

bool Scope::has_local(std::string_view name) const {
  for (const auto& entry : variables)
    if (entry.first == name) return true;
  return false;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [key, existing] : variables) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  variables.emplace_back(std::string(name), std::move(value));
}

// --- limits ----------------------------------------------------------------------------------

void Interpreter::check_string_size(std::size_t size) const {
  if (size > limits_.max_output_bytes)
    throw TemplateError(fmt::format("the template produced a string of more than {} bytes", limits_.max_output_bytes));
}

void Interpreter::check_list_size(std::size_t size) const {
  if (size > limits_.max_list_items)
    throw TemplateError(fmt::format("the template produced a list of more than {} items", limits_.max_list_items));
}

void Interpreter::count_step() {
  if (++steps_ > limits_.max_steps)
    throw TemplateError(fmt::format("the template ran more than {} loop iterations and macro calls", limits_.max_steps));
}

// --- statements ------------------------------------------------------------------------------

std::string Interpreter::render(const Program& program, Scope& globals) {
  std::string out;
  render_block(program.body, globals, out);
  if (control_ != Control::none)
    throw TemplateError(fmt::format("'{{% {} %}}' outside a for loop", control_ == Control::break_loop ? "break" : "continue"));
  return out;
}

void Interpreter::render_block(const std::vector<NodePtr>& statements, Scope& scope, std::string& out) {
  for (const auto& statement : statements) {
    try {
      render_statement(*statement, scope, out);
      if (control_ != Control::none) return;
      check_string_size(out.size());
    } catch (TemplateError& e) {
      e.locate(statement->offset);
      throw;
    }
  }
}

void Interpreter::render_statement(const Node& node, Scope& scope, std::string& out) {
  switch (node.kind) {
    case NodeKind::text: out += node.name; return;
    case NodeKind::comment: return;
    case NodeKind::if_block: {
      const bool taken = truthy(evaluate(*node.children[0], scope));
      render_block(taken ? node.body : node.alternate, scope, out);
      return;
    }
    case NodeKind::for_block: return render_for(node, scope, out);
    case NodeKind::set: return render_set(node, scope);
    case NodeKind::macro: return define_macro(node, scope);
    case NodeKind::break_loop: control_ = Control::break_loop; return;
    case NodeKind::continue_loop: control_ = Control::continue_loop; return;
    case NodeKind::call_block: {
      EvaluationGuard guard(*this, node);
      Value result = render_call_block(node, scope);
      if (!result.is_null() && !result.is_undefined()) out += display_string(result);
      return;
    }
    case NodeKind::filter_block: {
      std::string body;
      render_block(node.body, scope, body);
      Value result = apply_filter(Value::string(std::move(body)), *node.children[0], scope);
      if (!result.is_null() && !result.is_undefined()) out += display_string(result);
      return;
    }
    default: {
      const Value value = evaluate(node, scope);
      if (value.is_null() || value.is_undefined()) return;
      if (value.is_string()) out += value.text;
      else {
        try {
          out += display_string(value);
        } catch (TemplateError& e) {
          e.locate(node.offset);
          throw;
        }
      }
    }
  }
}

void Interpreter::render_for(const Node& node, Scope& scope, std::string& out) {
  EvaluationGuard guard(*this, node);
  Scope loop_scope(&scope);
  const Node& target = *node.children[0];
  const Node* iterable_node = node.children[1].get();
  const Node* condition = nullptr;
  if (iterable_node->kind == NodeKind::select) {
    condition = iterable_node->children[1].get();
    iterable_node = iterable_node->children[0].get();
  }
  Value iterable = evaluate(*iterable_node, loop_scope);
  if (iterable.is_object()) {
    Array keys;
    for (const auto& entry : iterable.object->entries()) keys.push_back(Value::string(entry.first));
    iterable = Value::make_array(std::move(keys));
  }
  if (!iterable.is_array())
    throw TemplateError(fmt::format("cannot loop over {}: a for loop needs a list or a dict", kind_description(iterable.kind)),
                        iterable_node->offset);
  const std::shared_ptr<Array> items = iterable.array;  // keeps the items alive while the body runs
  std::vector<std::size_t> selected;
  selected.reserve(items->size());
  for (std::size_t i = 0; i < items->size(); ++i) {
    const Value& item = (*items)[i];
    if (target.kind == NodeKind::tuple_literal) {
      // Upstream checks unpacking for every item before the loop runs.
      if (item.kind != Kind::array)
        throw TemplateError(fmt::format("cannot unpack {} into loop variables", kind_description(item.kind)), target.offset);
      if (item.array->size() != target.children.size())
        throw TemplateError(fmt::format("too {} items to unpack: {} loop variables, {} items",
                                        target.children.size() > item.array->size() ? "few" : "many",
                                        target.children.size(), item.array->size()),
                            target.offset);
    }
    if (condition) {
      count_step();
      Scope test_scope(&loop_scope);
      bind_target(target, item, test_scope);
      if (!truthy(evaluate(*condition, test_scope))) continue;
    }
    selected.push_back(i);
  }
  bool iterated = false;
  for (std::size_t i = 0; i < selected.size(); ++i) {
    count_step();
    loop_scope.set("loop", make_loop_object(i, selected, *items));
    bind_target(target, (*items)[selected[i]], loop_scope);
    std::string body;
    render_block(node.body, loop_scope, body);
    // Upstream drops the output of an iteration that ends in break or continue, and an else
    // block runs unless some iteration ran to its end.
    if (control_ == Control::continue_loop) {
      control_ = Control::none;
      continue;
    }
    if (control_ == Control::break_loop) {
      control_ = Control::none;
      break;
    }
    out += body;
    check_string_size(out.size());
    iterated = true;
  }
  if (!iterated) render_block(node.alternate, loop_scope, out);
}

void Interpreter::render_set(const Node& node, Scope& scope) {
  Value value;
  if (node.children[1]) {
    value = evaluate(*node.children[1], scope);
  } else {
    std::string body;
    render_block(node.body, scope, body);
    value = Value::string(std::move(body));
  }
  const Node& target = *node.children[0];
  switch (target.kind) {
    case NodeKind::identifier: scope.set(target.name, std::move(value)); return;
    case NodeKind::tuple_literal: {
      if (!value.is_array())
        throw TemplateError(fmt::format("cannot unpack {} in set", kind_description(value.kind)), node.offset);
      if (value.array->size() != target.children.size())
        throw TemplateError(fmt::format("too {} items to unpack in set: {} names, {} items",
                                        target.children.size() > value.array->size() ? "few" : "many",
                                        target.children.size(), value.array->size()),
                            node.offset);
      for (std::size_t i = 0; i < target.children.size(); ++i) {
        const Node& name = *target.children[i];
        if (name.kind != NodeKind::identifier) throw TemplateError("can only unpack into names in set", name.offset);
        scope.set(name.name, (*value.array)[i]);
      }
      return;
    }
    case NodeKind::member: {
      const Value object = evaluate(*target.children[0], scope);
      if (object.kind != Kind::name_space)
        throw TemplateError(fmt::format("cannot assign an attribute of {}: only a namespace() can be changed",
                                        kind_description(object.kind)),
                            target.offset, "create one with {% set ns = namespace(name=value) %}");
      const Node& property = *target.children[1];
      if (property.kind != NodeKind::identifier)
        throw TemplateError("can only assign a namespace attribute by name (ns.name)", property.offset);
      object.object->set(property.name, std::move(value));
      return;
    }
    default: throw TemplateError("cannot assign to this expression", target.offset);
  }
}

void Interpreter::define_macro(const Node& node, Scope& scope) {
  const Node* macro = &node;
  scope.set(node.name, Value::make_function(node.name, [macro](Interpreter& in, Arguments& arguments, Scope& call_scope) {
              return in.call_macro(*macro, arguments, call_scope);
            }));
}

// Upstream binds every parameter before evaluating defaults, so a default cannot see an outer
// variable of a parameter's name; extra positional or keyword arguments are errors unless the
// body reads varargs / kwargs.
void Interpreter::bind_arguments(const Node& macro, std::size_t first_parameter, Arguments& arguments, Scope& scope) {
  const std::string display = macro.kind == NodeKind::macro ? fmt::format("'{}'", macro.name) : "caller";
  Object keywords;
  std::size_t positional = arguments.size();
  if (positional > 0 && arguments.back().kind == Kind::keyword_arguments) {
    keywords = *arguments.back().object;
    --positional;
  }
  std::vector<std::pair<std::string, const Node*>> pending_defaults;
  const std::size_t parameter_count = macro.children.size() - first_parameter;
  for (std::size_t i = 0; i < parameter_count; ++i) {
    const Node& parameter = *macro.children[first_parameter + i];
    const std::string& name = parameter.name;
    const Value* value = i < positional ? &arguments[i] : nullptr;
    Value keyword_value;
    if (!value) {
      if (const Value* k = keywords.find(name)) {
        keyword_value = *k;
        keywords.erase(name);
        value = &keyword_value;
      }
    }
    if (!value && parameter.kind == NodeKind::keyword_argument) pending_defaults.emplace_back(name, parameter.child(0));
    scope.set(name, value ? *value : Value::undefined());
  }
  if (macro.reads_kwargs) {
    scope.set("kwargs", Value::make_object(std::move(keywords)));
  } else if (keywords.size() > 0) {
    throw TemplateError(fmt::format("macro {} takes no keyword argument '{}'", display, keywords.entries().front().first));
  }
  if (macro.reads_varargs) {
    Array rest;
    for (std::size_t i = parameter_count; i < positional; ++i) rest.push_back(arguments[i]);
    scope.set("varargs", Value::make_array(std::move(rest)));
  } else if (positional > parameter_count) {
    throw TemplateError(fmt::format("macro {} takes not more than {} argument(s), got {}", display, parameter_count, positional));
  }
  for (const auto& [name, default_value] : pending_defaults) scope.set(name, evaluate(*default_value, scope));
}

Value Interpreter::call_macro(const Node& macro, Arguments& arguments, Scope& call_scope) {
  count_step();
  if (++call_depth_ > limits_.max_call_depth) {
    --call_depth_;
    throw TemplateError(fmt::format("macro calls nested more than {} deep (runaway recursion?)", limits_.max_call_depth));
  }
  struct DepthRestore {
    int& depth;
    ~DepthRestore() { --depth; }
  } restore{call_depth_};
  // Macros resolve free variables in the scope they are called from, as upstream does.
  Scope macro_scope(&call_scope);
  bind_arguments(macro, 0, arguments, macro_scope);
  std::string out;
  render_block(macro.body, macro_scope, out);
  return Value::string(std::move(out));
}

Value Interpreter::render_call_block(const Node& node, Scope& scope) {
  const Node* block = &node;
  // The caller() function refers to this scope, which ends with this call; the flag turns a
  // caller() kept past that point into an error instead of a dangling reference.
  auto alive = std::make_shared<bool>(true);
  struct Expire {
    std::shared_ptr<bool> flag;
    ~Expire() { *flag = false; }
  } expire{alive};
  Scope* defining_scope = &scope;
  Value caller = Value::make_function("caller", [block, defining_scope, alive](Interpreter& in, Arguments& arguments, Scope&) {
    if (!*alive) throw TemplateError("caller() used after its {% call %} block ended");
    Scope caller_scope(defining_scope);
    in.bind_arguments(*block, 1, arguments, caller_scope);
    std::string out;
    in.render_block(block->body, caller_scope, out);
    return Value::string(std::move(out));
  });
  const Node& call = *node.children[0];
  EvaluatedArguments evaluated = evaluate_arguments(call, 1, scope);
  Arguments arguments = std::move(evaluated.positional);
  arguments.push_back(Value::make_object(std::move(evaluated.keywords), Kind::keyword_arguments));
  const Value function = evaluate(*call.children[0], scope);
  if (function.kind != Kind::function)
    throw TemplateError(fmt::format("'{}' is {}, not a macro", call.children[0]->name, kind_description(function.kind)),
                        call.offset);
  Scope call_scope(&scope);
  call_scope.set("caller", std::move(caller));
  return this->call(function, arguments, call_scope);
}

// --- expressions -----------------------------------------------------------------------------

Value Interpreter::evaluate(const Node& node, Scope& scope) {
  EvaluationGuard guard(*this, node);
  try {
    return evaluate_node(node, scope);
  } catch (TemplateError& e) {
    e.locate(node.offset);
    throw;
  }
}

Value Interpreter::evaluate_node(const Node& node, Scope& scope) {
  switch (node.kind) {
    case NodeKind::integer_literal: return Value::integer(node.number);
    case NodeKind::float_literal: return Value::floating(node.number);
    case NodeKind::string_literal:
    case NodeKind::text: return Value::string(node.name);
    case NodeKind::array_literal:
    case NodeKind::tuple_literal: {
      Array items;
      items.reserve(node.children.size());
      for (const auto& c : node.children) items.push_back(evaluate(*c, scope));
      return Value::make_array(std::move(items), node.kind == NodeKind::tuple_literal ? Kind::tuple : Kind::array);
    }
    case NodeKind::object_literal: {
      Object entries;
      for (std::size_t i = 0; i + 1 < node.children.size(); i += 2) {
        Value key = evaluate(*node.children[i], scope);
        if (!key.is_string())
          throw TemplateError(fmt::format("dict keys must be strings, got {}", kind_description(key.kind)),
                              node.children[i]->offset);
        entries.set(std::move(key.text), evaluate(*node.children[i + 1], scope));
      }
      return Value::make_object(std::move(entries));
    }
    case NodeKind::identifier: {
      const Value* value = scope.lookup(node.name);
      return value ? *value : Value::undefined();
    }
    case NodeKind::member: return evaluate_member(node, scope);
    case NodeKind::call: return evaluate_call(node, scope);
    case NodeKind::unary: return evaluate_unary(node, scope);
    case NodeKind::binary: return evaluate_binary(node, scope);
    case NodeKind::filter: return apply_filter(evaluate(*node.children[0], scope), node, scope);
    case NodeKind::test: {
      const Value operand = evaluate(*node.children[0], scope);
      return Value::from_bool(apply_test(node.name, operand, nullptr) != node.flag);
    }
    case NodeKind::select: {
      if (!truthy(evaluate(*node.children[1], scope))) return Value::undefined();
      return evaluate(*node.children[0], scope);
    }
    case NodeKind::ternary:
      return truthy(evaluate(*node.children[0], scope)) ? evaluate(*node.children[1], scope)
                                                        : evaluate(*node.children[2], scope);
    case NodeKind::keyword_argument:
    case NodeKind::spread:
    case NodeKind::keyword_spread: throw TemplateError("argument syntax outside a call");
    case NodeKind::slice: throw TemplateError("a slice outside '[...]'");
    default: {
      // A statement evaluated for its output (not reached from the parser's expressions).
      std::string out;
      render_statement(node, scope, out);
      return Value::string(std::move(out));
    }
  }
}

Value Interpreter::evaluate_unary(const Node& node, Scope& scope) {
  const Value operand = evaluate(*node.children[0], scope);
  if (node.op == Op::logical_not) return Value::from_bool(!truthy(operand));
  if (!numeric_like(operand))
    throw TemplateError(fmt::format("unary '{}' needs a number, got {}", op_spelling(node.op), kind_description(operand.kind)));
  const double n = numeric_value(operand) * (node.op == Op::negate ? -1 : 1);
  return number_result(n, operand.kind == Kind::floating);
}

Value Interpreter::evaluate_binary(const Node& node, Scope& scope) {
  const Op op = node.op;
  Value left = evaluate(*node.children[0], scope);
  if (op == Op::logical_and) return truthy(left) ? evaluate(*node.children[1], scope) : left;
  if (op == Op::logical_or) return truthy(left) ? left : evaluate(*node.children[1], scope);
  Value right = evaluate(*node.children[1], scope);
  if (op == Op::equal) return Value::from_bool(loose_equals(left, right));
  if (op == Op::not_equal) return Value::from_bool(!loose_equals(left, right));
  const auto fail = [&]() -> Value {
    throw TemplateError(fmt::format("unsupported operand types for '{}': {} and {}", op_spelling(op),
                                    kind_description(left.kind), kind_description(right.kind)));
  };
  if (left.is_undefined() || right.is_undefined()) {
    if (right.is_undefined() && (op == Op::in || op == Op::not_in)) return Value::from_bool(op == Op::not_in);
    throw TemplateError(fmt::format("cannot apply '{}' to an undefined value", op_spelling(op)), node.offset,
                        "check that the variable exists, e.g. with 'is defined'");
  }
  if (left.is_null() || right.is_null())
    throw TemplateError(fmt::format("cannot apply '{}' to none", op_spelling(op)));
  if (op == Op::concat) {
    std::string text = js_string(left);
    text += js_string(right);
    check_string_size(text.size());
    return Value::string(std::move(text));
  }
  if (op == Op::power && numeric_like(left) && numeric_like(right)) {
    const double a = numeric_value(left), b = numeric_value(right);
    if (a == 0 && b < 0) throw TemplateError("0.0 cannot be raised to a negative power");
    // JavaScript's ** differs from C's pow for (+-1) ** +-Infinity: NaN, not 1.
    const double result = std::isinf(b) && std::abs(a) == 1 ? NAN : std::pow(a, b);
    if (!std::isfinite(result)) throw TemplateError("the result of '**' is not a finite number");
    return number_result(result, left.kind == Kind::floating || right.kind == Kind::floating || b < 0);
  }
  if (left.is_number() && right.is_number()) {
    const double a = left.number, b = right.number;
    const bool is_float = left.kind == Kind::floating || right.kind == Kind::floating;
    switch (op) {
      case Op::add: return number_result(a + b, is_float);
      case Op::subtract: return number_result(a - b, is_float);
      case Op::multiply: return number_result(a * b, is_float);
      case Op::divide: return Value::floating(a / b);
      case Op::floor_divide: return number_result(std::floor(a / b), is_float);
      case Op::modulo: return number_result(std::fmod(a, b), is_float);
      case Op::less: return Value::from_bool(a < b);
      case Op::greater: return Value::from_bool(a > b);
      case Op::greater_equal: return Value::from_bool(a >= b);
      case Op::less_equal: return Value::from_bool(a <= b);
      default: break;
    }
  } else if (left.is_array() && right.is_array()) {
    if (op == Op::add) {
      check_list_size(left.array->size() + right.array->size());
      Array joined = *left.array;
      joined.insert(joined.end(), right.array->begin(), right.array->end());
      return Value::make_array(std::move(joined));
    }
  } else if (right.is_array()) {
    if (op == Op::in || op == Op::not_in) {
      bool found = false;
      for (const Value& item : *right.array)
        if (strict_equals(item, left)) {
          found = true;
          break;
        }
      return Value::from_bool(found == (op == Op::in));
    }
  }
  if ((left.is_string() || right.is_string()) && op == Op::add) {
    std::string text = js_string(left);
    text += js_string(right);
    check_string_size(text.size());
    return Value::string(std::move(text));
  }
  if (left.is_string() && right.is_string() && (op == Op::in || op == Op::not_in))
    return Value::from_bool((right.text.find(left.text) != std::string::npos) == (op == Op::in));
  if (left.is_string() && right.is_object() && (op == Op::in || op == Op::not_in))
    return Value::from_bool((right.object->find(left.text) != nullptr) == (op == Op::in));
  return fail();
}

Value get_member(const Value& object, const Value& property) {
  if (object.has_attributes()) {
    if (!property.is_string())
      throw TemplateError(fmt::format("cannot index {} with {}: keys are strings", kind_description(object.kind),
                                      kind_description(property.kind)));
    if (const Value* v = object.object->find(property.text)) return *v;
    if (object.is_object() && is_object_method(property.text)) {
      const std::string name = property.text;
      return Value::make_function(name, [object, name](Interpreter& in, Arguments& arguments, Scope&) {
        return call_object_method(in, object, name, arguments);
      });
    }
    return Value::undefined();
  }
  if (object.is_array() || object.is_string()) {
    if (property.kind == Kind::integer) {
      const auto index = static_cast<long long>(property.number);
      if (object.is_string()) {
        std::string character;
        return utf16_char_at(object.text, index, character) ? Value::string(std::move(character)) : Value::undefined();
      }
      const auto size = static_cast<long long>(object.array->size());
      const long long at = index < 0 ? index + size : index;
      return at >= 0 && at < size ? (*object.array)[static_cast<std::size_t>(at)] : Value::undefined();
    }
    if (!property.is_string())
      throw TemplateError(fmt::format("cannot index {} with {}", kind_description(object.kind), kind_description(property.kind)));
    if (property.text == "length")
      return Value::integer(static_cast<double>(object.is_string() ? utf16_length(object.text) : object.array->size()));
    if (object.is_string() && is_string_method(property.text)) {
      const std::string text = object.text, name = property.text;
      return Value::make_function(name, [text, name](Interpreter& in, Arguments& arguments, Scope&) {
        return call_string_method(in, text, name, arguments);
      });
    }
    return Value::undefined();
  }
  if (!property.is_string())
    throw TemplateError(fmt::format("cannot index {} with {}", kind_description(object.kind), kind_description(property.kind)));
  return Value::undefined();
}

Value get_attribute_path(const Value& item, std::string_view path) {
  Value value = item;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = path.find('.', start);
    const std::string_view part = path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (value.has_attributes()) {
      const Value* v = value.object->find(part);
      value = v ? *v : Value::undefined();
    } else if (value.is_array()) {
      const double index = js_parse_int(part);
      if (std::isnan(index) || index < 0 || index >= static_cast<double>(value.array->size())) return Value::undefined();
      value = Value((*value.array)[static_cast<std::size_t>(index)]);
    } else {
      return Value::undefined();
    }
    if (dot == std::string_view::npos) return value;
    start = dot + 1;
  }
}

Value Interpreter::evaluate_member(const Node& node, Scope& scope) {
  const Value object = evaluate(*node.children[0], scope);
  const Node& property_node = *node.children[1];
  if (node.flag && property_node.kind == NodeKind::slice) return evaluate_slice(object, property_node, scope);
  Value property;
  if (node.flag) property = evaluate(property_node, scope);
  else if (property_node.kind == NodeKind::integer_literal) property = Value::integer(property_node.number);
  else property = Value::string(property_node.name);
  return get_member(object, property);
}

Value Interpreter::evaluate_slice(const Value& object, const Node& slice, Scope& scope) {
  if (!object.is_array() && !object.is_string())
    throw TemplateError(fmt::format("cannot slice {}: only lists and strings", kind_description(object.kind)));
  Value bounds[3];
  for (int i = 0; i < 3; ++i) {
    if (const Node* part = slice.child(static_cast<std::size_t>(i))) bounds[i] = evaluate(*part, scope);
    if (!bounds[i].is_undefined() && bounds[i].kind != Kind::integer)
      throw TemplateError(fmt::format("slice bounds must be integers, got {}", kind_description(bounds[i].kind)));
  }
  if (object.is_array()) {
    Array out;
    for (long long i : slice_indexes(static_cast<long long>(object.array->size()), bounds[0], bounds[1], bounds[2]))
      out.push_back((*object.array)[static_cast<std::size_t>(i)]);
    return Value::make_array(std::move(out));
  }
  // Strings slice by code point (upstream slices Array.from(string)).
  std::vector<std::string_view> characters;
  for (std::size_t i = 0; i < object.text.size();) {
    char32_t cp = 0;
    const std::size_t n = decode_utf8(object.text, i, cp);
    characters.push_back(std::string_view(object.text).substr(i, n));
    i += n;
  }
  std::string out;
  for (long long i : slice_indexes(static_cast<long long>(characters.size()), bounds[0], bounds[1], bounds[2]))
    out += characters[static_cast<std::size_t>(i)];
  return Value::string(std::move(out));
}

EvaluatedArguments Interpreter::evaluate_arguments(const Node& call, std::size_t first_argument, Scope& scope) {
  EvaluatedArguments result;
  // Positional arguments first, then keywords, as upstream evaluates them.
  for (std::size_t i = first_argument; i < call.children.size(); ++i) {
    const Node* argument = call.children[i].get();
    if (!argument || argument->kind == NodeKind::keyword_argument || argument->kind == NodeKind::keyword_spread) continue;
    if (argument->kind == NodeKind::spread) {
      const Value spread = evaluate(*argument->children[0], scope);
      if (!spread.is_array())
        throw TemplateError(fmt::format("cannot unpack {} with '*'", kind_description(spread.kind)), argument->offset);
      result.positional.insert(result.positional.end(), spread.array->begin(), spread.array->end());
    } else {
      result.positional.push_back(evaluate(*argument, scope));
    }
  }
  const auto add_keyword = [&](const std::string& name, Value value, std::size_t offset) {
    if (result.keywords.find(name))
      throw TemplateError(fmt::format("got multiple values for keyword argument '{}'", name), offset);
    result.keywords.set(name, std::move(value));
  };
  for (std::size_t i = first_argument; i < call.children.size(); ++i) {
    const Node* argument = call.children[i].get();
    if (!argument) continue;
    if (argument->kind == NodeKind::keyword_argument) {
      add_keyword(argument->name, evaluate(*argument->children[0], scope), argument->offset);
    } else if (argument->kind == NodeKind::keyword_spread) {
      const Value spread = evaluate(*argument->children[0], scope);
      if (!spread.is_object())
        throw TemplateError(fmt::format("'**' needs a dict, got {}", kind_description(spread.kind)), argument->offset);
      for (const auto& [key, value] : spread.object->entries()) add_keyword(key, value, argument->offset);
    }
  }
  return result;
}

Value Interpreter::call(const Value& function, Arguments& arguments, Scope& scope) {
  if (function.kind != Kind::function)
    throw TemplateError(fmt::format("cannot call {}: it is not a function", kind_description(function.kind)));
  // Hold the function while it runs: a macro may replace the variable that stored it.
  const std::shared_ptr<Function> held = function.function;
  return held->call(*this, arguments, scope);
}

Value Interpreter::evaluate_call(const Node& node, Scope& scope) {
  EvaluatedArguments evaluated = evaluate_arguments(node, 1, scope);
  Arguments arguments = std::move(evaluated.positional);
  if (evaluated.keywords.size() > 0)
    arguments.push_back(Value::make_object(std::move(evaluated.keywords), Kind::keyword_arguments));
  const Node& callee = *node.children[0];
  // obj.method(...): call string and dict methods directly instead of through a bound function.
  if (callee.kind == NodeKind::member && !(callee.flag && callee.children[1]->kind == NodeKind::slice)) {
    const Value object = evaluate(*callee.children[0], scope);
    const Node& property_node = *callee.children[1];
    Value property;
    if (callee.flag) property = evaluate(property_node, scope);
    else if (property_node.kind == NodeKind::integer_literal) property = Value::integer(property_node.number);
    else property = Value::string(property_node.name);
    try {
      if (property.is_string()) {
        if (object.is_string() && is_string_method(property.text))
          return call_string_method(*this, object.text, property.text, arguments);
        if (object.is_object() && !object.object->find(property.text) && is_object_method(property.text))
          return call_object_method(*this, object, property.text, arguments);
      }
      const Value function = get_member(object, property);
      if (function.kind != Kind::function)
        throw TemplateError(fmt::format("cannot call '{}': it is {}", property.is_string() ? property.text : display_string(property),
                                        kind_description(function.kind)));
      return call(function, arguments, scope);
    } catch (TemplateError& e) {
      e.locate(callee.offset);
      throw;
    }
  }
  const Value function = evaluate(callee, scope);
  if (function.kind != Kind::function) {
    if (callee.kind == NodeKind::identifier)
      throw TemplateError(fmt::format("cannot call '{}': it is {}", callee.name, kind_description(function.kind)), callee.offset,
                          function.is_undefined() ? "no variable, macro or function has that name" : "");
    throw TemplateError(fmt::format("cannot call {}: it is not a function", kind_description(function.kind)), callee.offset);
  }
  return call(function, arguments, scope);
}

}  // namespace alignkit::jinja
