// A validated recipe's [run], [training] and [optimizer] as typed settings, read once next to the
// schema (recipe_schema.cpp) and passed to the loops and the planner, so that a rule such as
// "max_steps is set" or the learning rate lives in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <torch/types.h>

#include "recipe_validator.hpp"

namespace alignkit {

struct TrainingSettings {
  std::uint64_t seed = 42;                      // [run] seed
  std::string device = "auto";                  // [run] device
  std::optional<std::int64_t> max_steps;        // unset: check_training_recipe refuses the run
  std::int64_t micro_batch = 8;                 // per_device_train_batch_size
  std::int64_t eval_batch = 8;                  // per_device_eval_batch_size
  std::int64_t accumulation = 1;                // gradient_accumulation_steps
  std::int64_t max_length = 1024;
  std::int64_t max_prompt_length = 512;
  std::int64_t max_completion_length = 0;       // 0: no limit of its own
  bool keep_end = true;                         // truncation_mode = "keep_end"
  std::string precision = "float32";            // "float32" | "bfloat16" | "float16"
  torch::ScalarType dtype = torch::kFloat32;    // the precision's dtype
  bool float32_master_weights = true;           // master_weights = "float32"
  bool gradient_checkpointing = false;
  std::int64_t logprob_chunk = 256;
  bool packing = false;
  std::int64_t logging_steps = 10;
  std::int64_t eval_steps = 0;
  std::int64_t save_steps = 500;
  std::int64_t save_total_limit = 2;
};

struct OptimizerSettings {
  double learning_rate = 5e-5;
  double weight_decay = 0;
  double beta1 = 0.9, beta2 = 0.999;
  double epsilon = 1e-8;
  double max_grad_norm = 1.0;
};

TrainingSettings training_settings(const ValidatedRecipe& recipe);
OptimizerSettings optimizer_settings(const ValidatedRecipe& recipe);

// The device [run] device names: "auto" is the first CUDA device when there is one, else the CPU.
// Throws DiagnosticError at the key for a name that is not a device or a CUDA device this
// machine lacks.
torch::Device select_device(const ValidatedRecipe& recipe);

// Checks what the loops need of a validated recipe before anything is loaded or written
// (max_steps set, quantization and adapter-off only with LoRA, a usable device); throws
// RecipeInvalid with every problem found.
void check_training_recipe(const ValidatedRecipe& recipe);

}  // namespace alignkit
