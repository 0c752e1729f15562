// The parsed template: one node type for statements and expressions, with a kind and a fixed
// meaning for its children per kind (listed below), after @huggingface/jinja's AST.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace alignkit::jinja {

enum class NodeKind : unsigned char {
  // Statements. `body` and `alternate` are statement lists.
  text,            // name: the text
  comment,         // renders nothing
  if_block,        // children[0]: test; body; alternate (an elif is one nested if_block)
  for_block,       // children[0]: target (identifier or tuple), children[1]: iterable; body; alternate: else
  set,             // children[0]: target, children[1]: value, or none and `body` for a block set
  macro,           // name; children: parameters (identifiers or keyword_argument defaults); body
  call_block,      // children[0]: the call; children[1..]: caller parameters; body
  filter_block,    // children[0]: a filter node whose operand is empty; body
  break_loop,
  continue_loop,
  // Expressions.
  integer_literal,   // number
  float_literal,     // number
  string_literal,    // name
  array_literal,     // children: items
  tuple_literal,     // children: items
  object_literal,    // children: key, value, key, value, ...
  identifier,        // name
  member,            // children[0]: object, children[1]: property; flag: computed (obj[prop])
  slice,             // children[0..2]: start, stop, step, each possibly null
  call,              // children[0]: callee, children[1..]: arguments
  keyword_argument,  // name: keyword, children[0]: value
  spread,            // *children[0]
  keyword_spread,    // **children[0]
  unary,             // op; children[0]: operand
  binary,            // op; children[0], children[1]
  filter,            // name: filter; children[0]: operand; children[1..]: arguments; flag: written with (...)
  test,              // name: test; children[0]: operand; flag: negated (is not)
  select,            // children[0]: value, children[1]: condition (a if b, no else)
  ternary,           // children[0]: condition, children[1]: if true, children[2]: if false
};

enum class Op : unsigned char {
  none, add, subtract, concat, multiply, divide, floor_divide, modulo, power,
  equal, not_equal, less, greater, less_equal, greater_equal, in, not_in,
  logical_and, logical_or, logical_not, negate, plus,
};

struct Node;
using NodePtr = std::unique_ptr<Node>;

struct Node {
  NodeKind kind;
  std::size_t offset = 0;  // where the node starts in the source, for messages
  int depth = 1;           // 1 + the deepest child's depth; bounded so evaluation cannot overflow the stack
  Op op = Op::none;
  bool flag = false;
  double number = 0;
  std::string name;
  std::vector<NodePtr> children;
  std::vector<NodePtr> body;
  std::vector<NodePtr> alternate;
  // Macros and call blocks: whether the body reads `varargs` / `kwargs`, which decides whether
  // extra arguments are an error (filled in by the parser).
  bool reads_varargs = false;
  bool reads_kwargs = false;

  Node(NodeKind k, std::size_t at) : kind(k), offset(at) {}
  const Node* child(std::size_t i) const { return i < children.size() ? children[i].get() : nullptr; }
};

struct Program {
  std::vector<NodePtr> body;
};

}  // namespace alignkit::jinja
