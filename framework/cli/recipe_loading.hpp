// A recipe loaded for a command: read (includes and --set applied), validated against the
// plugins it names, and each plugin instantiated once so their own checks have run.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>

#include "../host/plugin_registry.hpp"
#include "../host/recipe_validator.hpp"
#include "commands.hpp"

namespace alignkit::cli {

struct LoadedRecipe {
  PluginRegistry registry;
  ValidatedRecipe recipe;
};

// Throws RecipeInvalid (exit code 3, or 4 for a missing plugin) with every problem found.
std::unique_ptr<LoadedRecipe> load_and_validate(const std::string& file, const Args& sets);

// A command that needs plugin-backed sections (train: [method], [model], [data]) refuses a recipe
// without them, saying which are missing and which plugins could fill them.
void require_training_sections(const LoadedRecipe& loaded, const char* command,
                               std::initializer_list<const char*> sections);

}  // namespace alignkit::cli
