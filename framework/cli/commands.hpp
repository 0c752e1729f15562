// The `alignkit` subcommands. Each takes its own arguments (after the command words) and returns
// the process exit code; see docs/cli.md for the codes.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace alignkit::cli {

enum ExitCode : int {
  kOk = 0,
  kFailure = 1,         // the command could not do its work (writing outputs, an internal error)
  kUsage = 2,           // the command line is wrong (unknown command or option, missing argument)
  kRecipeInvalid = 3,   // the recipe, a file it includes, or a --set override is missing or invalid
  kPluginMissing = 4,   // the recipe asks for a plugin that is not installed or was refused
  kDoesNotFit = 5,      // `train`: the memory planner predicts more than the budget (--force runs anyway)
};

using Args = std::vector<std::string>;

int run_train(const Args& args);
int run_plan(const Args& args);
int run_plugins(const Args& args);
int run_recipe(const Args& args);  // recipe check | keys | show | schedule
int run_score(const Args& args);
int run_merge(const Args& args);
int run_init_model(const Args& args);
int run_tokenize(const Args& args);     // text_commands.cpp
int run_chat_format(const Args& args);  // text_commands.cpp
int run_generate(const Args& args);
int run_eval(const Args& args);  // eval_command.cpp

// Runs a command, printing what it throws and mapping it to an exit code.
int guarded(const std::function<int()>& command);

}  // namespace alignkit::cli
