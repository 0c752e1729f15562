#include "run_models.hpp"

#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/dtype_names.hpp>

#include "memory_planner.hpp"

namespace alignkit {

namespace fs = std::filesystem;

RunModels::RunModels(const ValidatedRecipe& recipe, const TrainingSettings& settings, torch::Device device,
                     ModelNeeds needs)
    : recipe_(recipe), device_(device), dtype_(settings.dtype), needs_(needs), loader_plugin_(recipe.plugins.at("model")) {
  const auto model_section = recipe.section("model");
  loader_ = recipe.object<ModelLoader>("model");
  model_path_ = model_section.get_path("path");
  quantization_ = quantization_of(model_section.get_string("quantization"));
  lora_ = recipe.has_section("lora") && recipe.section("lora").get_bool("enabled");
  if (quantization_ != BaseQuantization::none && !lora_)
    throw DiagnosticError(model_section.error("quantization", "a quantized base needs LoRA adapters to train",
                                              "add a [lora] section, or set quantization = \"none\""));
  policy_ = load(model_path_, dtype_, quantization_, needs.classifier);
  if (lora_) setup_lora(needs.classifier);
  else
    for (auto& p : policy_->parameters()) p.set_requires_grad(true);
  policy_->set_gradient_checkpointing(settings.gradient_checkpointing);
  if (needs.reference) setup_reference();
}

std::shared_ptr<CausalLM> RunModels::load(const fs::path& path, torch::ScalarType dtype, BaseQuantization quantization,
                                          bool classifier) {
  LoadOptions options;
  options.classification_labels = classifier ? 1 : 0;
  options.device = device_;
  options.dtype = dtype;
  options.quantization = quantization;
  options.eager_attention = recipe_.section("model").get_string("attention") == "eager";
  auto model = call_plugin(*loader_plugin_, "to load the model", [&] { return loader_->load(path, options); });
  if (!model) throw DiagnosticError(plugin_failure(*loader_plugin_, "to load the model", "the loader returned no model"));
  return PluginRegistry::keep_loaded(*loader_plugin_, std::move(model));
}

void RunModels::setup_lora(bool classifier) {
  const auto section = recipe_.section("lora");
  if (section.has("init_adapter")) {
    for (const char* key : {"r", "alpha", "dropout", "use_rslora", "target_modules"})
      if (section.has(key))
        throw DiagnosticError(section.error(key, fmt::format("'{}' is set by init_adapter's adapter_config.json", key),
                                            "remove it, or drop init_adapter to start a fresh adapter"));
    lora_config_ = load_peft_adapter(*policy_, section.get_path("init_adapter"));
    // PEFT keeps the original of a modules_to_save module for the adapter-off view; here the
    // module itself trains, so only a classifier (no reference) may bring one.
    if (!classifier && !lora_config_.modules_to_save.empty())
      throw DiagnosticError(section.error(
          "init_adapter", fmt::format("the adapter also trains whole modules (modules_to_save: {}), which alignkit "
                                      "supports only for reward models",
                                      fmt::join(lora_config_.modules_to_save, ", ")),
          "merge it into the base first (alignkit merge), then start a fresh adapter"));
    if (classifier && lora_config_.task_type != "SEQ_CLS")
      throw DiagnosticError(section.error(
          "init_adapter", fmt::format("a reward model's adapter must also save its score head (task_type SEQ_CLS); "
                                      "this one's task_type is {}",
                                      lora_config_.task_type),
          "start a fresh adapter, or give one that alignkit or PEFT saved for sequence classification"));
    return;
  }
  lora_config_.r = section.get_int("r");
  lora_config_.alpha = section.get_float("alpha");
  lora_config_.dropout = section.get_float("dropout");
  lora_config_.use_rslora = section.get_bool("use_rslora");
  lora_config_.target_modules = section.get_string_list("target_modules");
  if (classifier) {
    // PEFT's SEQ_CLS adapter: the score head trains whole beside the adapters and is saved with
    // them (PeftModelForSequenceClassification adds these two names).
    lora_config_.task_type = "SEQ_CLS";
    lora_config_.modules_to_save = {"classifier", "score"};
  }
  apply_lora(*policy_, lora_config_);
}

void RunModels::setup_reference() {
  const auto section = recipe_.section("reference");
  const auto name = section.get_string("strategy");
  if (name == "adapter-off" || (name == "auto" && lora_)) {
    if (!lora_)
      throw DiagnosticError(section.error("strategy", "adapter-off needs LoRA adapters on the policy",
                                          "add a [lora] section, or use strategy = \"copy\""));
    reference_source_ = ReferenceSource::adapter_off;
  } else if (name == "precomputed") {
    reference_source_ = ReferenceSource::precomputed;
  } else {
    reference_source_ = ReferenceSource::copy;
    const fs::path path = section.has("path") ? section.get_path("path") : model_path_;
    const auto dtype = section.has("precision") ? dtype_from_name(section.get_string("precision")).value_or(dtype_) : dtype_;
    reference_ = load(path, dtype, quantization_of(section.get_string("quantization")), false);
    reference_->eval();
    for (auto& p : reference_->parameters()) p.set_requires_grad(false);
  }
}

std::string RunModels::reference_description() const {
  switch (reference_source_) {
    case ReferenceSource::none: return "none (reference-free method)";
    case ReferenceSource::copy: return "a frozen copy";
    case ReferenceSource::adapter_off: return "the policy with its adapters off";
    case ReferenceSource::precomputed: return "precomputed before training";
  }
  return "?";
}

void RunModels::save_adapter(const fs::path& dir) const {
  save_peft_adapter(*policy_, lora_config_, dir, model_path_.string());
}

namespace {

// transformers' sequence classifiers pool at the last token that is not config.pad_token_id
// (TRL's RewardTrainer sets it from the tokenizer before training): the saved classifier must
// pool where training read its scores.
void record_pad_token(const fs::path& config_file, std::int64_t pad_id) {
  if (!fs::exists(config_file)) return;  // a loader of another format
  std::ifstream in(config_file);
  auto config = nlohmann::json::parse(in);
  config["pad_token_id"] = pad_id;  // the id the scores were pooled by, as TRL overwrites it
  write_file_atomically(config_file, config.dump(2) + "\n");
}

}  // namespace

void RunModels::save_final(const fs::path& dir, const fs::path& run_dir, const Tokenizer& tokenizer, std::int64_t pad_id) {
  const auto output = recipe_.section("output");
  fs::create_directories(dir);
  if (lora_ && output.get_bool("save_adapter")) {
    save_adapter(dir / "adapter");
    std::cerr << fmt::format("saved the adapter to {}\n", (dir / "adapter").string());
  }
  if (!output.get_bool("save_model")) return;
  auto model = policy_;
  if (lora_) {
    if (quantization_ != BaseQuantization::none) {
      // The adapter merges into the full-precision base, as PEFT's merge of a k-bit model.
      model = load(model_path_, dtype_, BaseQuantization::none, needs_.classifier);
      auto adapter = dir / "adapter";
      if (!output.get_bool("save_adapter")) {
        adapter = run_dir / ".adapter-to-merge";
        save_adapter(adapter);
      }
      load_peft_adapter(*model, adapter);
      if (!output.get_bool("save_adapter")) fs::remove_all(adapter);
    }
    merge_lora(*model);
  }
  call_plugin(*loader_plugin_, "to save the model", [&] { loader_->save(*model, dir / "model"); });
  if (needs_.classifier) record_pad_token(dir / "model" / "config.json", pad_id);
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                           "chat_template.jinja"}) {
    const auto from = tokenizer.origin().parent_path() / file;
    if (fs::exists(from)) fs::copy_file(from, dir / "model" / file, fs::copy_options::overwrite_existing);
  }
  std::cerr << fmt::format("saved the model to {}\n", (dir / "model").string());
}

}  // namespace alignkit
