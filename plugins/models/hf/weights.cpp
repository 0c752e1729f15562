#include "weights.hpp"

#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <alignkit/json_file.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/safetensors.hpp>

namespace alignkit::hf {

namespace fs = std::filesystem;

namespace {

// Errors about a whole file (alignkit/diagnostic.hpp).
[[noreturn]] void fail(const fs::path& file, std::string message, std::string help = {}) {
  throw_file_error(file.string(), std::move(message), std::move(help));
}

// Tensor name -> shard file, from the index if there is one.
std::map<std::string, fs::path> locate_tensors(const fs::path& dir, std::map<fs::path, safetensors::File>& files) {
  std::map<std::string, fs::path> where;
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    auto json = read_json_file(index);
    if (!json.contains("weight_map") || !json["weight_map"].is_object())
      fail(index, "has no weight_map object");
    for (const auto& [name, shard] : json["weight_map"].items()) {
      if (!shard.is_string()) fail(index, fmt::format("weight_map['{}'] is not a file name", name));
      const fs::path shard_path = dir / shard.get<std::string>();
      if (shard_path.filename() != shard_path.lexically_relative(dir))
        fail(index, fmt::format("weight_map['{}'] points outside the model directory", name));
      where[name] = shard_path;
    }
  } else if (fs::exists(single)) {
    files.emplace(single, safetensors::File::open(single));
    for (const auto& t : files.at(single).header().tensors) where[t.name] = single;
  } else {
    fail(dir, "has no model.safetensors or model.safetensors.index.json",
         "convert PyTorch .bin weights to safetensors first (transformers: save_pretrained(safe_serialization=True))");
  }
  for (const auto& [name, file] : where) {
    if (!files.count(file)) files.emplace(file, safetensors::File::open(file));
    if (!files.at(file).find(name)) fail(file, fmt::format("the index lists tensor '{}' here, but the file lacks it", name));
  }
  return where;
}

// Tensors a checkpoint may carry that are not weights of ours.
bool ignorable(const std::string& name) { return name.find("rotary_emb.inv_freq") != std::string::npos; }

}  // namespace

void check_weights_present(const fs::path& dir) {
  if (!fs::exists(dir / "model.safetensors") && !fs::exists(dir / "model.safetensors.index.json"))
    fail(dir, "has no model.safetensors or model.safetensors.index.json",
         "convert PyTorch .bin weights to safetensors first (transformers: save_pretrained(safe_serialization=True))");
}

void load_weights(torch::nn::Module& module, const fs::path& dir, const LoadOptions& options,
                  const std::set<std::string>& fresh, const std::set<std::string>& unused) {
  std::map<fs::path, safetensors::File> files;
  const auto where = locate_tensors(dir, files);
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  // The decoder's projections, quantized one at a time as they load when asked to.
  std::map<std::string, AdaptableLinearImpl*> quantize;
  if (options.quantization != BaseQuantization::none)
    for (const auto& item : module.named_modules())
      if (auto* linear = dynamic_cast<AdaptableLinearImpl*>(item.value().get())) quantize[item.key() + ".weight"] = linear;
  for (auto& item : module.named_parameters(true)) {
    const std::string& name = item.key();
    if (fresh.count(name)) continue;
    auto it = where.find(name);
    if (it == where.end())
      fail(dir, fmt::format("the weights have no tensor '{}', which the model needs", name),
           "is config.json's architecture the one these weights were saved from?");
    const auto& file = files.at(it->second);
    auto tensor = file.tensor(name);
    if (tensor.sizes() != item.value().sizes())
      fail(it->second, fmt::format("tensor '{}' has shape {}, the config implies {}", name,
                                   fmt::join(tensor.sizes(), "x"), fmt::join(item.value().sizes(), "x")));
    if (auto q = quantize.find(name); q != quantize.end())
      q->second->quantize_base(options.quantization, tensor.to(options.device, options.dtype));
    else
      item.value().set_data(tensor.to(options.device, options.dtype));
    used.insert(name);
  }
  // lm_head.weight in the file of a tied model is the embedding again (some writers keep it).
  const auto params = module.named_parameters(true);
  const bool tied = params.find("lm_head.weight") == nullptr && params.find("score.weight") == nullptr;
  for (const auto& [name, file] : where)
    if (!used.count(name) && !ignorable(name) && !unused.count(name) && !(tied && name == "lm_head.weight"))
      fail(file, fmt::format("tensor '{}' has no place in the model", name),
           "is config.json's architecture the one these weights were saved from?");
}

void save_weights(const torch::nn::Module& module, const fs::path& dir) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : module.named_parameters(true)) tensors.emplace_back(item.key(), item.value());
  safetensors::save(dir / "model.safetensors", tensors, {{"format", "pt"}});
  // A sharded checkpoint saved over would otherwise still be what loads (the index wins).
  std::error_code ec;
  fs::remove(dir / "model.safetensors.index.json", ec);
}

}  // namespace alignkit::hf
