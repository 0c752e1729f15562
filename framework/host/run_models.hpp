// The models of a run, loaded through the recipe's model-loader plugin: the policy (full
// fine-tuning, fresh LoRA adapters or an init_adapter, over a base that may be quantized; a
// one-output classification head when the method trains a reward model) and the reference the
// method needs (a frozen copy, the policy with its adapters off, or the starting policy for a
// precomputed pass); and the run's final outputs (the adapter, the merged model).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include <alignkit/lora.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/quantization.hpp>
#include <alignkit/tokenizer.hpp>

#include "plugin_registry.hpp"
#include "recipe_settings.hpp"
#include "recipe_validator.hpp"

namespace alignkit {

enum class ReferenceSource { none, copy, adapter_off, precomputed };

// What the method asks of the models.
struct ModelNeeds {
  bool reference = false;
  // The policy is a one-output sequence classifier (a reward model being trained): a causal-LM
  // checkpoint gets a fresh score head, and the saved config records the pad id scores pool by.
  // Only a classifier may bring an init_adapter that trains whole modules (modules_to_save): PEFT
  // keeps such a module's original for the adapter-off view, which alignkit does not.
  bool classifier = false;
};

class RunModels {
 public:
  RunModels(const ValidatedRecipe& recipe, const TrainingSettings& settings, torch::Device device, ModelNeeds needs);

  CausalLM& policy() { return *policy_; }
  const std::filesystem::path& model_path() const { return model_path_; }
  ReferenceSource reference_source() const { return reference_source_; }
  std::string reference_description() const;
  bool lora() const { return lora_; }
  const LoraConfig& lora_config() const { return lora_config_; }
  std::int64_t parameters() const { return policy_->description().parameters; }

  // Runs fn(model) on the reference's view, without gradients: the frozen copy, or the policy
  // with its adapters off (adapter-off) or as it starts (precomputed), in eval mode.
  template <typename F>
  auto with_reference(F&& fn) {
    torch::NoGradGuard no_grad;
    if (reference_source_ == ReferenceSource::copy) return fn(*reference_);
    const bool adapters_off = reference_source_ == ReferenceSource::adapter_off;
    if (adapters_off) set_adapters_enabled(*policy_, false);
    // Dropout off too: the reference is deterministic.
    const bool was_training = policy_->is_training();
    policy_->eval();
    auto out = fn(*policy_);
    if (was_training) policy_->train();
    if (adapters_off) set_adapters_enabled(*policy_, true);
    return out;
  }

  // A checkpoint's adapter/ folder (PEFT's format), with LoRA.
  void save_adapter(const std::filesystem::path& dir) const;
  // <final>/adapter (with LoRA, when [output] save_adapter) and <final>/model (when save_model:
  // the policy, its adapters merged into the full-precision base), with the tokenizer's files.
  // `pad_id` is what a classifier's scores pooled by.
  void save_final(const std::filesystem::path& final_dir, const std::filesystem::path& run_dir, const Tokenizer& tokenizer,
                  std::int64_t pad_id);

 private:
  std::shared_ptr<CausalLM> load(const std::filesystem::path& path, torch::ScalarType dtype, BaseQuantization quantization,
                                 bool classifier);
  void setup_lora(bool classifier);
  void setup_reference();

  const ValidatedRecipe& recipe_;
  torch::Device device_;
  torch::ScalarType dtype_;
  ModelNeeds needs_;
  const PluginRecord* loader_plugin_;
  std::shared_ptr<ModelLoader> loader_;
  std::filesystem::path model_path_;
  BaseQuantization quantization_ = BaseQuantization::none;
  bool lora_ = false;
  LoraConfig lora_config_;
  std::shared_ptr<CausalLM> policy_, reference_;
  ReferenceSource reference_source_ = ReferenceSource::none;
};

}  // namespace alignkit
