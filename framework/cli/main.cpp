// alignkit: the host program. Dispatches to the subcommands in commands.cpp.
#include <iostream>
#include <map>

#include <fmt/format.h>

#include <alignkit/plugin.hpp>
#include <alignkit/torch_compat.hpp>
#include <alignkit/version.hpp>

#include "../host/runtime_setup.hpp"
#include <alignkit/did_you_mean.hpp>
#include "commands.hpp"

namespace {

constexpr const char* kUsage =
    "usage: alignkit <command> [options]\n"
    "\n"
    "commands:\n"
    "  train RECIPE.toml [--set k=v ...] [--output DIR]   align a model as the recipe says\n"
    "  plan RECIPE.toml [--gpu NAME | --memory-gib N]     predict the memory a recipe needs\n"
    "  plugins [--json]                                   list plugins found and those refused\n"
    "  recipe check RECIPE.toml                           validate a recipe without running it\n"
    "  recipe keys                                        reference of every recipe key\n"
    "  recipe show RECIPE.toml                            the effective recipe\n"
    "  recipe schedule RECIPE.toml                        the learning rate of every step (CSV)\n"
    "  score --model DIR --data IN.jsonl --out OUT.jsonl  log-probs of chosen and rejected completions\n"
    "  generate --model DIR --prompt TEXT                 complete prompts (greedy or sampled)\n"
    "  eval RECIPE.toml [--model DIR]                     score a model with the recipe's [judge]\n"
    "  merge --model DIR --adapter DIR --out DIR          fold a LoRA adapter into the model\n"
    "  init-model --preset NAME --out DIR                 a random Llama-shaped model, HF format\n"
    "  tokenize --tokenizer DIR (--text T | --file F)     text to token ids (--decode: ids to text)\n"
    "  chat-format --tokenizer DIR --messages F.json      a conversation through the chat template\n"
    "\n"
    "options:\n"
    "  -h, --help     show this help (after a command: that command's help)\n"
    "  --version      show the version\n"
    "\n"
    "Exit codes: 0 ok, 1 failure, 2 usage error, 3 invalid recipe, 4 plugin missing or refused\n"
    "(docs/cli.md).\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace alignkit;
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty()) {
    std::cerr << kUsage;
    return cli::kUsage;
  }
  const std::string command = words[0];
  const cli::Args rest(words.begin() + 1, words.end());
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return cli::kOk;
  }
  if (command == "--version") {
    std::cout << fmt::format("alignkit {}\nplugin API {}\nbuilt with LibTorch {} ({}), CUDA {}\nallocator: {}\n",
                             ALIGNKIT_VERSION_STRING, ALIGNKIT_PLUGIN_API_VERSION, compat::torch_version(),
                             ALIGNKIT_BUILD_ABI, compat::cuda_available() ? "available" : "not available",
                             allocator_description());
    return cli::kOk;
  }

  const std::map<std::string, int (*)(const cli::Args&)> commands = {
      {"train", cli::run_train}, {"plan", cli::run_plan}, {"plugins", cli::run_plugins},
      {"recipe", cli::run_recipe}, {"score", cli::run_score}, {"merge", cli::run_merge},
      {"init-model", cli::run_init_model}, {"generate", cli::run_generate}, {"eval", cli::run_eval},
      {"tokenize", cli::run_tokenize}, {"chat-format", cli::run_chat_format}};
  auto it = commands.find(command);
  if (it == commands.end()) {
    std::vector<std::string> names;
    for (const auto& [name, fn] : commands) names.push_back(name);
    std::cerr << fmt::format("error: unknown command '{}'\nhelp: {}\n{}", command, suggestion(command, names), kUsage);
    return cli::kUsage;
  }

  // Commands that compute get OpenMP workers that spin briefly, then sleep: libgomp's long default
  // spin costs tiny models up to 60x whenever another process shares the CPUs (docs/performance.md).
  if (command == "train" || command == "score" || command == "generate" || command == "eval" || command == "merge")
    restart_with_bounded_openmp_spinning(argv);
  // Set up threads and the allocator before any work, and say so if matrix products will crawl.
  configure_runtime(0);
  if (auto warning = blas_warning(detect_blas()); !warning.empty()) std::cerr << warning;
  return cli::guarded([&] { return it->second(rest); });
}
