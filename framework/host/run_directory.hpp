// The run's output folder: created before any work, holding the effective recipe from the start.
#pragma once

#include <filesystem>
#include <string>

#include "recipe_validator.hpp"

namespace alignkit {

// The folder a run writes to: `override_dir` if given (--output), else [run] output_dir, else
// runs/<run name> under the working directory.
std::filesystem::path run_directory(const ValidatedRecipe& recipe,
                                    const std::filesystem::path& override_dir = {});

// Creates the folder (and parents) and writes recipe.toml, the effective recipe (or `effective`,
// that of a run of stages), atomically. Throws DiagnosticError naming the folder when it cannot be
// created or written, or when recipe.toml is a file of `recipe`.
void prepare_run_directory(const std::filesystem::path& dir, const ValidatedRecipe& recipe,
                           const std::string& effective = {});

}  // namespace alignkit
