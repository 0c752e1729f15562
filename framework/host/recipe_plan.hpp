// The memory planner applied to a validated recipe: the method's needs from its plugin, the
// models described by the recipe's loader (nothing loaded), and after a run the check of the
// plan against what the run measured.
#pragma once

#include <filesystem>

#include "memory_planner.hpp"
#include "recipe_validator.hpp"

namespace alignkit {

// What the recipe's [method] plugin declares: a loss's requirements or an online method's spec.
MethodNeeds method_needs(const ValidatedRecipe& recipe);

// The memory plan of a validated recipe: the model in `model_dir` described from its config alone
// and the method's declared needs. Throws RecipeInvalid for an online model the recipe lacks.
MemoryPlan plan_recipe(const ValidatedRecipe& recipe, const MemoryBudget& budget, const std::filesystem::path& model_dir);

// Every CPU run checks the planner: the process's peak resident memory (VmHWM) against the plan,
// printed and written to memory.json ("alignkit.memory-check/1", docs/memory-planner.md).
void report_cpu_memory(const MemoryPlan& plan, const std::filesystem::path& run_dir);
// A CUDA run checks the planner against the caching allocator's peak reserved bytes (what
// torch.cuda.max_memory_reserved reports), which leave out the CUDA context the plan includes.
void report_cuda_memory(const MemoryPlan& plan, const std::filesystem::path& run_dir, int device);

}  // namespace alignkit
