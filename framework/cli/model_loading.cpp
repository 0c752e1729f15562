#include "model_loading.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/did_you_mean.hpp>
#include <alignkit/dtype_names.hpp>
#include <alignkit/json_file.hpp>

#include "../host/recipe_validator.hpp"
#include "command_line.hpp"

namespace alignkit::cli {

namespace fs = std::filesystem;

LoadedModel load_model(const std::string& loader_name, const fs::path& dir, PluginRegistry& registry,
                       const LoadOptions& options) {
  RecipeTree tree;
  tree.file = "<command line>";
  auto set = [&](const char* key, const std::string& value) {
    RecipeLeaf leaf;
    leaf.value = std::make_shared<toml::value<std::string>>(value);
    leaf.key_where = leaf.value_where = SourceLocation{key[0] == 'l' ? "--loader" : "--model", 1, 1};
    leaf.source_line = value;
    leaf.base_dir = fs::current_path();
    tree.leaves[KeyPath{"model", key}] = std::move(leaf);
  };
  set("loader", loader_name);
  set("path", dir.string());
  const auto recipe = validate_recipe(std::move(tree), registry);
  const auto* plugin = recipe.plugins.at("model");
  auto loader = registry.create<ModelLoader>(*plugin, recipe.section("model"));
  const auto path = recipe.section("model").get_path("path");
  auto model = call_plugin(*plugin, "to load the model", [&] { return loader->load(path, options); });
  if (!model) throw DiagnosticError(plugin_failure(*plugin, "to load the model", "the loader returned no model"));
  model->eval();
  return {loader, PluginRegistry::keep_loaded(*plugin, std::move(model))};
}

void read_generation_config(const fs::path& file, GenerationConfig& config) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return;
  const auto json = read_json_file(file);
  try {
    if (json.contains("do_sample")) config.do_sample = json.at("do_sample").get<bool>();
    if (json.contains("temperature")) config.temperature = json.at("temperature").get<double>();
    if (json.contains("top_k")) config.top_k = json.at("top_k").get<std::int64_t>();
    if (json.contains("top_p")) config.top_p = json.at("top_p").get<double>();
    if (json.contains("max_new_tokens")) config.max_new_tokens = json.at("max_new_tokens").get<std::int64_t>();
    if (json.contains("eos_token_id")) {
      const auto& eos = json.at("eos_token_id");
      config.eos_token_ids = eos.is_array() ? eos.get<std::vector<std::int64_t>>()
                                            : std::vector<std::int64_t>{eos.get<std::int64_t>()};
    }
    if (json.contains("pad_token_id") && json.at("pad_token_id").is_number_integer())
      config.pad_token_id = json.at("pad_token_id").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw_file_error(file.string(), fmt::format("cannot be read as a generation config: {}", e.what()));
  }
}

torch::ScalarType parse_dtype(const std::string& name) {
  if (const auto dtype = dtype_from_name(name)) return *dtype;
  std::vector<std::string> names;
  for (const auto& entry : kDtypeNames) names.emplace_back(entry.name);
  throw UsageError(fmt::format("unknown dtype '{}'; {}", name, suggestion(name, names)));
}

}  // namespace alignkit::cli
