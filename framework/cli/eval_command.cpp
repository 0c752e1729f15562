// `alignkit eval`: a model's score from the recipe's [judge] on the judge's held-out prompts.
//
// Each prompt is rendered and tokenized as training renders prompts (the chat template with
// add_generation_prompt when conversational), completed greedily, decoded without special
// tokens, and scored by the judge; the report is the mean score per category and overall.
#include <fstream>
#include <iostream>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/generation.hpp>
#include <alignkit/judge.hpp>
#include <alignkit/tokenizer.hpp>

#include "../host/runtime_setup.hpp"
#include "../host/training_data.hpp"
#include "command_line.hpp"
#include "commands.hpp"
#include "model_loading.hpp"
#include "progress.hpp"
#include "recipe_loading.hpp"

namespace alignkit::cli {

namespace fs = std::filesystem;

namespace {

struct Tally {
  std::size_t prompts = 0;
  double total = 0;
  double mean() const { return prompts ? total / static_cast<double>(prompts) : 0.0; }
};

}  // namespace

int run_eval(const Args& args) {
  CommandLine command_line(
      "alignkit eval RECIPE.toml [--model DIR] [--set section.key=value ...] [--json] [--out FILE]\n\n"
      "Scores a model with the recipe's [judge]: generates greedily for each of the judge's held-out\n"
      "prompts (rendered as training renders prompts) and prints the mean score per category and\n"
      "overall. The model is the recipe's [model], or --model DIR (e.g. a run's final/model).\n"
      "A recipe of [[stage]]s gives its last stage's sections, or those of --stage NAME.\n"
      "Writes nothing unless --out is given.",
      CommandLine::takes_recipe);
  command_line.add()("model", po::value<std::string>(), "Model directory (default: the recipe's [model] path)")(
      "json", "Print the scores as one JSON object")(
      "out", po::value<std::string>(), "Write each prompt, completion and score to this JSONL file")(
      "show", po::value<std::size_t>()->default_value(0), "Print the first N prompts with their completions")(
      "stage", po::value<std::string>(), "The stage of a recipe of [[stage]]s whose sections to use (default: the last)");
  if (!command_line.parse(args)) return kOk;
  auto loaded = load_and_validate(command_line.recipe(), command_line.sets());
  require_training_sections(*loaded, "eval", {"judge", "model"});
  const auto& recipe = chosen_stage(*loaded, command_line, /*last_by_default=*/true);
  configure_runtime(static_cast<int>(recipe.section("run").get_int("threads")));

  // The model and its tokenizer: --model replaces the recipe's [model] path (and its tokenizer,
  // when the directory has one, as a run's final/model does).
  const auto model_section = recipe.section("model");
  const fs::path model_dir = command_line.has("model") ? fs::path(command_line.get<std::string>("model"))
                                                       : model_section.get_path("path");
  fs::path tokenizer_dir = model_section.has("tokenizer") ? model_section.get_path("tokenizer") : model_dir;
  if (command_line.has("model") && fs::exists(model_dir / "tokenizer.json")) tokenizer_dir = model_dir;
  const auto tokenizer = Tokenizer::from_directory(tokenizer_dir);
  PluginRegistry model_registry;
  LoadOptions load_options;
  load_options.dtype = parse_dtype(recipe.section("training").get_string("precision"));
  const auto model = load_model(recipe.plugins.at("model")->name, model_dir, model_registry, load_options).model;

  // The judge's prompts, rendered once.
  const auto* judge_plugin = recipe.plugins.at("judge");
  const auto judge_section = recipe.section("judge");
  auto judge = recipe.object<Judge>("judge");
  const auto examples = call_plugin(*judge_plugin, "to give its prompts", [&] { return judge->prompts(); });
  if (examples.empty())
    throw DiagnosticError(judge_section.error("name", fmt::format("judge '{}' gave no prompts", judge_plugin->name)));
  std::vector<std::vector<std::int64_t>> prompts;
  for (const auto& example : examples) {
    prompts.push_back(tokenize_prompt(tokenizer, example.prompt, example.where));
    if (prompts.back().empty())
      throw DiagnosticError(Diagnostic{Severity::error, example.where, "the judge's prompt has no tokens"});
  }

  GenerationConfig config;
  read_generation_config(model_dir / "generation_config.json", config);
  if (config.eos_token_ids.empty() && tokenizer.eos_token_id()) config.eos_token_ids = {*tokenizer.eos_token_id()};
  if (tokenizer.pad_token_id()) config.pad_token_id = *tokenizer.pad_token_id();
  config.do_sample = false;  // the judge scores the model's greedy answer
  config.max_new_tokens = judge_section.get_int("max_new_tokens");

  // Generate in batches and score.
  const auto batch_size = static_cast<std::size_t>(judge_section.get_int("batch_size"));
  std::vector<std::string> completions;
  std::vector<double> scores;
  ProgressLine progress(std::cerr, stderr_is_terminal());
  for (std::size_t begin = 0; begin < prompts.size(); begin += batch_size) {
    const std::size_t end = std::min(prompts.size(), begin + batch_size);
    const std::vector<std::vector<std::int64_t>> batch(prompts.begin() + static_cast<std::ptrdiff_t>(begin),
                                                       prompts.begin() + static_cast<std::ptrdiff_t>(end));
    const auto generation = generate(*model, batch, config);
    for (std::size_t i = 0; i < batch.size(); ++i) completions.push_back(tokenizer.decode(generation.tokens[i], true));
    progress.update(fmt::format("eval: {}/{} prompts", end, prompts.size()), end == prompts.size());
  }
  std::map<std::string, Tally> by_category;
  Tally overall;
  for (std::size_t i = 0; i < completions.size(); ++i) {
    const double score = call_plugin(*judge_plugin, "to score a completion", [&] { return judge->score(i, completions[i]); });
    if (!(score >= 0.0 && score <= 1.0))
      throw DiagnosticError(plugin_failure(*judge_plugin, "to score a completion",
                                           fmt::format("the score {} is outside [0, 1]", score)));
    scores.push_back(score);
    const auto category = judge->category(i);
    auto& tally = by_category[category.empty() ? "all" : category];
    ++tally.prompts;
    tally.total += score;
    ++overall.prompts;
    overall.total += score;
  }

  if (command_line.has("out")) {
    std::ofstream out(command_line.get<std::string>("out"));
    if (!out) throw_file_error(command_line.get<std::string>("out"), "cannot be written");
    for (std::size_t i = 0; i < completions.size(); ++i) {
      const auto& prompt = examples[i].prompt;
      nlohmann::json line = {{"category", judge->category(i)},
                             {"prompt", prompt.form == Segment::Form::messages ? prompt.messages.back().content : prompt.text},
                             {"completion", completions[i]},
                             {"score", scores[i]}};
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    }
  }
  const auto shown = std::min(command_line.get<std::size_t>("show"), completions.size());
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& prompt = examples[i].prompt;
    std::cerr << fmt::format("[{}] {:.2f}  {}\n    -> {}\n", judge->category(i), scores[i],
                             prompt.form == Segment::Form::messages ? prompt.messages.back().content : prompt.text,
                             completions[i]);
  }

  if (command_line.has("json")) {
    nlohmann::json report = {{"model", model_dir.string()},
                             {"judge", judge_plugin->name},
                             {"prompts", overall.prompts},
                             {"score", overall.mean()}};
    report["categories"] = nlohmann::json::object();
    for (const auto& [name, tally] : by_category)
      report["categories"][name] = {{"prompts", tally.prompts}, {"score", tally.mean()}};
    std::cout << report.dump() << "\n";
    return kOk;
  }
  std::cout << fmt::format("judge '{}' on {} held-out prompts, model {}\n", judge_plugin->name, overall.prompts,
                           model_dir.string());
  std::cout << fmt::format("  {:<10} {:>7}  {}\n", "category", "prompts", "score");
  for (const auto& [name, tally] : by_category)
    std::cout << fmt::format("  {:<10} {:>7}  {:.3f}\n", name, tally.prompts, tally.mean());
  std::cout << fmt::format("  {:<10} {:>7}  {:.3f}\n", "overall", overall.prompts, overall.mean());
  return kOk;
}

}  // namespace alignkit::cli
