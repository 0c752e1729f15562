#include "parser.hpp"

#include "template_error.hpp"

#include <fmt/format.h>

#include <alignkit/did_you_mean.hpp>

#include <algorithm>
#include <array>
#include <set>

namespace alignkit::jinja {

namespace {

// Parser recursion (nested blocks and brackets) and node depth limits: deep enough for any real
// template, shallow enough that parsing, evaluating and freeing the tree cannot exhaust the stack.
constexpr int kMaxRecursion = 200;
constexpr int kMaxNodeDepth = 400;

// Filters @huggingface/jinja implements, then ours beyond it (Python Jinja2 semantics).
constexpr std::array<std::string_view, 31> kUpstreamFilters{
    "safe",  "tojson",  "list",       "first",      "last",    "length", "reverse", "sort",
    "join",  "string",  "unique",     "upper",      "lower",   "title",  "capitalize", "trim",
    "indent", "int",    "float",      "abs",        "items",   "bool",   "default", "selectattr",
    "rejectattr", "map", "replace",   "get",        "keys",    "values", "dictsort"};
constexpr std::array<std::string_view, 7> kExtraFilters{"round", "select", "reject", "escape", "e", "count", "sum"};
constexpr std::array<std::string_view, 19> kTests{
    "boolean", "callable", "odd",      "even",     "false",  "true",    "none",
    "string",  "number",   "integer",  "iterable", "mapping", "sequence", "lower",
    "upper",   "defined",  "undefined", "equalto", "eq"};

template <typename Names>
std::string join_names(const Names& names) {
  std::string out;
  for (std::string_view n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

// The nearest enclosing block, for "unclosed block" messages.
struct OpenBlock {
  std::string_view keyword;  // "if", "for", ...
  std::size_t offset;
};

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, std::size_t source_size) : tokens_(tokens), source_size_(source_size) {}

  Program run() {
    Program program;
    while (current_ < tokens_.size()) program.body.push_back(parse_any());
    return program;
  }

 private:
  struct RecursionGuard {
    Parser& parser;
    explicit RecursionGuard(Parser& p, std::size_t offset) : parser(p) {
      if (++parser.recursion_ > kMaxRecursion)
        throw TemplateError(fmt::format("template nested more than {} levels deep", kMaxRecursion), offset);
    }
    ~RecursionGuard() { --parser.recursion_; }
  };

  // --- token helpers ---------------------------------------------------------------------------
  bool at_end() const { return current_ >= tokens_.size(); }
  const Token* peek(std::size_t ahead = 0) const {
    return current_ + ahead < tokens_.size() ? &tokens_[current_ + ahead] : nullptr;
  }
  std::size_t here() const { return at_end() ? end_offset() : tokens_[current_].offset; }
  std::size_t end_offset() const {
    return tokens_.empty() ? 0 : std::min(source_size_, tokens_.back().offset + tokens_.back().value.size());
  }
  bool is(TokenType type) const { return !at_end() && tokens_[current_].type == type; }
  bool is_word(std::string_view word, std::size_t ahead = 0) const {
    const Token* t = peek(ahead);
    return t && t->type == TokenType::identifier && t->value == word;
  }
  bool is_statement(std::initializer_list<std::string_view> names) const {
    const Token* open = peek();
    const Token* name = peek(1);
    if (!open || open->type != TokenType::open_statement || !name || name->type != TokenType::identifier) return false;
    return std::find(names.begin(), names.end(), name->value) != names.end();
  }

  [[noreturn]] void fail_expected(std::string_view expected) const {
    if (at_end()) {
      std::string help;
      if (!open_blocks_.empty())
        help = fmt::format("the '{{% {} %}}' block opened here is still open", open_blocks_.back().keyword);
      throw TemplateError(fmt::format("unexpected end of template, expected {}", expected),
                          open_blocks_.empty() ? end_offset() : open_blocks_.back().offset, help);
    }
    const Token& t = tokens_[current_];
    std::string found = t.type == TokenType::identifier || t.type == TokenType::numeric
                            ? fmt::format("'{}'", t.value)
                            : token_description(t.type);
    throw TemplateError(fmt::format("expected {}, found {}", expected, found), t.offset);
  }

  const Token& expect(TokenType type, std::string_view expected) {
    if (!is(type)) fail_expected(expected);
    return tokens_[current_++];
  }
  void expect_word(std::string_view word) {
    if (!is_word(word)) fail_expected(fmt::format("'{}'", word));
    ++current_;
  }
  // {% endX %} closing the innermost open block.
  void expect_end(std::string_view end_keyword) {
    expect(TokenType::open_statement, fmt::format("'{{% {} %}}'", end_keyword));
    expect_word(end_keyword);
    expect(TokenType::close_statement, "'%}'");
  }

  // Parses statements until one of `terminators` opens; fails at the end of the template.
  std::vector<NodePtr> parse_body(std::initializer_list<std::string_view> terminators) {
    std::vector<NodePtr> body;
    while (!is_statement(terminators)) {
      if (at_end()) {
        const OpenBlock& block = open_blocks_.back();
        std::string expected;
        for (std::string_view t : terminators) expected += (expected.empty() ? "" : " or ") + fmt::format("'{{% {} %}}'", t);
        throw TemplateError(fmt::format("unclosed '{{% {} %}}' block: expected {} before the end of the template",
                                        block.keyword, expected),
                            block.offset);
      }
      body.push_back(parse_any());
    }
    return body;
  }

  static NodePtr make(NodeKind kind, std::size_t offset) { return std::make_unique<Node>(kind, offset); }

  // Records a finished node's depth, refusing trees too deep to evaluate safely.
  static NodePtr seal(NodePtr node) {
    int deepest = 0;
    for (const auto* list : {&node->children, &node->body, &node->alternate})
      for (const auto& c : *list)
        if (c) deepest = std::max(deepest, c->depth);
    node->depth = deepest + 1;
    if (node->depth > kMaxNodeDepth)
      throw TemplateError(fmt::format("expression or block nested more than {} levels deep", kMaxNodeDepth), node->offset,
                          "split it with {% set %} into smaller pieces");
    return node;
  }

  // --- statements ------------------------------------------------------------------------------
  NodePtr parse_any() {
    RecursionGuard guard(*this, here());
    const Token& t = tokens_[current_];
    switch (t.type) {
      case TokenType::comment: {
        ++current_;
        return make(NodeKind::comment, t.offset);
      }
      case TokenType::text: {
        ++current_;
        auto node = make(NodeKind::text, t.offset);
        node->name = t.value;
        return node;
      }
      case TokenType::open_statement: return parse_statement();
      case TokenType::open_expression: {
        ++current_;
        auto expression = parse_expression();
        expect(TokenType::close_expression, "'}}'");
        return expression;
      }
      default: throw TemplateError(fmt::format("unexpected {} outside a tag", token_description(t.type)), t.offset);
    }
  }

  NodePtr parse_statement() {
    const std::size_t start = tokens_[current_].offset;
    ++current_;  // {%
    if (!is(TokenType::identifier)) fail_expected("a statement name (if, for, set, macro, ...)");
    const std::string keyword = tokens_[current_].value;
    ++current_;
    if (keyword == "set") return parse_set(start);
    if (keyword == "if") {
      open_blocks_.push_back({"if", start});
      auto node = parse_if(start);
      expect_end("endif");
      open_blocks_.pop_back();
      return node;
    }
    if (keyword == "for") return parse_for(start);
    if (keyword == "macro") return parse_macro(start);
    if (keyword == "call") return parse_call_block(start);
    if (keyword == "filter") return parse_filter_block(start);
    if (keyword == "break" || keyword == "continue") {
      expect(TokenType::close_statement, "'%}'");
      return make(keyword == "break" ? NodeKind::break_loop : NodeKind::continue_loop, start);
    }
    static const std::set<std::string_view> kEnds{"endif", "endfor", "endset", "endmacro", "endcall", "endfilter",
                                                  "elif", "else"};
    if (kEnds.contains(keyword)) {
      if (open_blocks_.empty())
        throw TemplateError(fmt::format("unexpected '{{% {} %}}' with no open block it could close", keyword), start);
      const OpenBlock& open = open_blocks_.back();
      throw TemplateError(fmt::format("unexpected '{{% {} %}}': the '{{% {} %}}' block must be closed first with '{{% end{} %}}'",
                                      keyword, open.keyword, open.keyword),
                          start);
    }
    throw TemplateError(fmt::format("unknown statement '{}'", keyword), start,
                        "the statements are if/elif/else, for/else, set, macro, call, filter, break and continue");
  }

  NodePtr parse_set(std::size_t start) {
    auto node = make(NodeKind::set, start);
    node->children.push_back(parse_expression_sequence(false));
    if (is(TokenType::equals)) {
      ++current_;
      node->children.push_back(parse_expression_sequence(false));
    } else {
      expect(TokenType::close_statement, "'=' or '%}'");
      node->children.push_back(nullptr);
      open_blocks_.push_back({"set", start});
      node->body = parse_body({"endset"});
      open_blocks_.pop_back();
      expect(TokenType::open_statement, "'{% endset %}'");
      expect_word("endset");
    }
    expect(TokenType::close_statement, "'%}'");
    return seal(std::move(node));
  }

  NodePtr parse_if(std::size_t start) {
    auto node = make(NodeKind::if_block, start);
    node->children.push_back(parse_expression());
    expect(TokenType::close_statement, "'%}'");
    node->body = parse_body({"elif", "else", "endif"});
    if (is_statement({"elif"})) {
      const std::size_t elif_at = tokens_[current_].offset;
      current_ += 2;
      node->alternate.push_back(parse_if(elif_at));
    } else if (is_statement({"else"})) {
      current_ += 2;
      expect(TokenType::close_statement, "'%}'");
      node->alternate = parse_body({"endif"});
    }
    return seal(std::move(node));
  }

  NodePtr parse_for(std::size_t start) {
    auto node = make(NodeKind::for_block, start);
    auto target = parse_expression_sequence(true);
    if (target->kind != NodeKind::identifier && target->kind != NodeKind::tuple_literal)
      throw TemplateError("expected a name or names (a, b) for the loop variable", target->offset);
    node->children.push_back(std::move(target));
    if (!is_word("in")) fail_expected("'in' after the loop variable");
    ++current_;
    node->children.push_back(parse_expression());
    expect(TokenType::close_statement, "'%}'");
    open_blocks_.push_back({"for", start});
    node->body = parse_body({"endfor", "else"});
    if (is_statement({"else"})) {
      current_ += 2;
      expect(TokenType::close_statement, "'%}'");
      node->alternate = parse_body({"endfor"});
    }
    expect_end("endfor");
    open_blocks_.pop_back();
    return seal(std::move(node));
  }

  NodePtr parse_macro(std::size_t start) {
    auto node = make(NodeKind::macro, start);
    auto name = parse_primary();
    if (name->kind != NodeKind::identifier) throw TemplateError("expected the macro's name", name->offset);
    node->name = name->name;
    node->children = parse_arguments(true);
    expect(TokenType::close_statement, "'%}'");
    open_blocks_.push_back({"macro", start});
    node->body = parse_body({"endmacro"});
    expect_end("endmacro");
    open_blocks_.pop_back();
    find_special_arguments(*node);
    return seal(std::move(node));
  }

  NodePtr parse_call_block(std::size_t start) {
    auto node = make(NodeKind::call_block, start);
    std::vector<NodePtr> caller_parameters;
    if (is(TokenType::open_paren)) caller_parameters = parse_arguments(true);
    auto callee = parse_primary();
    if (callee->kind != NodeKind::identifier) throw TemplateError("expected a macro name after 'call'", callee->offset);
    auto call = make(NodeKind::call, callee->offset);
    call->children.push_back(std::move(callee));
    for (auto& argument : parse_arguments(false)) call->children.push_back(std::move(argument));
    node->children.push_back(seal(std::move(call)));
    for (auto& p : caller_parameters) node->children.push_back(std::move(p));
    expect(TokenType::close_statement, "'%}'");
    open_blocks_.push_back({"call", start});
    node->body = parse_body({"endcall"});
    expect_end("endcall");
    open_blocks_.pop_back();
    find_special_arguments(*node);
    return seal(std::move(node));
  }

  NodePtr parse_filter_block(std::size_t start) {
    auto node = make(NodeKind::filter_block, start);
    auto name = parse_primary();
    if (name->kind != NodeKind::identifier) throw TemplateError("expected a filter name", name->offset);
    auto filter = make(NodeKind::filter, name->offset);
    filter->name = name->name;
    check_filter_name(filter->name, filter->offset);
    filter->children.push_back(nullptr);
    if (is(TokenType::open_paren)) {
      filter->flag = true;
      for (auto& argument : parse_arguments(false)) filter->children.push_back(std::move(argument));
    }
    node->children.push_back(seal(std::move(filter)));
    expect(TokenType::close_statement, "'%}'");
    open_blocks_.push_back({"filter", start});
    node->body = parse_body({"endfilter"});
    expect_end("endfilter");
    open_blocks_.pop_back();
    return seal(std::move(node));
  }

  // Whether a macro (or call block) body reads `varargs` or `kwargs` without declaring them.
  static void find_special_arguments(Node& macro) {
    std::set<std::string> declared;
    const auto parameter_name = [](const Node& p) -> const std::string& { return p.name; };
    const std::size_t first_parameter = macro.kind == NodeKind::call_block ? 1 : 0;
    for (std::size_t i = first_parameter; i < macro.children.size(); ++i) declared.insert(parameter_name(*macro.children[i]));
    struct Visitor {
      std::set<std::string>& declared;
      Node& macro;
      void declare_target(const Node* target) {
        if (!target) return;
        if (target->kind == NodeKind::identifier) declared.insert(target->name);
        if (target->kind == NodeKind::tuple_literal)
          for (const auto& c : target->children) declare_target(c.get());
      }
      void visit(const Node* n) {
        if (!n) return;
        if (n->kind == NodeKind::identifier) {
          if (n->name == "varargs" && !declared.contains("varargs")) macro.reads_varargs = true;
          if (n->name == "kwargs" && !declared.contains("kwargs")) macro.reads_kwargs = true;
          return;
        }
        if (n->kind == NodeKind::for_block || n->kind == NodeKind::set) declare_target(n->child(0));
        if (n->kind == NodeKind::macro)
          for (const auto& c : n->children) declared.insert(c->name);
        const std::size_t skip_target = n->kind == NodeKind::for_block || n->kind == NodeKind::set ? 1 : 0;
        for (std::size_t i = skip_target; i < n->children.size(); ++i) visit(n->children[i].get());
        for (const auto& c : n->body) visit(c.get());
        for (const auto& c : n->alternate) visit(c.get());
      }
    } visitor{declared, macro};
    // Parameter defaults first, then the body, as upstream does.
    for (std::size_t i = first_parameter; i < macro.children.size(); ++i)
      if (macro.children[i]->kind == NodeKind::keyword_argument) visitor.visit(macro.children[i]->child(0));
    for (const auto& statement : macro.body) visitor.visit(statement.get());
  }

  // --- expressions -----------------------------------------------------------------------------
  NodePtr parse_expression_sequence(bool primary) {
    const std::size_t start = here();
    auto first = primary ? parse_primary() : parse_expression();
    if (!is(TokenType::comma)) return first;
    auto tuple = make(NodeKind::tuple_literal, start);
    tuple->children.push_back(std::move(first));
    while (is(TokenType::comma)) {
      ++current_;
      tuple->children.push_back(primary ? parse_primary() : parse_expression());
    }
    return seal(std::move(tuple));
  }

  NodePtr parse_expression() {
    RecursionGuard guard(*this, here());
    return parse_if_expression();
  }

  NodePtr parse_if_expression() {
    auto value = parse_or();
    if (!is_word("if")) return value;
    const std::size_t at = tokens_[current_].offset;
    ++current_;
    auto condition = parse_or();
    if (is_word("else")) {
      ++current_;
      auto node = make(NodeKind::ternary, at);
      node->children.push_back(std::move(condition));
      node->children.push_back(std::move(value));
      node->children.push_back(parse_if_expression());
      return seal(std::move(node));
    }
    auto node = make(NodeKind::select, at);
    node->children.push_back(std::move(value));
    node->children.push_back(std::move(condition));
    return seal(std::move(node));
  }

  NodePtr binary(Op op, std::size_t at, NodePtr left, NodePtr right) {
    auto node = make(NodeKind::binary, at);
    node->op = op;
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return seal(std::move(node));
  }

  NodePtr parse_or() {
    auto left = parse_and();
    while (is_word("or")) {
      const std::size_t at = tokens_[current_++].offset;
      left = binary(Op::logical_or, at, std::move(left), parse_and());
    }
    return left;
  }

  NodePtr parse_and() {
    auto left = parse_not();
    while (is_word("and")) {
      const std::size_t at = tokens_[current_++].offset;
      left = binary(Op::logical_and, at, std::move(left), parse_not());
    }
    return left;
  }

  NodePtr parse_not() {
    if (!is_word("not")) return parse_comparison();
    RecursionGuard guard(*this, here());
    const std::size_t at = tokens_[current_++].offset;
    auto node = make(NodeKind::unary, at);
    node->op = Op::logical_not;
    node->children.push_back(parse_not());
    return seal(std::move(node));
  }

  NodePtr parse_comparison() {
    auto left = parse_additive();
    while (true) {
      Op op = Op::none;
      const std::size_t at = here();
      if (is_word("not") && is_word("in", 1)) {
        op = Op::not_in;
        current_ += 2;
      } else if (is_word("in")) {
        op = Op::in;
        ++current_;
      } else if (is(TokenType::comparison)) {
        const std::string& v = tokens_[current_++].value;
        op = v == "==" ? Op::equal : v == "!=" ? Op::not_equal : v == "<" ? Op::less : v == ">" ? Op::greater
           : v == "<=" ? Op::less_equal : Op::greater_equal;
      } else {
        break;
      }
      left = binary(op, at, std::move(left), parse_additive());
    }
    return left;
  }

  NodePtr parse_additive() {
    auto left = parse_multiplicative();
    while (is(TokenType::additive)) {
      const Token& t = tokens_[current_++];
      const Op op = t.value == "+" ? Op::add : t.value == "-" ? Op::subtract : Op::concat;
      left = binary(op, t.offset, std::move(left), parse_multiplicative());
    }
    return left;
  }

  NodePtr parse_multiplicative() {
    auto left = parse_power();
    while (is(TokenType::multiplicative)) {
      const Token& t = tokens_[current_++];
      const Op op = t.value == "*" ? Op::multiply : t.value == "/" ? Op::divide : t.value == "//" ? Op::floor_divide : Op::modulo;
      left = binary(op, t.offset, std::move(left), parse_power());
    }
    return left;
  }

  NodePtr parse_power() {
    auto left = parse_test();
    while (is(TokenType::power)) {
      const std::size_t at = tokens_[current_++].offset;
      left = binary(Op::power, at, std::move(left), parse_test());
    }
    return left;
  }

  NodePtr parse_test() {
    auto operand = parse_filter();
    while (is_word("is")) {
      const std::size_t at = tokens_[current_++].offset;
      const bool negate = is_word("not");
      if (negate) ++current_;
      auto name = parse_primary();
      if (name->kind != NodeKind::identifier) throw TemplateError("expected a test name after 'is'", name->offset);
      if (!is_known_test(name->name))
        throw TemplateError(fmt::format("unknown test '{}'", name->name), name->offset,
                            suggestion(name->name, std::vector<std::string>(kTests.begin(), kTests.end())));
      auto node = make(NodeKind::test, at);
      node->name = name->name;
      node->flag = negate;
      node->children.push_back(std::move(operand));
      operand = seal(std::move(node));
    }
    return operand;
  }

  void check_filter_name(const std::string& name, std::size_t offset) const {
    if (is_known_filter(name)) return;
    std::vector<std::string> all(kUpstreamFilters.begin(), kUpstreamFilters.end());
    all.insert(all.end(), kExtraFilters.begin(), kExtraFilters.end());
    throw TemplateError(fmt::format("unknown filter '{}'", name), offset, suggestion(name, all));
  }

  NodePtr parse_filter() {
    auto operand = parse_unary_sign();
    while (is(TokenType::pipe)) {
      ++current_;
      auto name = parse_primary();
      if (name->kind != NodeKind::identifier) throw TemplateError("expected a filter name after '|'", name->offset);
      check_filter_name(name->name, name->offset);
      auto node = make(NodeKind::filter, name->offset);
      node->name = name->name;
      node->children.push_back(std::move(operand));
      if (is(TokenType::open_paren)) {
        node->flag = true;
        for (auto& argument : parse_arguments(false)) node->children.push_back(std::move(argument));
        if (is(TokenType::dot) || is(TokenType::open_square) || is(TokenType::open_paren))
          fail_expected("the end of the filter (wrap it in parentheses to use its result)");
      }
      operand = seal(std::move(node));
    }
    return operand;
  }

  NodePtr parse_unary_sign() {
    const Token* t = peek();
    if (t && (t->type == TokenType::unary || t->type == TokenType::additive) && (t->value == "-" || t->value == "+")) {
      RecursionGuard guard(*this, t->offset);
      ++current_;
      auto node = make(NodeKind::unary, t->offset);
      node->op = t->value == "-" ? Op::negate : Op::plus;
      node->children.push_back(parse_unary_sign());
      return seal(std::move(node));
    }
    auto member = parse_member(parse_primary());
    if (is(TokenType::open_paren)) return parse_call(std::move(member));
    return member;
  }

  NodePtr parse_call(NodePtr callee) {
    while (true) {
      auto node = make(NodeKind::call, callee->offset);
      node->children.push_back(std::move(callee));
      for (auto& argument : parse_arguments(false)) node->children.push_back(std::move(argument));
      callee = parse_member(seal(std::move(node)));
      if (!is(TokenType::open_paren)) return callee;
    }
  }

  // ( args ): positional, name=value, *spread, **spread; `parameters` for macro definitions.
  std::vector<NodePtr> parse_arguments(bool parameters) {
    expect(TokenType::open_paren, "'('");
    std::vector<NodePtr> arguments;
    std::set<std::string> names;
    bool saw_keyword = false;
    bool saw_spread = false;
    while (!is(TokenType::close_paren)) {
      if (at_end()) fail_expected("')'");
      const std::size_t at = here();
      const bool keyword_spread = is(TokenType::power);
      const bool positional_spread = is(TokenType::multiplicative) && tokens_[current_].value == "*";
      if (parameters && (keyword_spread || positional_spread))
        throw TemplateError("argument unpacking is not allowed in parameter declarations", at);
      if (keyword_spread) {
        ++current_;
        auto node = make(NodeKind::keyword_spread, at);
        node->children.push_back(parse_expression());
        arguments.push_back(seal(std::move(node)));
        if (is(TokenType::comma)) ++current_;
        if (!is(TokenType::close_paren)) fail_expected("')' (** must unpack the last argument)");
        break;
      }
      NodePtr argument;
      if (positional_spread) {
        if (saw_spread) throw TemplateError("only one '*' argument unpacking is allowed", at);
        saw_spread = true;
        ++current_;
        argument = make(NodeKind::spread, at);
        argument->children.push_back(parse_expression());
        argument = seal(std::move(argument));
      } else {
        argument = parse_expression();
        if (is(TokenType::equals)) {
          ++current_;
          if (argument->kind != NodeKind::identifier)
            throw TemplateError(parameters ? "expected a parameter name before '='" : "expected a keyword name before '='",
                                argument->offset);
          auto keyword = make(NodeKind::keyword_argument, argument->offset);
          keyword->name = argument->name;
          keyword->children.push_back(parse_expression());
          argument = seal(std::move(keyword));
        }
        if (parameters) {
          if (argument->kind != NodeKind::identifier && argument->kind != NodeKind::keyword_argument)
            throw TemplateError("expected a parameter name", argument->offset);
          if (!names.insert(argument->name).second)
            throw TemplateError(fmt::format("duplicate parameter '{}'", argument->name), argument->offset);
        }
        if (argument->kind == NodeKind::keyword_argument) {
          saw_keyword = true;
        } else if (saw_keyword) {
          throw TemplateError(parameters ? "a parameter without a default follows one with a default"
                                         : "positional arguments must come before keyword arguments",
                              argument->offset);
        } else if (saw_spread) {
          throw TemplateError("positional arguments must not follow '*' unpacking", argument->offset);
        }
      }
      arguments.push_back(std::move(argument));
      if (is(TokenType::comma)) ++current_;
    }
    ++current_;  // )
    return arguments;
  }

  // [start:stop:step] or [index].
  NodePtr parse_subscript() {
    const std::size_t start = here();
    std::vector<NodePtr> parts;
    bool is_slice = false;
    while (!is(TokenType::close_square)) {
      if (at_end()) fail_expected("']'");
      if (is(TokenType::colon)) {
        parts.push_back(nullptr);
        ++current_;
        is_slice = true;
      } else {
        parts.push_back(parse_expression());
        if (is(TokenType::colon)) {
          ++current_;
          is_slice = true;
        }
      }
    }
    if (parts.empty()) throw TemplateError("expected an index or a slice between '[' and ']'", start);
    if (!is_slice) return std::move(parts[0]);
    if (parts.size() > 3) throw TemplateError("a slice takes at most three parts (start:stop:step)", start);
    auto node = make(NodeKind::slice, start);
    parts.resize(3);
    node->children = std::move(parts);
    return seal(std::move(node));
  }

  NodePtr parse_member(NodePtr object) {
    while (is(TokenType::dot) || is(TokenType::open_square)) {
      const bool computed = is(TokenType::open_square);
      const std::size_t at = tokens_[current_++].offset;
      NodePtr property;
      if (computed) {
        property = parse_subscript();
        expect(TokenType::close_square, "']'");
      } else {
        property = parse_primary();
        if (property->kind != NodeKind::identifier && property->kind != NodeKind::integer_literal)
          throw TemplateError("expected a name or an integer after '.'", property->offset);
      }
      auto node = make(NodeKind::member, at);
      node->flag = computed;
      node->children.push_back(std::move(object));
      node->children.push_back(std::move(property));
      object = seal(std::move(node));
    }
    return object;
  }

  NodePtr parse_primary() {
    if (at_end()) fail_expected("an expression");
    const Token& t = tokens_[current_++];
    switch (t.type) {
      case TokenType::numeric: {
        const bool is_float = t.value.find('.') != std::string::npos;
        auto node = make(is_float ? NodeKind::float_literal : NodeKind::integer_literal, t.offset);
        node->number = std::strtod(t.value.c_str(), nullptr);
        return node;
      }
      case TokenType::string: {
        auto node = make(NodeKind::string_literal, t.offset);
        node->name = t.value;
        // Adjacent string literals join: "a" "b" is "ab".
        while (is(TokenType::string)) node->name += tokens_[current_++].value;
        return node;
      }
      case TokenType::identifier: {
        auto node = make(NodeKind::identifier, t.offset);
        node->name = t.value;
        return node;
      }
      case TokenType::open_paren: {
        RecursionGuard guard(*this, t.offset);
        auto expression = parse_expression_sequence(false);
        expect(TokenType::close_paren, "')'");
        return expression;
      }
      case TokenType::open_square: {
        RecursionGuard guard(*this, t.offset);
        auto node = make(NodeKind::array_literal, t.offset);
        while (!is(TokenType::close_square)) {
          if (at_end()) fail_expected("']'");
          node->children.push_back(parse_expression());
          if (is(TokenType::comma)) ++current_;
        }
        ++current_;
        return seal(std::move(node));
      }
      case TokenType::open_curly: {
        RecursionGuard guard(*this, t.offset);
        auto node = make(NodeKind::object_literal, t.offset);
        while (!is(TokenType::close_curly)) {
          if (at_end()) fail_expected("'}'");
          node->children.push_back(parse_expression());
          expect(TokenType::colon, "':' between a key and its value");
          node->children.push_back(parse_expression());
          if (is(TokenType::comma)) ++current_;
        }
        ++current_;
        return seal(std::move(node));
      }
      default:
        --current_;
        fail_expected("an expression");
    }
  }

  const std::vector<Token>& tokens_;
  std::size_t source_size_;
  std::size_t current_ = 0;
  int recursion_ = 0;
  std::vector<OpenBlock> open_blocks_;
};

}  // namespace

Program parse(const std::vector<Token>& tokens, std::size_t source_size) { return Parser(tokens, source_size).run(); }

bool is_known_filter(std::string_view name) {
  return std::find(kUpstreamFilters.begin(), kUpstreamFilters.end(), name) != kUpstreamFilters.end() ||
         std::find(kExtraFilters.begin(), kExtraFilters.end(), name) != kExtraFilters.end();
}

bool is_known_test(std::string_view name) { return std::find(kTests.begin(), kTests.end(), name) != kTests.end(); }

std::string known_filter_list() { return join_names(kUpstreamFilters) + ", " + join_names(kExtraFilters); }
std::string known_test_list() { return join_names(kTests); }

}  // namespace alignkit::jinja
