#include "recipe_loader.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <system_error>

#include <fmt/format.h>

#include <alignkit/did_you_mean.hpp>

namespace alignkit {

namespace fs = std::filesystem;

std::string to_string(const KeyPath& path) {
  std::string out;
  for (const auto& part : path) {
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

SourceText::SourceText(std::string text) : text_(std::move(text)) {
  starts_.push_back(0);
  for (std::size_t i = 0; i < text_.size(); ++i)
    if (text_[i] == '\n') starts_.push_back(i + 1);
}

std::string SourceText::line(int line) const {
  if (line < 1 || static_cast<std::size_t>(line) > starts_.size()) return {};
  const std::size_t start = starts_[static_cast<std::size_t>(line) - 1];
  std::size_t end = text_.find('\n', start);
  std::string out = text_.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return out;
}

Diagnostic located(const SourceLocation& where, std::string source_line, std::string message, std::string help) {
  Diagnostic d;
  d.where = where;
  d.source_line = std::move(source_line);
  d.message = std::move(message);
  d.help = std::move(help);
  return d;
}

namespace {

// Reads a recipe file, refusing what cannot be a recipe before handing it to the parser.
std::string read_recipe_text(const fs::path& path, const Diagnostic& context) {
  auto fail = [&](std::string message, std::string help = {}) {
    Diagnostic d = context;
    d.message = fmt::format("{}: {}", path.string(), message);
    d.help = std::move(help);
    throw DiagnosticError(std::move(d));
  };
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) fail("no such file");
  if (fs::is_directory(status)) fail("is a directory, expected a TOML recipe file");
  if (!fs::is_regular_file(status)) fail("is not a regular file");
  const auto size = fs::file_size(path, ec);
  if (ec) fail(fmt::format("cannot read its size: {}", ec.message()));
  if (size > kMaxRecipeBytes)
    fail(fmt::format("is {} bytes; a recipe is at most {} bytes", size, kMaxRecipeBytes),
         "is this a data or model file? recipes name such files, they do not contain them");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(fmt::format("cannot be opened: {}", std::error_code(errno, std::generic_category()).message()));
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (const auto nul = text.find('\0'); nul != std::string::npos)
    fail(fmt::format("is a binary file (NUL byte at offset {}), expected TOML text", nul));
  return text;
}

SourceLocation location_of(const toml::source_position& pos, const std::string& file) {
  return SourceLocation{file, static_cast<int>(pos.line), static_cast<int>(pos.column)};
}

// Inserts a leaf, dropping whatever it replaces: the same key, any table it now shadows, and any
// scalar standing where it now needs a table.
void overlay(RecipeTree& tree, KeyPath path, RecipeLeaf leaf) {
  auto it = tree.leaves.lower_bound(path);
  while (it != tree.leaves.end() && it->first.size() > path.size() &&
         std::equal(path.begin(), path.end(), it->first.begin()))
    it = tree.leaves.erase(it);
  for (std::size_t n = 1; n < path.size(); ++n)
    tree.leaves.erase(KeyPath(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(n)));
  tree.leaves.insert_or_assign(std::move(path), std::move(leaf));
}

void flatten(const toml::table& table, KeyPath& prefix, const std::string& file,
             const SourceText& text, const fs::path& base_dir, RecipeTree& tree) {
  for (const auto& [key, node] : table) {
    prefix.emplace_back(key.str());
    const auto key_where = location_of(key.source().begin, file);
    if (prefix.size() > kMaxKeyDepth)
      throw DiagnosticError(located(key_where, text.line(key_where.line),
                                    fmt::format("keys nest deeper than {} levels", kMaxKeyDepth),
                                    "recipes use [section] key = value"));
    if (const auto* sub = node.as_table()) {
      if (!tree.tables.count(prefix)) {
        auto where = location_of(sub->source().begin, file);
        if (where.line == 0) where = key_where;
        tree.tables[prefix] = RecipeTable{where, text.line(where.line)};
      }
      flatten(*sub, prefix, file, text, base_dir, tree);
    } else {
      RecipeLeaf leaf;
      std::unique_ptr<toml::node> copy;
      node.visit([&](const auto& value) { copy = std::make_unique<std::decay_t<decltype(value)>>(value); });
      leaf.value = std::move(copy);
      leaf.key_where = key_where;
      leaf.value_where = location_of(node.source().begin, file);
      leaf.source_line = text.line(key_where.line);
      leaf.base_dir = base_dir;
      overlay(tree, prefix, std::move(leaf));
    }
    prefix.pop_back();
  }
}

std::vector<std::string> include_list(const toml::node& node, const std::string& file,
                                      const SourceText& text) {
  auto where = location_of(node.source().begin, file);
  auto fail = [&] {
    throw DiagnosticError(located(where, text.line(where.line),
                                  "'include' must be a file name or a list of file names",
                                  "write include = \"base.toml\" or include = [\"a.toml\", \"b.toml\"]"));
  };
  std::vector<std::string> out;
  if (const auto* s = node.as_string()) {
    out.push_back(s->get());
  } else if (const auto* array = node.as_array()) {
    for (const auto& element : *array) {
      if (!element.is_string()) fail();
      out.push_back(element.as_string()->get());
    }
  } else {
    fail();
  }
  return out;
}

void load_file(const fs::path& path, const Diagnostic& context, std::vector<fs::path>& stack,
               RecipeTree& tree) {
  if (tree.files.size() + stack.size() > static_cast<std::size_t>(kMaxIncludedFiles)) {
    Diagnostic d = context;
    d.message = fmt::format("the recipe includes more than {} files in all", kMaxIncludedFiles);
    d.help = "is a file included many times over?";
    throw DiagnosticError(std::move(d));
  }
  const SourceText text(read_recipe_text(path, context));
  const std::string file = path.string();
  toml::table table;
  try {
    table = toml::parse(text.text(), file);
  } catch (const toml::parse_error& e) {
    const auto where = location_of(e.source().begin, file);
    throw DiagnosticError(located(where, text.line(where.line),
                                  fmt::format("not valid TOML: {}", e.description()),
                                  "recipes are TOML: https://toml.io/en/v1.0.0"));
  }
  const fs::path base_dir = path.parent_path();

  if (const auto* include = table.get("include")) {
    const auto include_where = location_of(include->source().begin, file);
    for (const auto& name : include_list(*include, file, text)) {
      fs::path target = fs::path(name).is_absolute() ? fs::path(name) : base_dir / name;
      std::error_code ec;
      fs::path canonical = fs::weakly_canonical(target, ec);
      if (ec) canonical = target;
      Diagnostic here = located(include_where, text.line(include_where.line), "");
      if (std::find(stack.begin(), stack.end(), canonical) != stack.end()) {
        here.message = fmt::format("include cycle: {} includes {}, which is already being loaded",
                                   file, target.string());
        throw DiagnosticError(here);
      }
      if (static_cast<int>(stack.size()) >= kMaxIncludeDepth) {
        here.message = fmt::format("includes nest deeper than {} files", kMaxIncludeDepth);
        throw DiagnosticError(here);
      }
      stack.push_back(canonical);
      load_file(target, here, stack, tree);
      stack.pop_back();
    }
    table.erase("include");
  }
  // [[stage]] tables go to their own list; any other shape of `stage` stays in the base, where
  // the validator explains how stages are written.
  if (const auto* stages = table.get("stage"); stages && stages->is_array_of_tables()) {
    tree.stages.clear();  // the stages of the files this one includes are replaced, not merged
    for (const auto& element : *stages->as_array()) {
      const auto& stage_table = *element.as_table();
      RecipeStage stage;
      stage.where = location_of(stage_table.source().begin, file);
      if (stage.where.line == 0) stage.where = location_of(stages->source().begin, file);
      stage.source_line = text.line(stage.where.line);
      RecipeTree keys;
      KeyPath prefix;
      flatten(stage_table, prefix, file, text, base_dir, keys);
      stage.leaves = std::move(keys.leaves);
      stage.tables = std::move(keys.tables);
      tree.stages.push_back(std::move(stage));
    }
    table.erase("stage");
  }
  tree.files.push_back(path);
  KeyPath prefix;
  flatten(table, prefix, file, text, base_dir, tree);
}

bool valid_key_part(std::string_view part) {
  return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

struct Override {
  KeyPath path;
  RecipeLeaf leaf;
};

[[noreturn]] void override_error(const std::string& text, int index, std::string message, int column = 1) {
  throw DiagnosticError(located(SourceLocation{"--set", index, column}, text, std::move(message),
                                "write --set section.key=value, e.g. --set optimizer.learning_rate=1e-5"));
}

// Parses the `index`-th (1-based) --set argument.
Override parse_override(const std::string& text, int index) {
  const auto eq = text.find('=');
  auto fail = [&](std::string message, int column) { override_error(text, index, std::move(message), column); };
  if (eq == std::string::npos) fail(fmt::format("'{}' has no '='", text), 1);
  KeyPath path;
  std::stringstream keys(text.substr(0, eq));
  for (std::string part; std::getline(keys, part, '.');) {
    if (!valid_key_part(part)) fail(fmt::format("'{}' is not a key path like section.key", text.substr(0, eq)), 1);
    path.push_back(part);
  }
  if (path.size() < 2) fail(fmt::format("'{}' names no section; expected section.key", text.substr(0, eq)), 1);

  const int value_column = static_cast<int>(eq) + 2;
  const std::string value_text = text.substr(eq + 1);
  if (value_text.find_first_of("\r\n") != std::string::npos)
    fail("the value spans several lines; an override sets one key", value_column);
  std::unique_ptr<toml::node> value;
  try {
    auto parsed = toml::parse("v = " + value_text);
    parsed["v"].node()->visit(
        [&](const auto& v) { value = std::make_unique<std::decay_t<decltype(v)>>(v); });
  } catch (const toml::parse_error& e) {
    // A bare word is a string (--set run.name=baseline); what looks like a number, a list or a
    // quoted string but does not parse is an error, not a string.
    static const std::string_view not_bare = "0123456789+-[{\"'";
    if (value_text.empty() || not_bare.find(value_text.front()) != std::string_view::npos)
      fail(fmt::format("'{}' is not a TOML value: {}", value_text, e.description()), value_column);
    value = std::make_unique<toml::value<std::string>>(value_text);
  }
  if (value->is_table()) fail("an override sets one key, not a table", value_column);

  Override out;
  out.path = std::move(path);
  out.leaf.value = std::move(value);
  out.leaf.key_where = SourceLocation{"--set", index, 1};
  out.leaf.value_where = SourceLocation{"--set", index, value_column};
  out.leaf.source_line = text;
  out.leaf.base_dir = fs::current_path();
  return out;
}

void apply_override(Override o, const std::string& text, int index, RecipeTree& tree) {
  for (std::size_t n = 1; n < o.path.size(); ++n) {
    const KeyPath parent(o.path.begin(), o.path.begin() + static_cast<std::ptrdiff_t>(n));
    if (tree.leaves.count(parent))
      override_error(text, index, fmt::format("'{}' is a value, not a table, so it has no key '{}'", to_string(parent),
                                              o.path[n]));
  }
  overlay(tree, std::move(o.path), std::move(o.leaf));
}

// `stage.NAME.section.key=value` targets one stage: the recipe must have a stage of that name.
bool is_stage_override(const Override& o, const std::string& text, int index, const RecipeTree& tree) {
  if (o.path[0] != "stage") return false;
  if (tree.stages.empty())
    override_error(text, index, "the recipe has no [[stage]] for this override to set a key of");
  if (o.path.size() < 4)
    override_error(text, index, fmt::format("'{}' is not a stage key; expected stage.NAME.section.key",
                                            text.substr(0, text.find('='))));
  std::vector<std::string> names;
  for (std::size_t i = 0; i < tree.stages.size(); ++i) names.push_back(stage_name(tree, i));
  if (std::find(names.begin(), names.end(), o.path[1]) == names.end()) {
    Diagnostic d = located(SourceLocation{"--set", index, 7}, text,
                           fmt::format("the recipe has no stage named '{}'", o.path[1]));
    d.help = suggestion(o.path[1], names);
    throw DiagnosticError(std::move(d));
  }
  return true;
}

}  // namespace

RecipeTree load_recipe(const fs::path& file, const std::vector<std::string>& overrides) {
  RecipeTree tree;
  tree.file = file;
  tree.overrides = overrides;
  std::vector<fs::path> stack;
  std::error_code ec;
  auto canonical = fs::weakly_canonical(file, ec);
  stack.push_back(ec ? file : canonical);
  load_file(file, Diagnostic{}, stack, tree);
  if (tree.leaves.empty() && tree.tables.empty())
    throw DiagnosticError(located(SourceLocation{file.string(), 0, 0}, "",
                                  "recipe is empty",
                                  "start from recipes/minimal.toml, or include it: "
                                  "include = \"minimal.toml\""));
  for (std::size_t i = 0; i < overrides.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    auto o = parse_override(overrides[i], index);
    // A stage's own override is applied when its tree is derived (stage_tree).
    if (!is_stage_override(o, overrides[i], index, tree)) apply_override(std::move(o), overrides[i], index, tree);
  }
  return tree;
}

std::string stage_name(const RecipeTree& tree, std::size_t index) {
  const auto& leaves = tree.stages.at(index).leaves;
  if (auto it = leaves.find(KeyPath{"name"}); it != leaves.end())
    if (const auto* name = it->second.value->as_string()) return name->get();
  return fmt::format("stage-{}", index + 1);
}

RecipeTree stage_tree(const RecipeTree& tree, std::size_t index, const std::map<KeyPath, RecipeLeaf>& inherited) {
  const RecipeStage& stage = tree.stages.at(index);
  RecipeTree out;
  out.file = tree.file;
  out.files = tree.files;
  out.overrides = tree.overrides;
  out.leaves = tree.leaves;
  out.tables = tree.tables;
  for (const auto& [path, leaf] : inherited) overlay(out, path, leaf);
  // Keys directly under [[stage]] (its name, or a misplaced key the stage checks report) are not
  // the recipe's.
  for (const auto& [path, leaf] : stage.leaves)
    if (path.size() >= 2) overlay(out, path, leaf);
  for (const auto& [path, table] : stage.tables) out.tables.insert_or_assign(path, table);
  const std::string name = stage_name(tree, index);
  for (std::size_t i = 0; i < tree.overrides.size(); ++i) {
    const int n = static_cast<int>(i) + 1;
    auto o = parse_override(tree.overrides[i], n);
    if (o.path[0] == "stage") {
      if (o.path[1] != name) continue;
      o.path.erase(o.path.begin(), o.path.begin() + 2);
    }
    apply_override(std::move(o), tree.overrides[i], n, out);
  }
  return out;
}

}  // namespace alignkit
