#include <alignkit/lora.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <stdexcept>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/nn/init.h>

#include <alignkit/atomic_file.hpp>
#include <alignkit/diagnostic.hpp>
#include <alignkit/json_file.hpp>
#include <alignkit/safetensors.hpp>

namespace alignkit {

namespace fs = std::filesystem;

double LoraConfig::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

AdaptableLinearImpl::AdaptableLinearImpl(std::int64_t in_features, std::int64_t out_features, bool with_bias)
    : in_features_(in_features), out_features_(out_features) {
  // Not initialised: loaders overwrite every weight, and initialising a 7B model first costs minutes.
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out_features}));
}

torch::Tensor AdaptableLinearImpl::base_weight(torch::ScalarType dtype) const {
  if (const auto* q = std::get_if<Nf4Weight>(&quantized_)) return dequantize(*q, dtype);
  if (const auto* q = std::get_if<Int8Weight>(&quantized_)) return dequantize(*q, dtype);
  return weight;
}

std::int64_t AdaptableLinearImpl::base_weight_bytes() const {
  if (const auto* q = std::get_if<Nf4Weight>(&quantized_)) return q->storage_bytes();
  if (const auto* q = std::get_if<Int8Weight>(&quantized_)) return q->storage_bytes();
  return weight.numel() * static_cast<std::int64_t>(weight.element_size());
}

void AdaptableLinearImpl::quantize_base(BaseQuantization kind, const torch::Tensor& full_weight) {
  if (full_weight.sizes() != torch::IntArrayRef{out_features_, in_features_})
    throw std::invalid_argument("quantize_base: the weight's shape is not the layer's");
  switch (kind) {
    case BaseQuantization::none: return;
    case BaseQuantization::int8: quantized_ = quantize_int8(full_weight); break;
    case BaseQuantization::nf4: quantized_ = quantize_nf4(full_weight, false); break;
    case BaseQuantization::nf4_double_quant: quantized_ = quantize_nf4(full_weight, true); break;
  }
  base_dtype_ = full_weight.scalar_type();
  torch::NoGradGuard no_grad;
  weight.set_data(torch::empty({0}, full_weight.options()));
  weight.set_requires_grad(false);
}

torch::Tensor AdaptableLinearImpl::forward(const torch::Tensor& x) {
  // Dequantized per call: the full-precision copy lives only for this product (and, under
  // gradient checkpointing, is made again in backward).
  auto y = torch::matmul(x, quantized() ? base_weight(x.scalar_type()).t() : weight.t());
  if (bias.defined()) y = y + bias;
  if (has_lora() && adapter_enabled_) {
    const auto dropped = lora_dropout > 0 ? torch::dropout(x, lora_dropout, is_training()) : x;
    const auto a = lora_A->weight;
    y = y + (torch::matmul(torch::matmul(dropped.to(a.scalar_type()), a.t()), lora_B->weight.t()) * lora_scaling)
                .to(y.scalar_type());
  }
  return y;
}

void AdaptableLinearImpl::attach_lora(std::int64_t r, double scaling, double dropout) {
  if (has_lora()) throw std::logic_error("attach_lora: the layer already has an adapter");
  auto make = [](std::int64_t in, std::int64_t out) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
  };
  lora_A = register_module("lora_A", make(in_features_, r));  // kaiming_uniform(a=sqrt(5)), as PEFT
  lora_B = register_module("lora_B", make(r, out_features_));
  torch::NoGradGuard no_grad;
  lora_B->weight.zero_();
  // Adapters train in fp32 whatever the base dtype (QLoRA's and PEFT's practice).
  lora_A->to(weight.device(), torch::kFloat32);
  lora_B->to(weight.device(), torch::kFloat32);
  lora_scaling = scaling;
  lora_dropout = dropout;
}

void AdaptableLinearImpl::merge_lora() {
  if (!has_lora()) return;
  {
    torch::NoGradGuard no_grad;
    if (quantized()) {
      weight.set_data(base_weight(base_dtype_));
      quantized_ = std::monostate{};
    }
    weight.add_((torch::matmul(lora_B->weight, lora_A->weight) * lora_scaling).to(weight.scalar_type()));
  }
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A = nullptr;
  lora_B = nullptr;
}

bool is_lora_target(std::string_view name, const std::vector<std::string>& targets) {
  for (const auto& t : targets)
    if (name == t || (name.size() > t.size() && name.ends_with(t) && name[name.size() - t.size() - 1] == '.'))
      return true;
  return false;
}

