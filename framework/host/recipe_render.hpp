// Writing recipes out: the effective recipe of a run, and the reference of every recipe key.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "plugin_registry.hpp"
#include "recipe_validator.hpp"

namespace alignkit {

// The recipe after includes, overrides and defaults, as TOML: what the run actually used.
std::string render_effective_recipe(const ValidatedRecipe& recipe);

// The pieces of that text, for recipes written in other shapes (a multi-stage run's): the comment
// naming the files and overrides, and the sections, each header as [PREFIX<section>], holding the
// keys `keep(section, key)` accepts (all when `keep` is empty; a section left with none is omitted).
std::string render_recipe_header(const RecipeTree& tree);
std::string render_recipe_sections(const ValidatedRecipe& recipe, std::string_view table_prefix,
                                   const std::function<bool(std::string_view, std::string_view)>& keep);

// Markdown reference of every key: the host's sections, then each plugin's options, from the
// same declarations the validator uses. docs/recipe-reference.md is this output, checked by a test.
std::string render_recipe_reference(const PluginRegistry& registry);

}  // namespace alignkit
