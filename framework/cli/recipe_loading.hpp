// A recipe loaded for a command: read (includes and --set applied), validated against the
// plugins it names, and each plugin instantiated once so their own checks have run.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "../host/memory_planner.hpp"
#include "../host/recipe_plan.hpp"
#include "../host/plugin_registry.hpp"
#include "../host/recipe_stages.hpp"
#include "../host/recipe_validator.hpp"
#include "command_line.hpp"
#include "commands.hpp"

namespace alignkit::cli {

struct LoadedRecipe {
  PluginRegistry registry;
  ValidatedRecipe recipe;  // a recipe of [[stage]]s: its last stage
  std::vector<ValidatedStage> stages;  // each stage of a recipe of [[stage]]s; empty for a single recipe
};

// Throws RecipeInvalid (exit code 3, or 4 for a missing plugin) with every problem found.
// `output_dir` is the run folder train writes to (--output, --resume) when known: a recipe of
// stages chains their models inside it.
std::unique_ptr<LoadedRecipe> load_and_validate(const std::string& file, const Args& sets,
                                                const std::filesystem::path& output_dir = {});

// A command that needs plugin-backed sections (train: [method], [model], [data]) refuses a recipe
// without them, saying which are missing and which plugins could fill them. Every stage of a
// recipe of stages needs them.
void require_training_sections(const LoadedRecipe& loaded, const char* command,
                               std::initializer_list<const char*> sections);

// The recipe a command that works on one uses: the single recipe, or the stage --stage NAME
// names; without --stage, the last stage when `last_by_default`, else a usage error listing them.
const ValidatedRecipe& chosen_stage(const LoadedRecipe& loaded, const CommandLine& command_line, bool last_by_default);

// The budget: --gpu or --memory-gib, else the recipe's [plan] gpu or memory_gib, else this machine's RAM.
MemoryBudget budget_from(const CommandLine& command_line, const ValidatedRecipe& recipe);
// train's check of a plan: false, after printing the plan and the refusal, when it does not fit
// and `force` is not given (the command then exits with kDoesNotFit).
bool accept_plan(const MemoryPlan& plan, bool force);

// For a recipe of stages (stage_commands.cpp): train runs the stages in order in one run folder;
// recipe check and plan report each stage.
int run_train_stages(const CommandLine& command_line);
void print_recipe_check(const ValidatedRecipe& recipe, const std::string& indent);
int run_recipe_check_stages(const LoadedRecipe& loaded, const std::string& file);
int run_plan_stages(LoadedRecipe& loaded, const MemoryBudget& budget, bool json);

}  // namespace alignkit::cli
