// Commands that run a model: `alignkit score`.
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/logprobs.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/safetensors.hpp>

#include "../host/recipe_validator.hpp"
#include "command_line.hpp"
#include "commands.hpp"

namespace alignkit::cli {

namespace fs = std::filesystem;

namespace {

struct LoadedModel {
  std::shared_ptr<ModelLoader> loader;
  std::shared_ptr<CausalLM> model;
};

// A model loader plugin and the model it loads, selected as a recipe's [model] section would be.
LoadedModel load_model(const std::string& loader_name, const fs::path& dir, PluginRegistry& registry) {
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
  auto model = call_plugin(*plugin, "to load the model", [&] { return loader->load(path, LoadOptions{}); });
  if (!model) throw DiagnosticError(plugin_failure(*plugin, "to load the model", "the loader returned no model"));
  model->eval();
  return {loader, PluginRegistry::keep_loaded(*plugin, std::move(model))};
}

struct ScoreExample {
  std::vector<std::int64_t> prompt, chosen, rejected;
  nlohmann::json id;  // passed through when the input has one
};

std::vector<std::int64_t> id_list(const nlohmann::json& line, const char* key, const std::string& file, int number) {
  auto fail = [&](std::string message) {
    Diagnostic d;
    d.where = SourceLocation{file, number, 0};
    d.message = fmt::format("'{}' {}", key, message);
    throw DiagnosticError(std::move(d));
  };
  if (!line.contains(key)) fail("is missing");
  const auto& v = line.at(key);
  if (!v.is_array()) fail("must be a list of token ids");
  std::vector<std::int64_t> ids;
  for (const auto& id : v) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0) fail(fmt::format("has {}, not a token id", id.dump()));
    ids.push_back(id.get<std::int64_t>());
  }
  return ids;
}

std::vector<ScoreExample> read_examples(const fs::path& path, std::int64_t vocab_size) {
  std::ifstream in(path);
  if (!in) throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), 0, 0}, "cannot be read"});
  std::vector<ScoreExample> examples;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json line;
    try {
      line = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), number, 0},
                                       fmt::format("not a JSON object: {}", e.what())});
    }
    if (!line.is_object())
      throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), number, 0}, "not a JSON object"});
    if (line.contains("prompt") || line.contains("chosen") || line.contains("rejected")) {
      Diagnostic d{Severity::error, SourceLocation{path.string(), number, 0},
                   "text fields (prompt, chosen, rejected) need a tokenizer, which this build does not have yet"};
      d.help = "give token ids as prompt_ids, chosen_ids and rejected_ids";
      throw DiagnosticError(std::move(d));
    }
    ScoreExample example{id_list(line, "prompt_ids", path.string(), number),
                         id_list(line, "chosen_ids", path.string(), number),
                         id_list(line, "rejected_ids", path.string(), number), line.value("id", nlohmann::json())};
    if (example.prompt.empty() || example.chosen.empty() || example.rejected.empty())
      throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), number, 0},
                                       "prompt_ids, chosen_ids and rejected_ids must not be empty (the first "
                                       "completion token is predicted from the prompt)"});
    for (const auto* ids : {&example.prompt, &example.chosen, &example.rejected})
      for (auto id : *ids)
        if (id >= vocab_size)
          throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), number, 0},
                                           fmt::format("token id {} is outside the model's vocabulary of {}", id,
                                                       vocab_size)});
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace

