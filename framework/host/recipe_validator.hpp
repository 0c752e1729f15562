// Validating a loaded recipe against the host's sections and the selected plugins' declarations.
//
// Every problem is collected, not just the first, and reported with file, line, column, the key,
// what was found and expected, and a "did you mean" for near misses.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <alignkit/recipe_section.hpp>
#include <alignkit/scheduler.hpp>

#include "../sdk/section_data.hpp"
#include "plugin_registry.hpp"
#include "recipe_loader.hpp"

namespace alignkit {

struct ValidatedRecipe {
  RecipeTree tree;
  std::map<std::string, detail::SectionData> sections;  // present or implicit sections
  std::map<std::string, const PluginRecord*> plugins;   // section name -> selected plugin
  // section name -> the selected plugin's object, created once from its section by
  // instantiate_plugins and shared by every later use (plan, train, eval).
  std::map<std::string, std::shared_ptr<PluginObject>> objects;

  bool has_section(std::string_view name) const { return sections.count(std::string(name)) > 0; }
  // Throws std::logic_error for a section that is absent.
  RecipeSection section(std::string_view name) const;

  // The section's plugin object as the interface T, or null when it is another kind. Throws
  // std::logic_error when instantiate_plugins has not created it.
  template <typename T>
  std::shared_ptr<T> object(const std::string& section_name) const {
    auto it = objects.find(section_name);
    if (it == objects.end()) throw std::logic_error("no plugin object for [" + section_name + "]");
    return std::dynamic_pointer_cast<T>(it->second);
  }
};

// A recipe that failed validation. `plugin_missing` tells a missing or refused plugin apart from
// other recipe errors, because the command line reports them with different exit codes.
class RecipeInvalid : public DiagnosticError {
 public:
  RecipeInvalid(std::vector<Diagnostic> diagnostics, bool plugin_missing)
      : DiagnosticError(std::move(diagnostics)), plugin_missing_(plugin_missing) {}
  bool plugin_missing() const { return plugin_missing_; }

 private:
  bool plugin_missing_;
};

struct ValidateOptions {
  // Load ALIGNKIT_PLUGIN_PATH and the installed plugin folder after the recipe's own [plugins]
  // paths. Tests turn this off to work with a registry they control.
  bool load_default_plugins = true;
};

// Orders problems for printing: by file, line and column, --set overrides last.
void sort_diagnostics(std::vector<Diagnostic>& problems);

// Loads the recipe's [plugins] paths (and, per options, the default search path) into
// `registry`, then validates every section. Throws RecipeInvalid with all problems found.
// A tree's [[stage]] entries are not looked at: each stage is validated on its own tree
// (validate_stages, recipe_stages.hpp).
ValidatedRecipe validate_recipe(RecipeTree tree, PluginRegistry& registry,
                                const ValidateOptions& options = {});

// The run's step counts as schedulers see them (warmup resolved as transformers does). Throws
// DiagnosticError when [training] max_steps is unset or warmup is longer than the run.
ScheduleShape schedule_shape(const ValidatedRecipe& recipe);

// Creates each selected plugin's object from its section, once, into recipe.objects, so that
// options a plugin rejects are reported now and every later step uses the same object; runs the
// scheduler's own check against the schedule shape when max_steps is known.
void instantiate_plugins(ValidatedRecipe& recipe, const PluginRegistry& registry);

}  // namespace alignkit
