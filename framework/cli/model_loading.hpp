// Loading a model for a command (score, merge, generate, eval) through a model-loader plugin, selected
// as a recipe's [model] section would select it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <alignkit/generation.hpp>
#include <alignkit/model_loader.hpp>

#include "../host/plugin_registry.hpp"

namespace alignkit::cli {

struct LoadedModel {
  std::shared_ptr<ModelLoader> loader;
  std::shared_ptr<CausalLM> model;  // in eval mode; holds its plugin loaded
};

LoadedModel load_model(const std::string& loader_name, const std::filesystem::path& dir, PluginRegistry& registry,
                       const LoadOptions& options = {});

// generation_config.json's sampling defaults and special ids, as transformers reads them; absent
// fields (or an absent file) keep `config`'s values.
void read_generation_config(const std::filesystem::path& file, GenerationConfig& config);

// A dtype by its name in alignkit/dtype_names.hpp ("float32", "bfloat16", "float16"); UsageError otherwise.
torch::ScalarType parse_dtype(const std::string& name);

}  // namespace alignkit::cli