namespace {

template <typename F>
void for_each_adaptable(torch::nn::Module& model, F&& fn) {
  for (const auto& item : model.named_modules()) {
    if (auto* linear = dynamic_cast<AdaptableLinearImpl*>(item.value().get())) fn(item.key(), *linear);
  }
}

// Errors about a whole file (alignkit/diagnostic.hpp).
[[noreturn]] void fail(const fs::path& file, std::string message, std::string help = {}) {
  throw_file_error(file.string(), std::move(message), std::move(help));
}

const std::string kPeftPrefix = "base_model.model.";

// The parameters of the modules PEFT's modules_to_save names ("score.weight" for "score").
std::vector<std::pair<std::string, torch::Tensor>> saved_module_parameters(torch::nn::Module& model,
                                                                           const std::vector<std::string>& modules) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (modules.empty()) return out;
  for (const auto& item : model.named_parameters()) {
    const auto dot = item.key().rfind('.');
    if (dot != std::string::npos && is_lora_target(item.key().substr(0, dot), modules)) out.emplace_back(item.key(), item.value());
  }
  return out;
}

}  // namespace

std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraConfig& config) {
  std::vector<std::string> targets, adaptable;
  bool already_adapted = false;
  for_each_adaptable(model, [&](const std::string& name, AdaptableLinearImpl& linear) {
    adaptable.push_back(name);
    already_adapted = already_adapted || linear.has_lora();
    if (is_lora_target(name, config.target_modules)) targets.push_back(name);
  });
  if (already_adapted)
    throw DiagnosticError(make_error("the model already has LoRA adapters", "merge them first, or load a fresh model"));
  if (targets.empty()) {
    Diagnostic d = make_error(fmt::format("no module matches the LoRA target_modules [{}]",
                                          fmt::join(config.target_modules, ", ")));
    if (!adaptable.empty())
      d.notes.push_back(fmt::format("adaptable modules include: {}",
                                    fmt::join(adaptable.begin(), adaptable.begin() + std::min<std::size_t>(adaptable.size(), 7), ", ")));
    d.help = "name modules by their last part, e.g. q_proj, v_proj";
    throw DiagnosticError(std::move(d));
  }
  // Only now that the adapters are known to fit: freeze the base, then attach.
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  for_each_adaptable(model, [&](const std::string& name, AdaptableLinearImpl& linear) {
    if (is_lora_target(name, config.target_modules)) linear.attach_lora(config.r, config.scaling(), config.dropout);
  });
  for (auto& [name, p] : saved_module_parameters(model, config.modules_to_save)) p.set_requires_grad(true);
  return targets;
}

void set_adapters_enabled(torch::nn::Module& model, bool enabled) {
  for_each_adaptable(model, [&](const std::string&, AdaptableLinearImpl& linear) { linear.set_adapter_enabled(enabled); });
}

void merge_lora(torch::nn::Module& model) {
  for_each_adaptable(model, [&](const std::string&, AdaptableLinearImpl& linear) { linear.merge_lora(); });
}

void save_peft_adapter(torch::nn::Module& model, const LoraConfig& config, const fs::path& dir,
                       const std::string& base_model_name_or_path) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for_each_adaptable(model, [&](const std::string& name, AdaptableLinearImpl& linear) {
    if (!linear.has_lora()) return;
    tensors.emplace_back(kPeftPrefix + name + ".lora_A.weight", linear.lora_A->weight);
    tensors.emplace_back(kPeftPrefix + name + ".lora_B.weight", linear.lora_B->weight);
  });
  for (auto& [name, p] : saved_module_parameters(model, config.modules_to_save)) tensors.emplace_back(kPeftPrefix + name, p);
  fs::create_directories(dir);
  safetensors::save(dir / "adapter_model.safetensors", tensors, {{"format", "pt"}});
  // The fields PEFT's LoraConfig reads, with its defaults for what alignkit does not use.
  const nlohmann::json json = {{"peft_type", "LORA"},
                               {"task_type", config.task_type},
                               {"base_model_name_or_path", base_model_name_or_path},
                               {"r", config.r},
                               {"lora_alpha", config.alpha},
                               {"lora_dropout", config.dropout},
                               {"target_modules", config.target_modules},
                               {"use_rslora", config.use_rslora},
                               {"bias", "none"},
                               {"fan_in_fan_out", false},
                               {"inference_mode", true},
                               {"init_lora_weights", true},
                               {"modules_to_save", config.modules_to_save.empty()
                                                       ? nlohmann::json(nullptr)
                                                       : nlohmann::json(config.modules_to_save)},
                               {"layers_to_transform", nullptr},
                               {"layers_pattern", nullptr},
                               {"rank_pattern", nlohmann::json::object()},
                               {"alpha_pattern", nlohmann::json::object()},
                               {"use_dora", false},
                               {"revision", nullptr}};
  write_file_atomically(dir / "adapter_config.json", json.dump(2) + "\n");
}

