// Commands that run a model: `alignkit score`.
#include <charconv>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/json_file.hpp>
#include <alignkit/logprobs.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/safetensors.hpp>
#include <alignkit/tokenizer.hpp>
#include <alignkit/value_head.hpp>

#include "../host/recipe_validator.hpp"
#include <alignkit/did_you_mean.hpp>
#include "../host/training_data.hpp"
#include "command_line.hpp"
#include "commands.hpp"
#include "model_loading.hpp"
#include "progress.hpp"
#include "text/tokenizer/byte_level.hpp"

namespace alignkit::cli {

namespace fs = std::filesystem;

namespace {

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

// reward_rows: a reward model's rows (whole prompt + completion rows in `chosen`/`rejected`, the
// prompt left empty), text tokenized as TRL's RewardTrainer does.
std::vector<ScoreExample> read_examples(const fs::path& path, std::int64_t vocab_size, const Tokenizer* tokenizer,
                                        bool reward_rows) {
  std::ifstream in(path);
  if (!in) throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), 0, 0}, "cannot be read"});
  std::vector<ScoreExample> examples;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto line = parse_json(text, {path.string(), number});
    if (!line.is_object())
      throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), number, 0}, "not a JSON object"});
    ScoreExample example;
    example.id = line.value("id", nlohmann::json());
    if (line.contains("prompt") || line.contains("chosen") || line.contains("rejected")) {
      if (!tokenizer) {
        Diagnostic d{Severity::error, SourceLocation{path.string(), number, 0},
                     "text fields (prompt, chosen, rejected) need a tokenizer, and the model directory has none"};
        d.help = "give --tokenizer DIR, or token ids as prompt_ids, chosen_ids and rejected_ids";
        throw DiagnosticError(std::move(d));
      }
      // As TRL's DPOTrainer.tokenize_row for a decoder-only model: no special tokens on the
      // prompt, EOS appended to each completion.
      auto text = [&](const char* key) {
        if (!line.contains(key) || !line.at(key).is_string())
          throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), number, 0},
                                           fmt::format("'{}' must be a string", key)});
        return line.at(key).get<std::string>();
      };
      if (reward_rows) {
        example.chosen = reward_row_ids(*tokenizer, text("prompt"), text("chosen"));
        example.rejected = reward_row_ids(*tokenizer, text("prompt"), text("rejected"));
      } else {
        example.prompt = tokenizer->encode(text("prompt"), false);
        example.chosen = tokenizer->encode(text("chosen"), false);
        example.rejected = tokenizer->encode(text("rejected"), false);
        if (const auto eos = tokenizer->eos_token_id()) example.chosen.push_back(*eos), example.rejected.push_back(*eos);
      }
    } else {
      example.prompt = id_list(line, "prompt_ids", path.string(), number);
      example.chosen = id_list(line, "chosen_ids", path.string(), number);
      example.rejected = id_list(line, "rejected_ids", path.string(), number);
      if (reward_rows) {
        for (auto* side : {&example.chosen, &example.rejected}) side->insert(side->begin(), example.prompt.begin(), example.prompt.end());
        example.prompt.clear();
      }
    }
    if ((example.prompt.empty() && !reward_rows) || example.chosen.empty() || example.rejected.empty())
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
      "alignkit score --model DIR --data IN.jsonl --out OUT.jsonl [--tokenizer DIR] [--loader hf] [--batch-size N]\n\n"
      "Each input line holds prompt, chosen and rejected as text (tokenized as TRL's DPOTrainer does for a\n"
      "decoder-only model: no special tokens on the prompt, EOS after each completion) or prompt_ids,\n"
      "chosen_ids and rejected_ids (lists of token ids, used as they are). Each output\n"
      "line holds, for chosen and rejected: <side>_logps (summed log-prob of the completion tokens, as\n"
      "TRL's concatenated_forward), <side>_logps_mean (per token), <side>_tokens and\n"
      "<side>_mean_logits (mean logit over completion positions and the vocabulary).\n\n"
      "A reward model (a ...ForSequenceClassification directory with one output, as `alignkit train`\n"
      "saves the reward method's model) gives <side>_reward instead: its score of prompt + completion\n"
      "at the last token, as TRL's RewardTrainer computes rewards_chosen / rewards_rejected.",
      CommandLine::no_recipe);
  command_line.add()("model", po::value<std::string>()->required(), "Model directory")(
      "data", po::value<std::string>()->required(), "Input JSONL")("out", po::value<std::string>()->required(),
                                                                   "Output JSONL (written atomically)")(
      "loader", po::value<std::string>()->default_value("hf"), "Model-loader plugin")(
      "tokenizer", po::value<std::string>(), "Tokenizer directory for text fields (default: the model's)")(
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
  const auto outputs = model->output_weight().size(0);
  const bool reward_model = outputs == 1;
  if (outputs != model->description().vocab_size && !reward_model)
    throw DiagnosticError(make_error(
        fmt::format("{}: score needs a causal LM or a one-output reward model, but this model's head has {} outputs",
                    command_line.get<std::string>("model"), outputs),
        "a classifier with several labels has no single reward to report"));
  const fs::path tokenizer_dir =
      command_line.has("tokenizer") ? fs::path(command_line.get<std::string>("tokenizer")) : fs::path(command_line.get<std::string>("model"));
  std::optional<Tokenizer> tokenizer;
  if (command_line.has("tokenizer") || fs::exists(tokenizer_dir / "tokenizer.json"))
    tokenizer = Tokenizer::from_directory(tokenizer_dir);
  const auto examples = read_examples(command_line.get<std::string>("data"), model->description().vocab_size,
                                      tokenizer ? &*tokenizer : nullptr, reward_model);
  // transformers pools a classifier's score at the last token that is not config.pad_token_id.
  std::optional<std::int64_t> pad_token_id;
  if (reward_model) {
    const auto config = read_json_file(fs::path(command_line.get<std::string>("model")) / "config.json");
    if (config.is_object() && config.contains("pad_token_id") && config["pad_token_id"].is_number_integer())
      pad_token_id = config["pad_token_id"].get<std::int64_t>();
  }

  torch::NoGradGuard no_grad;
  std::string out;
  ProgressLine progress(std::cerr, stderr_is_terminal());
  for (std::size_t start = 0; start < examples.size(); start += static_cast<std::size_t>(batch_size)) {
    const auto end = std::min(examples.size(), start + static_cast<std::size_t>(batch_size));
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (const char* side : {"chosen", "rejected"})
      for (auto i = start; i < end; ++i) {
        prompts.push_back(examples[i].prompt);
        completions.push_back(std::string(side) == "chosen" ? examples[i].chosen : examples[i].rejected);
      }
    // Chosen and rejected in one forward, as TRL's concatenated_forward does (may throw
    // c10::Error, whose type lives in LibTorch, not in the plugin).
    const auto rows = make_completion_batch(prompts, completions, pad_token_id.value_or(0));
    const auto n = static_cast<std::int64_t>(end - start);
    if (reward_model) {
      const auto rewards = sequence_scores(*model, rows.input_ids, rows.attention_mask, pad_token_id).squeeze(-1);
      for (std::int64_t i = 0; i < n; ++i) {
        nlohmann::json line;
        if (!examples[start + static_cast<std::size_t>(i)].id.is_null()) line["id"] = examples[start + static_cast<std::size_t>(i)].id;
        for (const auto& [side, row] : {std::pair{"chosen", i}, std::pair{"rejected", n + i}}) {
          line[fmt::format("{}_reward", side)] = rewards[row].item<double>();
          line[fmt::format("{}_tokens", side)] = rows.completion_mask[row].sum().item<std::int64_t>();
        }
        out += line.dump() + "\n";
      }
      progress.update(fmt::format("scored {}/{} examples", end, examples.size()), end == examples.size());
      continue;
    }
    const auto scores = score_completions(*model, rows);
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
    progress.update(fmt::format("scored {}/{} examples", end, examples.size()), end == examples.size());
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
  // A SEQ_CLS adapter (a reward model's) goes onto the base loaded as a one-output classifier,
  // as PEFT's AutoPeftModelForSequenceClassification loads it.
  LoadOptions options;
  {
    const auto adapter_config = fs::path(command_line.get<std::string>("adapter")) / "adapter_config.json";
    std::error_code ec;  // a missing file is load_peft_adapter's to report, below
    const auto json = fs::is_regular_file(adapter_config, ec) ? read_json_file(adapter_config) : nlohmann::json();
    if (json.is_object() && json.value("task_type", nlohmann::json()) == "SEQ_CLS") options.classification_labels = 1;
  }
  PluginRegistry registry;
  auto [loader, model] = load_model(command_line.get<std::string>("loader"), model_dir, registry, options);
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

// The byte-level BPE tokenizer init-model writes beside the weights (Llama 3's layout, small):
// ids 0-2 pad/BOS/EOS, 3-258 the 256 bytes in GPT-2's byte alphabet, 259-260 ChatML's turn
// markers, then merges of frequent English pairs while the vocabulary has room. It is a real
// tokenizer.json, so every path (encode, decode, chat template, datasets) runs on a fresh model.
constexpr const char* kMerges[] = {
    "Ġ t", "h e", "i n", "Ġ a", "e r", "o n", "Ġt he", "r e", "a t", "o r", "e n", "Ġ s", "Ġ w", "Ġ o",
    "i s", "i t", "e s", "Ġ c", "a n", "Ġ b", "Ġ f", "Ġ p", "o u", "a l", "in g", "Ġ m", "e d", "Ġ i",
    "Ġa n", "Ġan d", "Ġ h", "Ġ d", "l e", "a r", "Ġo f", "Ġt o", "Ġi n", "s t", "Ġ l", "Ġ n"};
constexpr const char* kChatTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

void write_byte_level_tokenizer(const fs::path& out, std::int64_t vocab_size) {
  const std::vector<std::string> specials = {"<|pad|>", "<|begin_of_text|>", "<|end_of_text|>"};
  const std::vector<std::string> chat = {"<|im_start|>", "<|im_end|>"};
  nlohmann::json vocab = nlohmann::json::object(), added = nlohmann::json::array(), merges = nlohmann::json::array();
  std::int64_t next = 0;
  auto add_special = [&](const std::string& content) {
    vocab[content] = next;
    added.push_back({{"id", next++}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", true}});
  };
  for (const auto& s : specials) add_special(s);
  const auto& alphabet = tokenizer::byte_level_alphabet();
  for (int byte = 0; byte < 256; ++byte) vocab[alphabet.utf8_of_byte[byte]] = next++;
  for (const auto& s : chat) add_special(s);
  for (const char* merge : kMerges) {
    if (next >= vocab_size) break;
    const std::string pair = merge;
    const auto space = pair.find(' ');
    vocab[pair.substr(0, space) + pair.substr(space + 1)] = next++;
    merges.push_back(pair);
  }
  const nlohmann::json bos = {{"SpecialToken", {{"id", specials[1]}, {"type_id", 0}}}};
  const nlohmann::json tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", {bos, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, bos, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{specials[1], {{"id", specials[1]}, {"ids", {1}}, {"tokens", {specials[1]}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merges}}}};
  write_file_atomically(out / "tokenizer.json", tokenizer.dump(2) + "\n");
  const nlohmann::json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                 {"bos_token", specials[1]},
                                 {"eos_token", specials[2]},
                                 {"pad_token", specials[0]},
                                 {"model_max_length", 2048},
                                 {"clean_up_tokenization_spaces", false},
                                 {"chat_template", kChatTemplate}};
  write_file_atomically(out / "tokenizer_config.json", config.dump(2) + "\n");
  // A chat turn ends with <|im_end|>, plain text with EOS: generation stops at either.
  const nlohmann::json generation = {{"bos_token_id", 1}, {"eos_token_id", {2, vocab["<|im_end|>"]}}, {"pad_token_id", 0}};
  write_file_atomically(out / "generation_config.json", generation.dump(2) + "\n");
}

// The config.json sizes --shape may override, with the preset field each sets.
constexpr std::pair<const char*, std::int64_t Preset::*> kShapeKeys[] = {
    {"vocab_size", &Preset::vocab},           {"hidden_size", &Preset::hidden},
    {"intermediate_size", &Preset::intermediate}, {"num_hidden_layers", &Preset::layers},
    {"num_attention_heads", &Preset::heads},  {"num_key_value_heads", &Preset::kv_heads}};

void apply_shape(Preset& preset, const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string key = assignment.substr(0, eq);
  std::vector<std::string> keys;
  for (const auto& [name, field] : kShapeKeys) {
    keys.push_back(name);
    if (key != name) continue;
    std::int64_t value = 0;
    const auto text = eq == std::string::npos ? std::string() : assignment.substr(eq + 1);
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || value <= 0)
      throw UsageError(fmt::format("--shape {}: expected {}=N with N a positive integer", assignment, key));
    preset.*field = value;
    return;
  }
  throw UsageError(fmt::format("--shape {}: unknown size '{}'; {}; sizes: {}", assignment, key, suggestion(key, keys),
                               fmt::join(keys, ", ")));
}

}  // namespace

int run_init_model(const Args& args) {
  std::string names;
  for (const auto& p : kPresets) names += std::string(names.empty() ? "" : ", ") + p.name;
  std::string shape_keys;
  for (const auto& [name, field] : kShapeKeys) shape_keys += std::string(shape_keys.empty() ? "" : ", ") + name;
  CommandLine command_line(
      "alignkit init-model --preset NAME --out DIR [--shape KEY=N ...] [--seed N] [--config-only]\n\n"
      "Writes a randomly initialised LlamaForCausalLM in Hugging Face format (config.json +\n"
      "model.safetensors; weights ~ N(0, 0.02), norms 1, as transformers initialises) with a small\n"
      "byte-level BPE tokenizer (tokenizer.json, tokenizer_config.json with a ChatML template,\n"
      "generation_config.json), so demos and tests never need a download. Presets: " + names + ".\n"
      "--shape overrides one of the preset's config.json sizes: " + shape_keys + ".",
      CommandLine::no_recipe);
  command_line.add()("preset", po::value<std::string>()->required(), "Model size")(
      "out", po::value<std::string>()->required(), "Output model directory")(
      "shape", po::value<Args>()->composing(), "KEY=N: override a size of the preset (repeatable)")(
      "seed", po::value<std::int64_t>()->default_value(0), "Seed of the random weights")(
      "config-only", "Write config.json only (for planning large models)");
  if (!command_line.parse(args)) return kOk;
  const std::string preset_name = command_line.get<std::string>("preset");
  const Preset* found = nullptr;
  for (const auto& p : kPresets)
    if (preset_name == p.name) found = &p;
  if (!found) throw UsageError(fmt::format("unknown preset '{}'; presets: {}", preset_name, names));
  Preset shaped = *found;
  if (command_line.has("shape"))
    for (const auto& assignment : command_line.get<Args>("shape")) apply_shape(shaped, assignment);
  if (shaped.hidden % shaped.heads != 0 || shaped.heads % shaped.kv_heads != 0)
    throw UsageError(fmt::format("hidden_size {} must be a multiple of num_attention_heads {}, and that of "
                                 "num_key_value_heads {}",
                                 shaped.hidden, shaped.heads, shaped.kv_heads));
  const Preset* preset = &shaped;
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
  write_byte_level_tokenizer(out, preset->vocab);
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
