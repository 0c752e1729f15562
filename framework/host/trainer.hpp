// The offline training loop the host owns: every method runs through it, the loss plugin only
// combines the log-probs the loop hands it.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "plugin_registry.hpp"
#include "recipe_validator.hpp"

namespace alignkit {

struct TrainingOutcome {
  std::int64_t steps = 0;
  std::map<std::string, double> last_logged;  // the last metrics line (train and eval)
  std::filesystem::path final_dir;            // <run>/final
};

// Checks what the loop needs of a validated recipe before anything is loaded or written
// (max_steps set, quantization and adapter-off only with LoRA, a usable device); throws
// RecipeInvalid with every problem found.
void check_training_recipe(const ValidatedRecipe& recipe);

// Runs the recipe's [training] to the end, writing metrics, the plot and the final outputs into
// `run_dir`. Progress goes to stderr.
TrainingOutcome train(const ValidatedRecipe& recipe, PluginRegistry& registry, const std::filesystem::path& run_dir);

}  // namespace alignkit
