// Writing recipes out: the effective recipe of a run, and the reference of every recipe key.
#pragma once

#include <string>

#include "plugin_registry.hpp"
#include "recipe_validator.hpp"

namespace alignkit {

// The recipe after includes, overrides and defaults, as TOML: what the run actually used.
std::string render_effective_recipe(const ValidatedRecipe& recipe);

// Markdown reference of every key: the host's sections, then each plugin's options, from the
// same declarations the validator uses. docs/recipe-reference.md is this output, checked by a test.
std::string render_recipe_reference(const PluginRegistry& registry);

}  // namespace alignkit