int run_score(const Args& args) {
  CommandLine command_line(
      "alignkit score --model DIR --data IN.jsonl --out OUT.jsonl [--loader hf] [--batch-size N]\n\n"
      "Each input line holds prompt_ids, chosen_ids and rejected_ids (lists of token ids). Each output\n"
      "line holds, for chosen and rejected: <side>_logps (summed log-prob of the completion tokens, as\n"
      "TRL's concatenated_forward), <side>_logps_mean (per token), <side>_tokens and\n"
      "<side>_mean_logits (mean logit over completion positions and the vocabulary).",
      CommandLine::no_recipe);
  command_line.add()("model", po::value<std::string>()->required(), "Model directory")(
      "data", po::value<std::string>()->required(), "Input JSONL")("out", po::value<std::string>()->required(),
                                                                   "Output JSONL (written atomically)")(
      "loader", po::value<std::string>()->default_value("hf"), "Model-loader plugin")(
      "batch-size", po::value<int>()->default_value(8), "Examples per forward pass");
  if (!command_line.parse(args)) return kOk;
  const int batch_size = command_line.get<int>("batch-size");
  if (batch_size < 1) throw UsageError("--batch-size must be at least 1");

  const fs::path out_path = command_line.get<std::string>("out");
  const fs::path out_folder = out_path.parent_path().empty() ? fs::path(".") : out_path.parent_path();
  if (!fs::is_directory(out_folder))
    throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{out_folder.string(), 0, 0},
                                     "the folder for --out does not exist"});
  PluginRegistry registry;
  auto model = load_model(command_line.get<std::string>("loader"), command_line.get<std::string>("model"), registry).model;
  if (model->output_weight().size(0) != model->description().vocab_size)
    throw DiagnosticError(make_error(
        fmt::format("{}: score needs a causal LM, but this model's head has {} outputs, not the vocabulary",
                    command_line.get<std::string>("model"), model->output_weight().size(0)),
        "a ...ForSequenceClassification model scores sequences, not tokens"));
  const auto examples = read_examples(command_line.get<std::string>("data"), model->description().vocab_size);

  torch::NoGradGuard no_grad;
  std::string out;
  for (std::size_t start = 0; start < examples.size(); start += static_cast<std::size_t>(batch_size)) {
    const auto end = std::min(examples.size(), start + static_cast<std::size_t>(batch_size));
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (const char* side : {"chosen", "rejected"})
      for (auto i = start; i < end; ++i) {
        prompts.push_back(examples[i].prompt);
        completions.push_back(std::string(side) == "chosen" ? examples[i].chosen : examples[i].rejected);
      }
    // Chosen and rejected in one forward, as TRL's concatenated_forward does.
    const auto scores = score_completions(*model, make_completion_batch(prompts, completions));  // may throw c10::Error,
    // whose type lives in LibTorch, not in the plugin
    const auto n = static_cast<std::int64_t>(end - start);
    for (std::int64_t i = 0; i < n; ++i) {
      nlohmann::json line;
      if (!examples[start + static_cast<std::size_t>(i)].id.is_null()) line["id"] = examples[start + static_cast<std::size_t>(i)].id;
      for (const auto& [side, row] : {std::pair{"chosen", i}, std::pair{"rejected", n + i}}) {
        const double logps = scores.logps[row].item<double>();
        const double tokens = scores.token_counts[row].item<double>();
        line[fmt::format("{}_logps", side)] = logps;
        line[fmt::format("{}_logps_mean", side)] = logps / tokens;
        line[fmt::format("{}_tokens", side)] = static_cast<std::int64_t>(tokens);
        line[fmt::format("{}_mean_logits", side)] = scores.mean_logits[row].item<double>();
      }
      out += line.dump() + "\n";
    }
    std::cerr << fmt::format("scored {}/{} examples\n", end, examples.size());
  }
  write_file_atomically(out_path, out);
  return kOk;
}

int run_merge(const Args& args) {
  CommandLine command_line(
      "alignkit merge --model DIR --adapter DIR --out DIR [--loader hf]\n\n"
      "Folds a PEFT LoRA adapter into the model's weights and writes a plain model directory\n"
      "(config.json + model.safetensors) that loads without the adapter.",
      CommandLine::no_recipe);
  command_line.add()("model", po::value<std::string>()->required(), "Base model directory")(
      "adapter", po::value<std::string>()->required(), "PEFT adapter directory")(
      "out", po::value<std::string>()->required(), "Output model directory")(
      "loader", po::value<std::string>()->default_value("hf"), "Model-loader plugin");
  if (!command_line.parse(args)) return kOk;
  const fs::path out = command_line.get<std::string>("out");
  const fs::path model_dir = command_line.get<std::string>("model");
  std::error_code ec;
  if (fs::exists(out, ec) && fs::equivalent(out, model_dir, ec))
    throw UsageError("--out must not be the base model's own directory");
  PluginRegistry registry;
  auto [loader, model] = load_model(command_line.get<std::string>("loader"), model_dir, registry);
  const auto config = load_peft_adapter(*model, command_line.get<std::string>("adapter"));
  merge_lora(*model);
  const auto* plugin = registry.find(PluginKind::model_loader, command_line.get<std::string>("loader"));
  call_plugin(*plugin, "to save the merged model", [&] { loader->save(*model, out); });
  // The tokenizer travels with the model, so the merged directory is usable on its own.
  for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"})
    if (fs::exists(model_dir / file)) fs::copy_file(model_dir / file, out / file, fs::copy_options::overwrite_existing);
  std::cerr << fmt::format("merged a rank-{} adapter into {}\n", config.r, out.string());
  return kOk;
}

