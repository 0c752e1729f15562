// `alignkit generate`: text (or token ids) in, completions out, through the KV-cached generator.
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/generation.hpp>
#include <alignkit/json_file.hpp>
#include <alignkit/tokenizer.hpp>

#include "command_line.hpp"
#include "commands.hpp"
#include "model_loading.hpp"

namespace alignkit::cli {

namespace fs = std::filesystem;

namespace {

std::vector<std::int64_t> parse_ids(const std::string& text) {
  std::vector<std::int64_t> ids;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t used = 0;
    try {
      ids.push_back(std::stoll(text.substr(pos), &used));
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--prompt-ids '{}': expected comma-separated token ids", text));
    }
    pos += used;
    if (pos < text.size() && text[pos] != ',')
      throw UsageError(fmt::format("--prompt-ids '{}': expected comma-separated token ids", text));
    ++pos;
  }
  return ids;
}

// config.json's max_position_embeddings in `model_dir` (every Hugging Face config has it); nullopt
// where the folder has no config.json or the key is not a positive integer.
std::optional<std::int64_t> context_length(const fs::path& model_dir) {
  const fs::path file = model_dir / "config.json";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  const auto json = read_json_file(file);
  const auto it = json.find("max_position_embeddings");
  if (it == json.end() || !it->is_number_integer() || it->get<std::int64_t>() <= 0) return std::nullopt;
  return it->get<std::int64_t>();
}

}  // namespace

