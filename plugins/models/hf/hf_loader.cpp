// hf: Hugging Face causal LMs (and their sequence-classification variants) from a local model
// directory: config.json plus model.safetensors or sharded safetensors with an index.
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/available_memory.hpp>
#include <alignkit/dtype_names.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/recipe_section.hpp>

#include "decoder.hpp"
#include "hf_config.hpp"
#include "weights.hpp"

namespace {

// LibTorch builds without fp16 matrix products on the CPU (1.13 among them) would fail at the
// first forward with an internal message; say it before loading.
void check_dtype_supported(const alignkit::LoadOptions& options) {
  if (options.dtype != torch::kFloat16 || !options.device.is_cpu()) return;
  try {
    const auto probe = torch::ones({2, 2}, torch::kFloat16);
    (void)torch::matmul(probe, probe);
  } catch (const std::exception&) {
    throw alignkit::DiagnosticError(alignkit::make_error(
        "float16 compute is not available on the CPU with this LibTorch",
        "use bfloat16 (or float32) on the CPU; float16 is for CUDA devices"));
  }
}

class HfLoader final : public alignkit::ModelLoader {
 public:
  alignkit::ModelDescription describe(const std::filesystem::path& dir) const override {
    return alignkit::hf::describe(alignkit::hf::read_config(dir));
  }

  std::shared_ptr<alignkit::CausalLM> load(const std::filesystem::path& dir,
                                           const alignkit::LoadOptions& options) override {
    check_dtype_supported(options);
    auto config = alignkit::hf::read_config(dir);
    alignkit::hf::check_weights_present(dir);
    const bool fresh_head = options.classification_labels > 0 && config.head == alignkit::hf::Head::causal_lm;
    if (options.classification_labels > 0)
      config = alignkit::hf::as_classifier(std::move(config), options.classification_labels, dir);
    // The decoder is built with float32 parameters on the CPU before the weights replace them.
    const auto parameters = alignkit::hf::describe(config).parameters;
    alignkit::require_cpu_memory(parameters * 4, fmt::format("building the model's {:.3g} float32 parameters",
                                                             static_cast<double>(parameters)),
                                 (dir / "config.json").string());
    auto model = std::make_shared<alignkit::hf::DecoderLM>(config);
    model->model->fused_attention = !options.eager_attention;
    std::set<std::string> fresh, unused;
    if (fresh_head) fresh = {"score.weight"}, unused = {"lm_head.weight"};
    alignkit::hf::load_weights(*model, dir, options, fresh, unused);
    if (fresh_head) {
      // transformers' _init_weights for a Linear missing from the checkpoint, drawn in fp32 on
      // the CPU so that a seed gives the same head on every device and dtype.
      torch::NoGradGuard no_grad;
      auto weight = torch::empty(model->score->weight.sizes(), torch::kFloat32).normal_(0, config.initializer_range);
      model->score->weight.set_data(weight.to(options.device, options.dtype));
    }
    model->eval();
    return model;
  }

  void save(const alignkit::CausalLM& model, const std::filesystem::path& dir) const override {
    const auto* decoder = dynamic_cast<const alignkit::hf::DecoderLM*>(&model);
    if (!decoder)
      throw alignkit::DiagnosticError(alignkit::make_error("the hf loader saves only models it loaded"));
    for (const auto& item : model.named_modules())
      if (auto* linear = dynamic_cast<const alignkit::AdaptableLinearImpl*>(item.value().get()); linear && linear->quantized())
        throw alignkit::DiagnosticError(alignkit::make_error(
            fmt::format("'{}' holds a quantized base weight; a saved model would lose precision silently", item.key()),
            "load the model unquantized to merge and save it (alignkit merge does)"));
    for (const auto& item : model.named_parameters())
      if (item.key().find(".lora_") != std::string::npos)
        throw alignkit::DiagnosticError(alignkit::make_error(
            "the model has LoRA adapters; a saved model would not load again",
            "merge them first (alignkit merge), or save the adapter on its own in PEFT's format"));
    std::filesystem::create_directories(dir);
    alignkit::hf::save_weights(model, dir);
    // The config says the dtype the weights are now saved in, as save_pretrained writes it.
    auto config = nlohmann::json::parse(decoder->config().json);
    const auto dtype = decoder->model->embed_tokens->weight.scalar_type();
    config["torch_dtype"] = std::string(alignkit::dtype_name(dtype));
    alignkit::write_file_atomically(dir / "config.json", config.dump(2) + "\n");
  }
};

std::unique_ptr<HfLoader> make(const alignkit::RecipeSection&) { return std::make_unique<HfLoader>(); }

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::model_loader, "hf", "0.1.0",
                                            "Hugging Face Llama, Mistral, Qwen2 and Qwen3 models from a local "
                                            "directory (config.json + safetensors)"))