namespace {

// Llama-shaped presets: tiny for tests and demos, the rest sized like well-known models (the
// large ones are for planning: --config-only writes no weights).
struct Preset {
  const char* name;
  std::int64_t vocab, hidden, intermediate, layers, heads, kv_heads;
  bool tied;
};
constexpr Preset kPresets[] = {
    {"tiny", 300, 64, 128, 2, 4, 2, false},
    {"small-125m", 32000, 768, 2048, 12, 12, 12, true},   // roughly SmolLM-135M-shaped
    {"1b", 128256, 2048, 8192, 16, 32, 8, true},         // Llama-3.2-1B-shaped
    {"8b", 128256, 4096, 14336, 32, 32, 8, false},       // Llama-3.1-8B-shaped
    {"70b", 128256, 8192, 28672, 80, 64, 8, false},      // Llama-3.1-70B-shaped
};

}  // namespace

int run_init_model(const Args& args) {
  std::string names;
  for (const auto& p : kPresets) names += std::string(names.empty() ? "" : ", ") + p.name;
  CommandLine command_line(
      "alignkit init-model --preset NAME --out DIR [--seed N] [--config-only]\n\n"
      "Writes a randomly initialised LlamaForCausalLM in Hugging Face format (config.json +\n"
      "model.safetensors; weights ~ N(0, 0.02), norms 1, as transformers initialises), so demos and\n"
      "tests never need a download. Presets: " + names + ".",
      CommandLine::no_recipe);
  command_line.add()("preset", po::value<std::string>()->required(), "Model size")(
      "out", po::value<std::string>()->required(), "Output model directory")(
      "seed", po::value<std::int64_t>()->default_value(0), "Seed of the random weights")(
      "config-only", "Write config.json only (for planning large models)");
  if (!command_line.parse(args)) return kOk;
  const std::string preset_name = command_line.get<std::string>("preset");
  const Preset* preset = nullptr;
  for (const auto& p : kPresets)
    if (preset_name == p.name) preset = &p;
  if (!preset) throw UsageError(fmt::format("unknown preset '{}'; presets: {}", preset_name, names));
  const fs::path out = command_line.get<std::string>("out");
  fs::create_directories(out);
  const nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                                 {"model_type", "llama"},
                                 {"vocab_size", preset->vocab},
                                 {"hidden_size", preset->hidden},
                                 {"intermediate_size", preset->intermediate},
                                 {"num_hidden_layers", preset->layers},
                                 {"num_attention_heads", preset->heads},
                                 {"num_key_value_heads", preset->kv_heads},
                                 {"head_dim", preset->hidden / preset->heads},
                                 {"max_position_embeddings", 2048},
                                 {"rms_norm_eps", 1e-5},
                                 {"rope_theta", 10000.0},
                                 {"hidden_act", "silu"},
                                 {"tie_word_embeddings", preset->tied},
                                 {"initializer_range", 0.02},
                                 {"bos_token_id", 1},
                                 {"eos_token_id", 2},
                                 {"torch_dtype", "float32"}};
  write_file_atomically(out / "config.json", config.dump(2) + "\n");
  if (command_line.has("config-only")) return kOk;

  torch::manual_seed(static_cast<std::uint64_t>(command_line.get<std::int64_t>("seed")));
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  const std::int64_t h = preset->hidden, d = preset->hidden / preset->heads;
  auto normal = [](std::vector<std::int64_t> shape) { return torch::randn(shape) * 0.02; };
  tensors.emplace_back("model.embed_tokens.weight", normal({preset->vocab, h}));
  for (std::int64_t i = 0; i < preset->layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    tensors.emplace_back(p + "self_attn.q_proj.weight", normal({preset->heads * d, h}));
    tensors.emplace_back(p + "self_attn.k_proj.weight", normal({preset->kv_heads * d, h}));
    tensors.emplace_back(p + "self_attn.v_proj.weight", normal({preset->kv_heads * d, h}));
    tensors.emplace_back(p + "self_attn.o_proj.weight", normal({h, preset->heads * d}));
    tensors.emplace_back(p + "mlp.gate_proj.weight", normal({preset->intermediate, h}));
    tensors.emplace_back(p + "mlp.up_proj.weight", normal({preset->intermediate, h}));
    tensors.emplace_back(p + "mlp.down_proj.weight", normal({h, preset->intermediate}));
    tensors.emplace_back(p + "input_layernorm.weight", torch::ones({h}));
    tensors.emplace_back(p + "post_attention_layernorm.weight", torch::ones({h}));
  }
  tensors.emplace_back("model.norm.weight", torch::ones({h}));
  if (!preset->tied) tensors.emplace_back("lm_head.weight", normal({preset->vocab, h}));
  safetensors::save(out / "model.safetensors", tensors, {{"format", "pt"}});
  std::cerr << fmt::format("wrote a {} model to {}\n", preset->name, out.string());
  return kOk;
}

}  // namespace alignkit::cli
