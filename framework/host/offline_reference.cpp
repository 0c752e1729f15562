// The precomputed reference's cache key (reference_cache.hpp keeps the file).
#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "offline_scoring.hpp"
#include "option_value.hpp"

namespace alignkit {

namespace fs = std::filesystem;

std::string examples_hash(const TrainingData& data) {
  ContentHash hash;
  for (const auto* split : {&data.train, &data.eval}) {
    hash.add(static_cast<std::int64_t>(split->size()));
    for (const auto& e : *split) {
      for (const auto* ids : {&e.prompt, &e.completion, &e.rejected, &e.mismatched_completion}) {
        hash.add(static_cast<std::int64_t>(ids->size()));
        hash.add(ids->data(), ids->size() * sizeof(std::int64_t));
      }
      hash.add(static_cast<std::int64_t>(e.desirable));
    }
  }
  return hash.hex();
}

std::vector<CacheKeyPart> reference_cache_key(const ValidatedRecipe& recipe, const RunModels& models,
                                              const Tokenizer& tokenizer, const TrainingData& data,
                                              const LossRequirements& requirements, std::uint64_t seed) {
  const auto model = recipe.section("model");
  const auto training = recipe.section("training");
  const auto& model_path = models.model_path();
  std::vector<CacheKeyPart> key;

  ContentHash weights;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(model_path))
    if (const auto name = entry.path().filename().string();
        name == "config.json" || entry.path().extension() == ".safetensors" || name == "model.safetensors.index.json")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) weights.add_file(f);
  std::string about = fmt::format("{}, {}", model_path.string(), training.get_string("precision"));
  weights.add(training.get_string("precision")).add(model.get_string("quantization"));
  if (model.get_string("quantization") != "none") about += ", " + model.get_string("quantization");
  if (models.lora() && recipe.section("lora").has("init_adapter")) {
    const auto adapter = recipe.section("lora").get_path("init_adapter");
    weights.add_file(adapter / "adapter_config.json").add_file(adapter / "adapter_model.safetensors");
    about += ", adapter " + adapter.string();
  }
  key.push_back({"model", weights.hex(), about});

  // The [data] section's values and the files its path keys name; the seed picks the eval split.
  ContentHash data_hash;
  std::vector<std::string> shown;
  for (const auto& [name, entry] : recipe.sections.at("data").entries) {
    const auto text = to_toml_text(entry.value);
    data_hash.add(name).add(text);
    if (entry.spec.type == OptionType::path && std::holds_alternative<std::string>(entry.value) &&
        fs::is_regular_file(std::get<std::string>(entry.value)))
      data_hash.add_file(std::get<std::string>(entry.value));
    if (name == "format" || name == "path") shown.push_back(fmt::format("{} = {}", name, text));
  }
  data_hash.add(static_cast<std::int64_t>(seed));
  key.push_back({"data", data_hash.hex(), fmt::format("[data] {}, seed {}", fmt::join(shown, ", "), seed)});

  ContentHash tokenization;
  const auto tokenizer_dir = tokenizer.origin().parent_path();
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"})
    tokenization.add_file(tokenizer_dir / file);
  std::string limits;
  for (const char* name : {"max_length", "max_prompt_length", "max_completion_length", "truncation_mode"}) {
    // The entry, not has(): a default and the same value written out are one setting.
    const auto& value = recipe.sections.at("training").entries.at(name).value;
    const auto text = std::holds_alternative<std::monostate>(value) ? std::string("unset") : to_toml_text(value);
    tokenization.add(std::string(name)).add(text);
    limits += fmt::format(", {} {}", name, text);
  }
  key.push_back({"tokenization", tokenization.hex(), tokenizer_dir.string() + limits});

  ContentHash scoring;
  scoring.add(static_cast<std::int64_t>(requirements.reduction)).add(static_cast<std::int64_t>(requirements.examples));
  key.push_back({"scoring", scoring.hex(),
                 fmt::format("{} log-probs", requirements.reduction == LogProbReduction::mean ? "mean" : "summed")});

  key.push_back({"examples", examples_hash(data),
                 fmt::format("{} train and {} eval examples as tokenized", data.train.size(), data.eval.size())});
  return key;
}

}  // namespace alignkit
