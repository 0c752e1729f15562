// Multi-stage recipes: `[[stage]]` entries (SFT, then DPO, ...) that run one after the other in
// one run folder. Each stage is a recipe of its own: the top-level sections, the stage's sections
// over them, and --set over both (stage_tree, recipe_loader.hpp). A stage after the first that
// names no [model] path starts from the previous stage's final/model.
#pragma once

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "plugin_registry.hpp"
#include "recipe_validator.hpp"

namespace alignkit {

struct ValidatedStage {
  std::string name;  // its folder in the run folder
  ValidatedRecipe recipe;
  bool model_from_previous = false;  // [model] path is the previous stage's final/model
};

// Problems found stage by stage, reported together: each carries a note naming the stages it was
// found in, and one found in several stages (a key of the shared sections) is reported once.
class StageProblems {
 public:
  // Runs `check`, keeping what it throws (a DiagnosticError) as problems of `stage`; returns
  // whether it passed.
  template <typename F>
  bool check(const std::string& stage, F&& check) {
    try {
      check();
      return true;
    } catch (const DiagnosticError& e) {
      add(stage, e);
      return false;
    }
  }
  void add(const std::string& stage, const DiagnosticError& error);
  void add(const std::string& stage, Diagnostic problem);
  // Throws RecipeInvalid with every problem; `stages` is how many the recipe has.
  void throw_if_any(std::size_t stages);

 private:
  struct Found {
    Diagnostic diagnostic;
    std::vector<std::string> stages;
  };
  std::vector<Found> found_;
  bool plugin_missing_ = false;
};

// Validates every stage of `tree` (which has [[stage]] entries) on its own derived tree, and the
// stages as a whole: names (one folder name each, unique), keys directly under [[stage]], a stage
// setting the run's [run] name or output_dir, a stage starting from a previous stage that saves
// no model. The chained model paths are absolute, under `output_dir` when given (train --output,
// --resume), else the run folder the first stage names. Throws RecipeInvalid with all problems.
std::vector<ValidatedStage> validate_stages(const RecipeTree& tree, PluginRegistry& registry,
                                            const std::filesystem::path& output_dir = {},
                                            const ValidateOptions& options = {});

// Whether `file` loads as a recipe with [[stage]] entries; false for a single recipe and for a
// file that does not load (the caller's own loading reports why).
bool recipe_has_stages(const std::filesystem::path& file);

// The model folder whose config.json sizes stage `index` for the memory planner: its [model]
// path, or, while that does not exist yet because an earlier stage writes it, that stage's.
std::filesystem::path model_to_describe(const std::vector<ValidatedStage>& stages, std::size_t index);

// The effective recipe of a whole multi-stage run, as TOML: the run's [run] name and output_dir at
// the top, then one [[stage]] per stage with every key, defaults and absolute paths included (the
// chained model paths too). It loads back to the same stages.
std::string render_staged_recipe(const std::vector<ValidatedStage>& stages);

}  // namespace alignkit
