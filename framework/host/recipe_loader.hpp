// Loading a recipe: read the TOML file safely, follow `include`s, apply `--set` overrides, and
// keep for every value the file, line and column it came from.
//
// The result is flat: one leaf per key path ("optimizer.learning_rate"), the last writer winning (a file
// overrides what it includes, later includes override earlier ones, --set overrides everything).
// Validation against the host's and the plugins' declarations happens afterwards
// (recipe_validator.hpp).
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include <alignkit/diagnostic.hpp>

namespace alignkit {

// A recipe file larger than this is refused before it is read: recipes are small, and a huge
// file is a mistake (a data file passed as a recipe) that must not stall the host.
inline constexpr std::uintmax_t kMaxRecipeBytes = 1 << 20;
inline constexpr int kMaxIncludeDepth = 16;
// Every file counts each time it is included; this bounds the work a recipe can ask for.
inline constexpr int kMaxIncludedFiles = 64;
// Dotted keys and nested tables deeper than this are refused (recipes use two levels).
inline constexpr std::size_t kMaxKeyDepth = 8;

using KeyPath = std::vector<std::string>;
std::string to_string(const KeyPath& path);  // "optimizer.learning_rate"

struct RecipeLeaf {
  std::shared_ptr<const toml::node> value;  // a scalar or an array
  SourceLocation key_where;                 // the key
  SourceLocation value_where;               // the value
  std::string source_line;
  std::filesystem::path base_dir;  // relative paths in this value resolve against it
};

struct RecipeTable {
  SourceLocation where;  // the [header] line, or the first key of an implicit table
  std::string source_line;
};

// One `[[stage]]` entry of a multi-stage recipe: its keys and tables with paths relative to the
// stage ({"training", "max_steps"} for `[stage.training] max_steps`; {"name"} for its name).
struct RecipeStage {
  SourceLocation where;  // the [[stage]] header
  std::string source_line;
  std::map<KeyPath, RecipeLeaf> leaves;
  std::map<KeyPath, RecipeTable> tables;
};

struct RecipeTree {
  std::filesystem::path file;                // the recipe named on the command line
  std::vector<std::filesystem::path> files;  // it and every file it includes, in load order
  std::vector<std::string> overrides;        // --set arguments, in order
  std::map<KeyPath, RecipeLeaf> leaves;      // the base: every key outside [[stage]], --set applied
  std::map<KeyPath, RecipeTable> tables;
  // [[stage]] entries, all from the last file that writes any (they are not merged across
  // includes). Each runs the recipe stage_tree() derives; validate_recipe ignores them.
  std::vector<RecipeStage> stages;
};

// A diagnostic at a place in a recipe, showing its line.
Diagnostic located(const SourceLocation& where, std::string source_line, std::string message,
                   std::string help = {});

// Throws DiagnosticError for a missing, unreadable, binary, oversized, empty or malformed file,
// a bad or cyclic include, and a malformed override. An override `stage.NAME.section.key=value`
// applies to the stage of that name only; it must name one.
RecipeTree load_recipe(const std::filesystem::path& file,
                       const std::vector<std::string>& overrides = {});

// A stage's `name`, or "stage-N" (1-based) when it sets none or a name that is not a string.
std::string stage_name(const RecipeTree& tree, std::size_t index);

// The recipe stage `index` runs, as a tree without stages: the base's keys, then `inherited`
// (what the stage takes from the one before it), then the stage's own keys, then the --set
// overrides again, in order, so that they win over the stage's keys (`stage.NAME.` ones only for
// this stage). Throws DiagnosticError when an override no longer fits the tree.
RecipeTree stage_tree(const RecipeTree& tree, std::size_t index,
                      const std::map<KeyPath, RecipeLeaf>& inherited = {});

// A file's text with the start of each line, so that any line is found without a scan.
class SourceText {
 public:
  explicit SourceText(std::string text);
  const std::string& text() const { return text_; }
  // Line `line` (1-based) without its newline; empty when out of range.
  std::string line(int line) const;

 private:
  std::string text_;
  std::vector<std::size_t> starts_;
};

}  // namespace alignkit
