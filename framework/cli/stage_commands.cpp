// Commands on a recipe of [[stage]]s: `train` runs the stages in order in one run folder (and
// `train --resume` continues such a run where it stopped), `recipe check` and `plan` report each
// stage. The recipe side (deriving and validating each stage) is framework/host/recipe_stages.cpp;
// the run folder's state is framework/host/run_stages.cpp.
#include <csignal>
#include <iostream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>

#include "../host/recipe_render.hpp"
#include "../host/run_checkpoint.hpp"
#include "../host/run_directory.hpp"
#include "../host/runtime_setup.hpp"
#include "../host/run_stages.hpp"
#include "../host/stop_signals.hpp"
#include <alignkit/did_you_mean.hpp>
#include "../host/trainer.hpp"
#include "recipe_loading.hpp"

namespace alignkit::cli {

namespace fs = std::filesystem;

namespace {

std::string stage_title(const std::vector<ValidatedStage>& stages, std::size_t i) {
  return fmt::format("stage {}/{} '{}'", i + 1, stages.size(), stages[i].name);
}

std::string signal_name(int signal) { return signal == SIGINT ? "SIGINT" : "SIGTERM"; }

}  // namespace

const ValidatedRecipe& chosen_stage(const LoadedRecipe& loaded, const CommandLine& command_line, bool last_by_default) {
  if (loaded.stages.empty()) {
    if (command_line.has("stage")) throw UsageError("--stage picks a stage of a recipe of [[stage]]s; this recipe has none");
    return loaded.recipe;
  }
  std::vector<std::string> names;
  for (const auto& stage : loaded.stages) names.push_back(stage.name);
  if (!command_line.has("stage")) {
    if (last_by_default) return loaded.stages.back().recipe;
    throw UsageError(fmt::format("the recipe has stages {}: choose one with --stage NAME", fmt::join(names, ", ")));
  }
  const auto name = command_line.get<std::string>("stage");
  for (const auto& stage : loaded.stages)
    if (stage.name == name) return stage.recipe;
  throw UsageError(fmt::format("the recipe has no stage '{}'; {}", name, suggestion(name, names)));
}

int run_recipe_check_stages(const LoadedRecipe& loaded, const std::string& file) {
  const auto& stages = loaded.stages;
  std::cout << fmt::format("{}: ok, {} stages\n", file, stages.size());
  for (std::size_t i = 0; i < stages.size(); ++i) {
    std::cout << fmt::format("  {}{}\n", stage_title(stages, i),
                             stages[i].model_from_previous
                                 ? fmt::format(", from the model of '{}'", stages[i - 1].name)
                                 : std::string());
    print_recipe_check(stages[i].recipe, "    ");
  }
  return kOk;
}

int run_plan_stages(LoadedRecipe& loaded, const MemoryBudget& budget, bool json) {
  // A later stage's model does not exist before the run: it has the configuration of the model it
  // is trained from, so the nearest existing one is described.
  nlohmann::json out = {{"stages", nlohmann::json::array()}};
  const auto& stages = loaded.stages;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto model = model_to_describe(stages, i);
    const auto plan = plan_recipe(stages[i].recipe, budget, model);
    if (json) {
      out["stages"].push_back({{"name", stages[i].name}, {"described", model.string()}, {"plan", plan_to_json(plan)}});
      continue;
    }
    std::cout << fmt::format("{}{}: {}\n", i ? "\n" : "", stage_title(stages, i),
                             model == stages[i].recipe.section("model").get_path("path")
                                 ? model.string()
                                 : fmt::format("sized from {} (its model is written by an earlier stage)",
                                               model.string()));
    std::cout << render_plan_table(plan);
  }
  if (json) std::cout << out.dump(2) << "\n";
  return kOk;
}