int run_generate(const Args& args) {
  CommandLine command_line(
      "alignkit generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3)... [options]\n\n"
      "Generates a completion for each prompt (batched, left-padded, with a KV cache). Defaults come\n"
      "from the model's generation_config.json, then transformers' (greedy; when sampling,\n"
      "temperature 1, top-k 50, top-p 1). Text prompts are tokenized with the model's tokenizer\n"
      "(tokenizer.json in DIR, or --tokenizer) without special tokens unless --add-special-tokens.",
      CommandLine::no_recipe);
  command_line.add()("model", po::value<std::string>()->required(), "Model directory")(
      "tokenizer", po::value<std::string>(), "Tokenizer directory (default: the model's)")(
      "prompt", po::value<Args>()->composing(), "A prompt (repeatable)")(
      "prompt-ids", po::value<Args>()->composing(), "A prompt as token ids (repeatable)")(
      "add-special-tokens", "Let the tokenizer add its special tokens (e.g. BOS) to text prompts")(
      "max-new-tokens", po::value<std::int64_t>(), "Tokens to generate at most")(
      "do-sample", "Sample instead of greedy decoding")(
      "greedy", "Greedy decoding even when generation_config.json says do_sample")("temperature", po::value<double>(), "Sampling temperature")(
      "top-k", po::value<std::int64_t>(), "Keep the k most likely tokens (0: off)")(
      "top-p", po::value<double>(), "Keep the smallest set with this probability mass (1: off)")(
      "seed", po::value<std::uint64_t>()->default_value(0), "Seed of the sampler")(
      "stop", po::value<Args>()->composing(), "Stop a completion once its text contains this (repeatable)")(
      "dtype", po::value<std::string>()->default_value("float32"), "float32, bfloat16 or float16")(
      "loader", po::value<std::string>()->default_value("hf"), "Model-loader plugin")(
      "json", "One JSON object per prompt: prompt, completion, completion_ids, finish_reason");
  if (!command_line.parse(args)) return kOk;
  const Args texts = command_line.has("prompt") ? command_line.get<Args>("prompt") : Args{};
  const Args id_lists = command_line.has("prompt-ids") ? command_line.get<Args>("prompt-ids") : Args{};
  if (texts.empty() && id_lists.empty()) throw UsageError("give at least one --prompt or --prompt-ids");

  const fs::path model_dir = command_line.get<std::string>("model");
  const fs::path tokenizer_dir = command_line.has("tokenizer") ? fs::path(command_line.get<std::string>("tokenizer")) : model_dir;
  std::optional<Tokenizer> tokenizer;
  if (fs::exists(tokenizer_dir / "tokenizer.json")) tokenizer = Tokenizer::from_directory(tokenizer_dir);
  else if (!texts.empty() || command_line.has("stop"))
    throw_file_error((tokenizer_dir / "tokenizer.json").string(), "does not exist; text prompts and --stop need a tokenizer",
                     "give --tokenizer DIR, or token ids with --prompt-ids");

  GenerationConfig config;
  read_generation_config(model_dir / "generation_config.json", config);
  if (tokenizer && config.eos_token_ids.empty() && tokenizer->eos_token_id()) config.eos_token_ids = {*tokenizer->eos_token_id()};
  if (tokenizer && tokenizer->pad_token_id()) config.pad_token_id = *tokenizer->pad_token_id();
  if (command_line.has("max-new-tokens")) config.max_new_tokens = command_line.get<std::int64_t>("max-new-tokens");
  if (command_line.has("do-sample") && command_line.has("greedy")) throw UsageError("give --do-sample or --greedy, not both");
  if (command_line.has("do-sample")) config.do_sample = true;
  if (command_line.has("greedy")) config.do_sample = false;
  if (command_line.has("temperature")) config.temperature = command_line.get<double>("temperature");
  if (command_line.has("top-k")) config.top_k = command_line.get<std::int64_t>("top-k");
  if (command_line.has("top-p")) config.top_p = command_line.get<double>("top-p");
  if (command_line.has("stop")) config.stop_strings = command_line.get<Args>("stop");
  config.seed = command_line.get<std::uint64_t>("seed");
  try {
    config.check();
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }

  std::vector<std::vector<std::int64_t>> prompts;
  std::vector<std::string> shown;  // each prompt as given, for the output
  for (const auto& text : texts) {
    prompts.push_back(tokenizer->encode(text, command_line.has("add-special-tokens")));
    shown.push_back(text);
    if (prompts.back().empty()) throw UsageError(fmt::format("--prompt '{}' has no tokens", text));
  }
  for (const auto& list : id_lists) {
    prompts.push_back(parse_ids(list));
    shown.push_back(list);
    if (prompts.back().empty()) throw UsageError("--prompt-ids needs at least one id");
  }

  // The KV cache holds every position; past the model's context it would be a useless (and, for a
  // careless --max-new-tokens, unallocatable) buffer.
  if (const auto context = context_length(model_dir)) {
    std::int64_t longest = 0;
    for (const auto& p : prompts) longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(p.size()));
    if (config.max_new_tokens > *context - longest)
      throw UsageError(fmt::format(
          "{} {}: the longest prompt ({} tokens) and the new tokens exceed the model's context of {} positions "
          "(max_position_embeddings in {}); at most {} new tokens fit",
          command_line.has("max-new-tokens") ? "--max-new-tokens" : "max_new_tokens (from generation_config.json or the default)",
          config.max_new_tokens, longest, *context, (model_dir / "config.json").string(),
          std::max<std::int64_t>(0, *context - longest)));
  }

  PluginRegistry registry;
  LoadOptions options;
  options.dtype = parse_dtype(command_line.get<std::string>("dtype"));
  auto model = load_model(command_line.get<std::string>("loader"), model_dir, registry, options).model;
  const auto vocab = model->description().vocab_size;
  for (const auto& p : prompts)
    for (auto id : p)
      if (id < 0 || id >= vocab)
        throw UsageError(fmt::format("token id {} is outside the model's vocabulary of {}", id, vocab));

  Detokenize detokenize;
  if (tokenizer) detokenize = [&](const std::vector<std::int64_t>& ids) { return tokenizer->decode(ids, true); };
  const auto generation = generate(*model, prompts, config, detokenize);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto& ids = generation.tokens[i];
    const std::string completion = tokenizer ? tokenizer->decode(ids, true) : "";
    if (command_line.has("json")) {
      nlohmann::json line = {{"prompt", shown[i]},
                             {"prompt_ids", prompts[i]},
                             {"completion_ids", ids},
                             {"finish_reason", to_string(generation.finish_reasons[i])}};
      if (tokenizer) line["completion"] = completion;
      std::cout << line.dump() << "\n";
    } else if (tokenizer) {
      std::cout << completion << "\n";
    } else {
      std::cout << fmt::format("{}\n", fmt::join(ids, ","));
    }
  }
  return kOk;
}

}  // namespace alignkit::cli
