// LoRA (Hu et al., 2021, https://arxiv.org/abs/2106.09685): a frozen linear layer plus a trainable
// low-rank update, y = x W^T + b + s * dropout(x) A^T B^T, with s = alpha / r (or alpha / sqrt(r)
// for rsLoRA, Kalajdzievski 2023, https://arxiv.org/abs/2312.03732).
//
// Model code builds its projections as AdaptableLinear; apply_lora() attaches adapters to those
// whose names match the target patterns, as PEFT's `target_modules` does. Adapters can be switched
// off at run time (the DPO reference is "the same model, adapter off"), merged into the base
// weights, and saved and loaded in PEFT's format (adapter_model.safetensors + adapter_config.json,
// PEFT's key names) so the result loads in PEFT, vLLM and friends.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <alignkit/model_loader.hpp>
#include <alignkit/quantization.hpp>

namespace alignkit {

struct LoraConfig {
  std::int64_t r = 8;        // PEFT's defaults
  double alpha = 8.0;        // lora_alpha
  double dropout = 0.0;      // lora_dropout
  bool use_rslora = false;
  // Module names or name suffixes ("q_proj" matches "model.layers.0.self_attn.q_proj").
  std::vector<std::string> target_modules;
  // Whole modules trained and saved beside the adapters (PEFT's modules_to_save), matched like
  // target_modules against module names: a reward model's "score" head. PEFT lists "classifier"
  // and "score" for every SEQ_CLS adapter; names no module has are kept as they are.
  std::vector<std::string> modules_to_save;
  std::string task_type = "CAUSAL_LM";  // PEFT's task_type; "SEQ_CLS" for a reward model

  double scaling() const;
};

class AdaptableLinearImpl : public torch::nn::Module {
 public:
  // The weights start uninitialised: a model loader fills them (and refuses to leave one unset).
  AdaptableLinearImpl(std::int64_t in_features, std::int64_t out_features, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

  // Adds submodules lora_A (in -> r, Kaiming-uniform, as PEFT) and lora_B (r -> out, zeros), so
  // the layer is unchanged until training moves B; their weights are named like PEFT's
  // ("...q_proj.lora_A.weight"). Throws std::logic_error if the layer already has an adapter.
  void attach_lora(std::int64_t r, double scaling, double dropout);
  bool has_lora() const { return !lora_A.is_empty(); }
  void set_adapter_enabled(bool enabled) { adapter_enabled_ = enabled; }
  bool adapter_enabled() const { return adapter_enabled_; }
  // Folds s * B A into the weight and removes the adapter. A quantized base is dequantized first
  // into the dtype it was loaded in, so the merged layer is unquantized.
  void merge_lora();

  // Replaces the frozen weight by its int8 or NF4 form (QLoRA); forward then dequantizes it to the
  // input's dtype on the fly. The "weight" parameter stays registered, empty and frozen, so
  // names and LoRA attachment are unchanged; a quantized layer cannot be saved as a model.
  void quantize_base(BaseQuantization kind, const torch::Tensor& full_weight);
  bool quantized() const { return !std::holds_alternative<std::monostate>(quantized_); }
  // The base weight in `dtype`: the weight itself, or its dequantized form.
  torch::Tensor base_weight(torch::ScalarType dtype) const;
  // Bytes the base weight occupies (quantized codes and constants, or the plain weight).
  std::int64_t base_weight_bytes() const;
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }

  torch::Tensor weight, bias;               // "weight" [out, in], "bias" [out] when present
  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};  // when an adapter is attached
  double lora_scaling = 0.0;
  double lora_dropout = 0.0;

 private:
  bool adapter_enabled_ = true;
  std::int64_t in_features_, out_features_;
  std::variant<std::monostate, Int8Weight, Nf4Weight> quantized_;
  torch::ScalarType base_dtype_ = torch::kFloat32;  // the dtype the base was loaded in
};
TORCH_MODULE(AdaptableLinear);

// PEFT's rule for a list of target_modules (and for modules_to_save): the module's full name is
// one of `targets`, or ends with "." and one of them ("q_proj" matches
// "model.layers.0.self_attn.q_proj", not "model.layers.0.self_attn.xq_proj").
bool is_lora_target(std::string_view module_name, const std::vector<std::string>& targets);

// Attaches an adapter to every AdaptableLinear whose name matches config.target_modules and
// freezes every other parameter but those of config.modules_to_save. Returns the adapted module names. Throws DiagnosticError when
// no module matches (naming the adaptable modules there are).
std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraConfig& config);

void set_adapters_enabled(torch::nn::Module& model, bool enabled);
void merge_lora(torch::nn::Module& model);

// PEFT's format: <dir>/adapter_model.safetensors with keys
// "base_model.model.<module>.lora_A.weight" / ".lora_B.weight" (and "base_model.model.<name>" for
// each parameter of modules_to_save, as PEFT saves them without its wrapper's prefix), and
// <dir>/adapter_config.json.
void save_peft_adapter(torch::nn::Module& model, const LoraConfig& config, const std::filesystem::path& dir,
                       const std::string& base_model_name_or_path);
// Reads adapter_config.json, attaches adapters as it says, and loads their weights. Throws
// DiagnosticError naming the file for anything that does not fit the model.
LoraConfig load_peft_adapter(torch::nn::Module& model, const std::filesystem::path& dir);

}  // namespace alignkit
