#include "recipe_settings.hpp"

#include <fmt/format.h>

#include <alignkit/dtype_names.hpp>
#include <alignkit/torch_compat.hpp>

namespace alignkit {

TrainingSettings training_settings(const ValidatedRecipe& recipe) {
  const auto run = recipe.section("run");
  const auto t = recipe.section("training");
  TrainingSettings s;
  s.seed = static_cast<std::uint64_t>(run.get_int("seed"));
  s.device = run.get_string("device");
  if (t.has("max_steps")) s.max_steps = t.get_int("max_steps");
  s.micro_batch = t.get_int("per_device_train_batch_size");
  s.eval_batch = t.get_int("per_device_eval_batch_size");
  s.accumulation = t.get_int("gradient_accumulation_steps");
  s.max_length = t.get_int("max_length");
  s.max_prompt_length = t.get_int("max_prompt_length");
  s.max_completion_length = t.has("max_completion_length") ? t.get_int("max_completion_length") : 0;
  s.keep_end = t.get_string("truncation_mode") == "keep_end";
  s.precision = t.get_string("precision");
  s.dtype = dtype_from_name(s.precision).value_or(torch::kFloat32);  // the schema allows only the three
  s.float32_master_weights = t.get_string("master_weights") == "float32";
  s.gradient_checkpointing = t.get_bool("gradient_checkpointing");
  s.logprob_chunk = t.get_int("logprob_chunk");
  s.packing = t.get_bool("packing");
  s.logging_steps = t.get_int("logging_steps");
  s.eval_steps = t.get_int("eval_steps");
  s.save_steps = t.get_int("save_steps");
  s.save_total_limit = t.get_int("save_total_limit");
  return s;
}

OptimizerSettings optimizer_settings(const ValidatedRecipe& recipe) {
  const auto o = recipe.section("optimizer");
  return {.learning_rate = o.get_float("learning_rate"),
          .weight_decay = o.get_float("weight_decay"),
          .beta1 = o.get_float("adam_beta1"),
          .beta2 = o.get_float("adam_beta2"),
          .epsilon = o.get_float("adam_epsilon"),
          .max_grad_norm = o.get_float("max_grad_norm")};
}

torch::Device select_device(const ValidatedRecipe& recipe) {
  const auto run = recipe.section("run");
  const auto name = run.get_string("device");
  if (name == "auto") return compat::cuda_available() ? torch::Device("cuda") : torch::Device(torch::kCPU);
  try {
    torch::Device device(name);
    if (device.is_cuda() && !compat::cuda_available())
      throw DiagnosticError(run.error("device", "this machine (or this LibTorch build) has no CUDA device",
                                      "use device = \"cpu\" or \"auto\""));
    return device;
  } catch (const c10::Error&) {
    throw DiagnosticError(run.error("device", fmt::format("'{}' is not a device", name), "use cpu, cuda, cuda:N or auto"));
  }
}

void check_training_recipe(const ValidatedRecipe& recipe) {
  std::vector<Diagnostic> problems;
  const auto training = recipe.section("training");
  if (!training.has("max_steps"))
    problems.push_back(training.error("max_steps", "[training] max_steps is not set", "set the number of optimizer steps"));
  const bool lora = recipe.has_section("lora") && recipe.section("lora").get_bool("enabled");
  const auto model = recipe.section("model");
  if (model.get_string("quantization") != "none" && !lora)
    problems.push_back(model.error("quantization", "a quantized base needs LoRA adapters to train",
                                   "add a [lora] section, or set quantization = \"none\""));
  // As GradScaler refuses to unscale fp16 gradients: unscaled, they underflow.
  if (training.get_string("precision") == "float16" && training.get_string("master_weights") == "none" && !lora)
    problems.push_back(training.error("master_weights", "full fine-tuning in float16 needs float32 master weights",
                                      "set master_weights = \"float32\", or use precision = \"bfloat16\""));
  const auto reference = recipe.section("reference");
  if (reference.get_string("strategy") == "adapter-off" && !lora)
    problems.push_back(reference.error("strategy", "adapter-off needs LoRA adapters on the policy",
                                       "add a [lora] section, or use strategy = \"copy\""));
  if (lora && recipe.section("lora").has("init_adapter"))
    for (const char* key : {"r", "alpha", "dropout", "use_rslora", "target_modules"})
      if (recipe.section("lora").has(key))
        problems.push_back(recipe.section("lora").error(key, fmt::format("'{}' is set by init_adapter's adapter_config.json", key),
                                                        "remove it, or drop init_adapter to start a fresh adapter"));
  try {
    (void)select_device(recipe);
  } catch (const DiagnosticError& e) {
    problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
  }
  if (!problems.empty()) throw RecipeInvalid(std::move(problems), false);
}

}  // namespace alignkit