LoraConfig load_peft_adapter(torch::nn::Module& model, const fs::path& dir) {
  const fs::path config_path = dir / "adapter_config.json";
  std::error_code ec;
  if (!fs::is_regular_file(config_path, ec))
    fail(config_path, "cannot be read", "a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors");
  const auto json = read_json_file(config_path);
  if (json.value("peft_type", "") != "LORA") fail(config_path, "peft_type is not LORA");
  for (const char* unsupported : {"use_dora", "fan_in_fan_out"})
    if (json.value(unsupported, false)) fail(config_path, fmt::format("{} adapters are not supported", unsupported));
  if (!json.value("rank_pattern", nlohmann::json::object()).empty() ||
      !json.value("alpha_pattern", nlohmann::json::object()).empty())
    fail(config_path, "per-module rank_pattern / alpha_pattern are not supported");
  LoraConfig config;
  try {
    config.r = json.at("r").get<std::int64_t>();
    config.alpha = json.at("lora_alpha").get<double>();
    config.dropout = json.value("lora_dropout", 0.0);
    config.use_rslora = json.value("use_rslora", false);
    const auto& targets = json.at("target_modules");
    if (targets.is_string()) config.target_modules = {targets.get<std::string>()};
    else config.target_modules = targets.get<std::vector<std::string>>();
    if (json.contains("task_type") && json["task_type"].is_string()) config.task_type = json["task_type"];
    const auto saved = json.value("modules_to_save", nlohmann::json(nullptr));
    if (saved.is_string()) config.modules_to_save = {saved.get<std::string>()};
    else if (!saved.is_null()) config.modules_to_save = saved.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail(config_path, fmt::format("missing or mistyped field: {}", e.what()));
  }
  if (config.r <= 0) fail(config_path, "r must be positive");
  try {
    apply_lora(model, config);
  } catch (const DiagnosticError& e) {
    Diagnostic d = e.diagnostics().at(0);
    d.where = SourceLocation{config_path.string(), 0, 0};
    throw DiagnosticError(std::move(d));
  }
  const auto weights = safetensors::File::open(dir / "adapter_model.safetensors");
  std::size_t used = 0;
  torch::NoGradGuard no_grad;
  auto copy_in = [&](const std::string& full, torch::Tensor& target) {
    if (!weights.find(full)) fail(weights.path(), fmt::format("has no tensor '{}'", full));
    const auto t = weights.tensor(full);
    if (t.sizes() != target.sizes())
      fail(weights.path(), fmt::format("tensor '{}' has shape {}, the model needs {}", full, fmt::join(t.sizes(), "x"),
                                       fmt::join(target.sizes(), "x")));
    target.copy_(t);
    ++used;
  };
  for_each_adaptable(model, [&](const std::string& name, AdaptableLinearImpl& linear) {
    if (!linear.has_lora()) return;
    copy_in(kPeftPrefix + name + ".lora_A.weight", linear.lora_A->weight);
    copy_in(kPeftPrefix + name + ".lora_B.weight", linear.lora_B->weight);
  });
  for (auto& [name, target] : saved_module_parameters(model, config.modules_to_save)) copy_in(kPeftPrefix + name, target);
  if (used != weights.header().tensors.size() && config.task_type == "SEQ_CLS")
    fail(weights.path(), fmt::format("holds {} tensors, of which the model uses {}: this SEQ_CLS adapter saves a "
                                     "classification head the model does not have",
                                     weights.header().tensors.size(), used),
         "load the base as a one-output sequence classifier (LoadOptions::classification_labels = 1, as the reward "
         "method and `alignkit merge` do)");
  if (used != weights.header().tensors.size())
    fail(weights.path(), fmt::format("holds {} tensors, of which the model's adapters use {}",
                                     weights.header().tensors.size(), used),
         "was the adapter trained with other target_modules or on another architecture?");
  return config;
}

}  // namespace alignkit