int run_train_stages(const CommandLine& command_line) {
  const bool resume = command_line.has("resume");
  const fs::path output = resume                         ? fs::path(command_line.get<std::string>("resume"))
                          : command_line.has("output") ? fs::path(command_line.get<std::string>("output"))
                                                       : fs::path();
  auto loaded = load_and_validate(resume ? (output / "recipe.toml").string() : command_line.recipe(),
                                  command_line.sets(), output);
  const auto& stages = loaded->stages;
  require_training_sections(*loaded, "train", {"method", "model", "data"});
  StageProblems problems;
  for (const auto& stage : stages) problems.check(stage.name, [&] { check_training_recipe(stage.recipe); });
  problems.throw_if_any(stages.size());
  // Every stage is planned before the first one starts.
  const auto budget = budget_from(command_line, stages.front().recipe);
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto plan = plan_recipe(stages[i].recipe, budget, model_to_describe(stages, i));
    if (!plan.fits) std::cerr << stage_title(stages, i) << ":\n";
    if (!accept_plan(plan, command_line.has("force"))) return kDoesNotFit;
  }

  const fs::path dir = resume ? output : run_directory(stages.front().recipe, output);
  const auto effective = render_staged_recipe(stages);
  if (resume) {
    bool started = false;
    for (const auto& stage : stages) started = started || latest_checkpoint(dir / stage.name).has_value();
    if (!started)
      throw DiagnosticError(make_error(fmt::format("{} has no checkpoint to resume from in any of its stages", dir.string()),
                                       "a run writes one every [training] save_steps, when SIGINT or SIGTERM stops "
                                       "it, and at its end"));
    // The run keeps its recipe; overrides given now become part of it.
    if (!command_line.sets().empty()) write_file_atomically(dir / "recipe.toml", effective);
  } else {
    check_fresh_run_folders(dir);
    prepare_run_directory(dir, stages.front().recipe, effective);
    for (const auto& stage : stages) reset_stage(dir / stage.name, /*fresh=*/true);
  }
  std::vector<std::string> names;
  for (const auto& stage : stages) names.push_back(stage.name);
  std::cerr << fmt::format("run folder: {} ({} stages: {})\n", dir.string(), stages.size(), fmt::join(names, ", "));

  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto& recipe = stages[i].recipe;
    const fs::path stage_dir = dir / stages[i].name;
    if (resume && stage_finished(stage_dir, recipe.section("training").get_int("max_steps"))) {
      std::cerr << fmt::format("{}: finished before, skipped\n", stage_title(stages, i));
      continue;
    }
    configure_runtime(static_cast<int>(recipe.section("run").get_int("threads")));
    const auto from = resume ? latest_checkpoint(stage_dir) : std::nullopt;
    reset_stage(stage_dir, /*fresh=*/!from);
    if (!from)
      prepare_run_directory(stage_dir, recipe);
    else if (!command_line.sets().empty())
      write_file_atomically(stage_dir / "recipe.toml", render_effective_recipe(recipe));
    std::cerr << fmt::format("{}: {} in {}\n", stage_title(stages, i),
                             from ? fmt::format("resuming from step {}", from->step) : std::string("starting"),
                             stage_dir.string());
    const auto outcome = train(recipe, stage_dir, from);
    if (outcome.stopped_by_signal) {
      // The whole run stops, so that --resume continues inside this stage.
      std::cerr << fmt::format("stopped by {} in stage '{}' after step {}; continue with `alignkit train --resume {}`\n",
                               signal_name(outcome.stopped_by_signal), stages[i].name, outcome.steps, dir.string());
      return 128 + outcome.stopped_by_signal;
    }
    mark_stage_finished(stage_dir);
    std::cerr << fmt::format("{}: done, {} steps; outputs in {}\n", stage_title(stages, i), outcome.steps,
                             outcome.final_dir.string());
    // A signal during the stage's last step let it finish; the next stage does not start.
    if (const int signal = StopSignals::last_received(); signal && i + 1 < stages.size()) {
      std::cerr << fmt::format("stopped by {} after stage '{}'; continue with `alignkit train --resume {}`\n",
                               signal_name(signal), stages[i].name, dir.string());
      return 128 + signal;
    }
  }
  std::cerr << fmt::format("done: {} stages; outputs in {}\n", stages.size(),
                           (dir / stages.back().name / "final").string());
  return kOk;
}

}  // namespace alignkit::cli
