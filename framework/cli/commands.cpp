#include "commands.hpp"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/error_text.hpp>
#include <alignkit/torch_compat.hpp>
#include <alignkit/version.hpp>

#include "../host/option_value.hpp"
#include "../host/plugin_registry.hpp"
#include "../host/recipe_render.hpp"
#include "../host/recipe_schema.hpp"
#include "../host/recipe_validator.hpp"
#include "../host/run_directory.hpp"
#include "../host/memory_planner.hpp"
#include "../host/recipe_plan.hpp"
#include "../host/trainer.hpp"
#include "../host/runtime_setup.hpp"
#include "../host/run_stages.hpp"
#include <alignkit/did_you_mean.hpp>
#include "command_line.hpp"
#include "recipe_loading.hpp"

namespace alignkit::cli {

namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

void report_refused(const PluginRegistry& registry) {
  for (const auto& r : registry.refused())
    std::cerr << fmt::format("warning: plugin {} was refused: {}\n", r.path.string(), r.reason);
}

// Runs `fn`, reporting any diagnostic it throws as a recipe error (exit code 3), since
// everything it does is derived from the recipe.
template <typename F>
auto as_recipe_error(F&& fn) {
  try {
    return fn();
  } catch (const RecipeInvalid&) {
    throw;
  } catch (const DiagnosticError& e) {
    throw RecipeInvalid(e.diagnostics(), false);
  }
}

}  // namespace

std::unique_ptr<LoadedRecipe> load_and_validate(const std::string& file, const Args& sets, const fs::path& output_dir) {
  auto loaded = std::make_unique<LoadedRecipe>();
  as_recipe_error([&] {
    auto tree = load_recipe(file, sets);
    try {
      if (tree.stages.empty()) {
        loaded->recipe = validate_recipe(std::move(tree), loaded->registry);
      } else {
        loaded->stages = validate_stages(tree, loaded->registry, output_dir);
        loaded->recipe = loaded->stages.back().recipe;
      }
    } catch (...) {
      report_refused(loaded->registry);
      throw;
    }
    report_refused(loaded->registry);
    if (loaded->stages.empty()) {
      instantiate_plugins(loaded->recipe, loaded->registry);
    } else {
      StageProblems problems;
      for (auto& stage : loaded->stages)
        problems.check(stage.name, [&] { instantiate_plugins(stage.recipe, loaded->registry); });
      problems.throw_if_any(loaded->stages.size());
      loaded->recipe = loaded->stages.back().recipe;
    }
    return 0;
  });
  return loaded;
}

namespace {

void require_sections(const ValidatedRecipe& recipe, const PluginRegistry& registry, const char* command,
                      std::initializer_list<const char*> sections) {
  std::vector<Diagnostic> problems;
  for (const char* name : sections) {
    if (recipe.has_section(name)) continue;
    const auto* schema = find_section(name);
    Diagnostic d;
    d.where = SourceLocation{recipe.tree.file.string(), 0, 0};
    d.message = fmt::format("`alignkit {}` needs a [{}] section: {}", command, name, schema->doc);
    const auto names = registry.names(schema->plugin_kinds);
    d.notes.push_back(names.empty() ? fmt::format("no {} plugins are installed", schema->noun())
                                    : fmt::format("installed {} plugins: {}", schema->noun(), fmt::join(names, ", ")));
    d.help = fmt::format("add [{}] with {} = \"<plugin>\"", name, schema->selector_key);
    problems.push_back(std::move(d));
  }
  if (!problems.empty()) throw RecipeInvalid(std::move(problems), false);
}

}  // namespace

void require_training_sections(const LoadedRecipe& loaded, const char* command,
                               std::initializer_list<const char*> sections) {
  if (loaded.stages.empty()) return require_sections(loaded.recipe, loaded.registry, command, sections);
  StageProblems problems;
  for (const auto& stage : loaded.stages)
    problems.check(stage.name, [&] { require_sections(stage.recipe, loaded.registry, command, sections); });
  problems.throw_if_any(loaded.stages.size());
}

void print_recipe_check(const ValidatedRecipe& recipe, const std::string& indent) {
  for (const auto& [section, plugin] : recipe.plugins)
    std::cout << fmt::format("{}[{}] {} '{}' {} ({})\n", indent, section, to_string(plugin->kind), plugin->name,
                             plugin->version, plugin->path.string());
  if (recipe.section("training").has("max_steps")) {
    const auto shape = as_recipe_error([&] { return schedule_shape(recipe); });
    std::cout << fmt::format("{}{} steps, {} of warmup\n", indent, shape.total_steps, shape.warmup_steps);
  }
}

int run_recipe_check(const Args& args) {
  CommandLine command_line("alignkit recipe check RECIPE.toml [--set section.key=value ...]", CommandLine::takes_recipe);
  if (!command_line.parse(args)) return kOk;
  auto loaded = load_and_validate(command_line.recipe(), command_line.sets());
  if (!loaded->stages.empty()) return run_recipe_check_stages(*loaded, command_line.recipe());
  std::cout << fmt::format("{}: ok\n", command_line.recipe());
  print_recipe_check(loaded->recipe, "  ");
  return kOk;
}

int run_recipe_show(const Args& args) {
  CommandLine command_line("alignkit recipe show RECIPE.toml [--set section.key=value ...]", CommandLine::takes_recipe);
  if (!command_line.parse(args)) return kOk;
  auto loaded = load_and_validate(command_line.recipe(), command_line.sets());
  std::cout << (loaded->stages.empty() ? render_effective_recipe(loaded->recipe) : render_staged_recipe(loaded->stages));
  return kOk;
}

int run_recipe_schedule(const Args& args) {
  CommandLine command_line("alignkit recipe schedule RECIPE.toml [--set ...] [--stage NAME]   (prints step,lr as CSV)",
                           CommandLine::takes_recipe);
  command_line.add()("stage", po::value<std::string>(), "The stage of a recipe of [[stage]]s to print");
  if (!command_line.parse(args)) return kOk;
  auto loaded = load_and_validate(command_line.recipe(), command_line.sets());
  const auto& recipe = chosen_stage(*loaded, command_line, /*last_by_default=*/false);
  const auto shape = as_recipe_error([&] { return schedule_shape(recipe); });
  const auto* plugin = recipe.plugins.at("scheduler");
  auto scheduler = recipe.object<Scheduler>("scheduler");
  const double lr = recipe.section("optimizer").get_float("learning_rate");
  // Streamed: max_steps may be large, and the output is whatever length the user asked for.
  std::cout << "step,lr_factor,learning_rate\n";
  as_recipe_error([&] {
    call_plugin(*plugin, "computing the schedule", [&] {
      for (std::int64_t step = 0; step < shape.total_steps; ++step) {
        const double factor = scheduler->lr_factor(step, shape);
        std::cout << fmt::format("{},{},{}\n", step, factor, factor * lr);  // shortest round-trip text
      }
    });
    return 0;
  });
  return kOk;
}

int run_recipe_keys(const Args& args) {
  CommandLine command_line("alignkit recipe keys   (the reference of every recipe key, as Markdown)", CommandLine::no_recipe);
  if (!command_line.parse(args)) return kOk;
  PluginRegistry registry;
  registry.load_default_search_path();
  report_refused(registry);
  std::cout << render_recipe_reference(registry);
  return kOk;
}

int run_recipe(const Args& args) {
  static const std::vector<std::pair<std::string, std::function<int(const Args&)>>> subcommands = {
      {"check", run_recipe_check}, {"keys", run_recipe_keys}, {"show", run_recipe_show},
      {"schedule", run_recipe_schedule}};
  std::vector<std::string> names;
  for (const auto& [name, fn] : subcommands) names.push_back(name);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: alignkit recipe <check|keys|show|schedule> ...\n\n"
                 "  check RECIPE     validate a recipe and its plugins without running it\n"
                 "  keys             print the reference of every recipe key (Markdown)\n"
                 "  show RECIPE      print the effective recipe (includes, --set and defaults applied)\n"
                 "  schedule RECIPE  print the learning rate of every step as CSV\n";
    return args.empty() ? kUsage : kOk;
  }
  for (const auto& [name, fn] : subcommands)
    if (args[0] == name) return fn(Args(args.begin() + 1, args.end()));
  throw UsageError(fmt::format("unknown command 'recipe {}'; {}", args[0], suggestion(args[0], names)));
}

int run_plugins(const Args& args) {
  CommandLine command_line("alignkit plugins [--json]", CommandLine::no_recipe);
  command_line.add()("json", "Print JSON instead of a table");
  if (!command_line.parse(args)) return kOk;
  PluginRegistry registry;
  const auto search = PluginRegistry::default_search_path();
  for (const auto& entry : search) registry.load(entry);

  if (command_line.has("json")) {
    nlohmann::json out;
    out["host_version"] = ALIGNKIT_VERSION_STRING;
    out["api_version"] = ALIGNKIT_PLUGIN_API_VERSION;
    out["build_abi"] = ALIGNKIT_BUILD_ABI;
    out["search_path"] = nlohmann::json::array();
    for (const auto& s : search) out["search_path"].push_back(s.string());
    out["plugins"] = nlohmann::json::array();
    for (const auto& p : registry.accepted()) {
      nlohmann::json plugin = {{"kind", to_string(p.kind)}, {"name", p.name},
                               {"version", p.version},       {"api_version", p.api_version},
                               {"description", p.description}, {"path", p.path.string()}};
      plugin["options"] = nlohmann::json::array();
      for (const auto& o : p.options)
        plugin["options"].push_back({{"key", o.key},
                                     {"type", to_string(o.type)},
                                     {"default", o.default_value ? nlohmann::json(o.default_value) : nlohmann::json()},
                                     {"required", o.required},
                                     {"accepts", describe_expected(o)},
                                     {"doc", o.doc}});
      out["plugins"].push_back(plugin);
    }
    out["refused"] = nlohmann::json::array();
    for (const auto& r : registry.refused())
      out["refused"].push_back({{"path", r.path.string()}, {"plugin", r.name}, {"reason", r.reason}});
    // Replace invalid UTF-8 (a file name in a plugin folder can hold anything) instead of failing.
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kOk;
  }

  std::string search_text;
  for (const auto& s : search) search_text += (search_text.empty() ? "" : ":") + s.string();
  std::cout << fmt::format("alignkit {} (plugin API {}, {})\nsearch path: {}\n\n", ALIGNKIT_VERSION_STRING,
                           ALIGNKIT_PLUGIN_API_VERSION, ALIGNKIT_BUILD_ABI,
                           search_text.empty() ? std::string("(none)") : search_text);
  std::cout << fmt::format("{:<15}{:<22}{:<9}{:<5}{}\n", "KIND", "NAME", "VERSION", "API", "PATH");
  for (const auto& p : registry.accepted())
    std::cout << fmt::format("{:<15}{:<22}{:<9}{:<5}{}\n  {}\n", to_string(p.kind), p.name, p.version,
                             p.api_version, p.path.string(), p.description);
  if (registry.accepted().empty()) std::cout << "(no plugins found)\n";
  if (!registry.refused().empty()) {
    std::cout << "\nrefused:\n";
    for (const auto& r : registry.refused())
      std::cout << fmt::format("  {}\n    {}\n", r.path.string(), r.reason);
  }
  return kOk;
}

// The free memory of the CUDA device [run] device names (cuda:N, else device 0), for `auto`.
MemoryBudget auto_gpu_budget(const ValidatedRecipe& recipe) {
  const std::string device = recipe.section("run").get_string("device");
  const int index = device.rfind("cuda:", 0) == 0 ? std::atoi(device.c_str() + 5) : 0;
  const auto memory = compat::cuda_memory(index);
  if (!memory)
    throw UsageError(fmt::format("GPU 'auto' needs a CUDA device to read its free memory, and this LibTorch ({}) "
                                 "sees {}; name a preset (t4, a100-80, ...) or give a budget in GiB",
                                 compat::torch_version(),
                                 compat::cuda_available() ? fmt::format("no cuda:{}", index) : "none"));
  return {fmt::format("cuda:{} (free)", index), memory->free, PlanDevice::cuda,
          fmt::format("cudaMemGetInfo: {:.2f} of {:.2f} GiB free", static_cast<double>(memory->free) / (1 << 30),
                      static_cast<double>(memory->total) / (1 << 30))};
}

MemoryBudget named_gpu_budget(const std::string& name, const ValidatedRecipe& recipe) {
  if (name == "auto") return auto_gpu_budget(recipe);
  if (auto budget = gpu_budget(name)) return *budget;
  std::vector<std::string> names = {"auto"};
  for (const auto& preset : gpu_presets()) names.push_back(preset.name);
  throw UsageError(fmt::format("unknown GPU '{}'; {}; presets: {}", name, suggestion(name, names), fmt::join(names, ", ")));
}

// The budget: --gpu or --memory-gib, else the recipe's [plan] gpu or memory_gib, else this machine's RAM.
MemoryBudget budget_from(const CommandLine& command_line, const ValidatedRecipe& recipe) {
  if (command_line.has("gpu") && command_line.has("memory-gib")) throw UsageError("give --gpu or --memory-gib, not both");
  const bool cpu = (command_line.has("device") && command_line.get<std::string>("device") == "cpu") ||
                   recipe.section("run").get_string("device") == "cpu";
  if (command_line.has("memory-gib")) {
    const double gib = command_line.get<double>("memory-gib");
    if (!(gib > 0)) throw UsageError("--memory-gib must be a positive number of GiB");
    return memory_gib_budget(gib, cpu ? PlanDevice::cpu : PlanDevice::cuda);
  }
  if (command_line.has("gpu")) return named_gpu_budget(command_line.get<std::string>("gpu"), recipe);
  if (recipe.has_section("plan")) {
    const auto plan = recipe.section("plan");
    if (plan.has("gpu") && plan.has("memory_gib"))
      throw RecipeInvalid({plan.error("memory_gib", "[plan] gpu and memory_gib are both set", "keep one of them")}, false);
    if (plan.has("memory_gib")) {
      auto budget = memory_gib_budget(plan.get_float("memory_gib"), cpu ? PlanDevice::cpu : PlanDevice::cuda);
      budget.source = "[plan] memory_gib";
      return budget;
    }
    if (plan.has("gpu")) {
      try {
        return named_gpu_budget(plan.get_string("gpu"), recipe);
      } catch (const UsageError& e) {
        throw RecipeInvalid({plan.error("gpu", e.what())}, false);
      }
    }
  }
  return cpu_budget();
}

bool accept_plan(const MemoryPlan& plan, bool force) {
  if (plan.fits) return true;
  std::cerr << render_plan_table(plan);
  if (!force) {
    std::cerr << "error: the recipe does not fit the memory budget (the changes above are ranked by what they "
                 "save)\nhelp: apply one, or pass --force to run anyway\n";
    return false;
  }
  std::cerr << "warning: --force: running a recipe the planner says does not fit\n";
  return true;
}

namespace {

MemoryPlan plan_recipe(LoadedRecipe& loaded, const MemoryBudget& budget) {
  return alignkit::plan_recipe(loaded.recipe, budget, loaded.recipe.section("model").get_path("path"));
}

}  // namespace

int run_train(const Args& args) {
  CommandLine command_line(
      "alignkit train RECIPE.toml [--set section.key=value ...] [--output DIR]\n"
      "       alignkit train --resume RUN_DIR [--set section.key=value ...]",
      CommandLine::optional_recipe);
  command_line.add()("output", po::value<std::string>(), "Output folder (overrides [run] output_dir)")(
      "resume", po::value<std::string>(),
      "Continue the run in this folder from its newest checkpoint, with its recipe.toml")(
      "gpu", po::value<std::string>(), "Plan against this GPU preset's memory, or auto: the CUDA device's free memory (default: [plan] in the recipe, else this machine's RAM)")(
      "memory-gib", po::value<double>(), "Plan against this many GiB")(
      "device", po::value<std::string>(), "cpu: plan against this machine's RAM")(
      "force", "Run even when the planner says the recipe does not fit");
  if (!command_line.parse(args)) return kOk;
  const bool resume = command_line.has("resume");
  if (resume == command_line.has("recipe"))
    throw UsageError(resume ? "--resume continues the run with the recipe.toml in its folder: give no recipe "
                              "(change keys with --set)"
                            : "give a recipe (or --resume RUN_DIR)");
  if (resume && command_line.has("output"))
    throw UsageError("--resume writes into the run's own folder; --output does not apply");
  if (command_line.has("gpu") && command_line.has("memory-gib")) throw UsageError("give --gpu or --memory-gib, not both");
  // A recipe of [[stage]]s, or the folder of its run, trains stage by stage (stage_commands.cpp).
  if (recipe_has_stages(resume ? fs::path(command_line.get<std::string>("resume")) / "recipe.toml"
                               : fs::path(command_line.recipe())))
    return run_train_stages(command_line);
  std::optional<CheckpointFolder> resume_from;
  if (resume) resume_from = resumable_checkpoint(command_line.get<std::string>("resume"));
  const auto recipe_file =
      resume ? (fs::path(command_line.get<std::string>("resume")) / "recipe.toml").string() : command_line.recipe();
  auto loaded = load_and_validate(recipe_file, command_line.sets());
  require_training_sections(*loaded, "train", {"method", "model", "data"});
  check_training_recipe(loaded->recipe);
  // Plan before anything loads: a recipe that cannot fit is refused with what to change.
  const auto plan = plan_recipe(*loaded, budget_from(command_line, loaded->recipe));
  if (!accept_plan(plan, command_line.has("force"))) return kDoesNotFit;
  configure_runtime(static_cast<int>(loaded->recipe.section("run").get_int("threads")));
  const fs::path dir = resume ? fs::path(command_line.get<std::string>("resume"))
                              : run_directory(loaded->recipe,
                                              command_line.has("output") ? command_line.get<std::string>("output") : "");
  if (resume) {
    // The run keeps its recipe; overrides given now become part of it.
    if (!command_line.sets().empty()) write_file_atomically(dir / "recipe.toml", render_effective_recipe(loaded->recipe));
  } else {
    check_fresh_run_folders(dir);
    prepare_run_directory(dir, loaded->recipe);
  }
  std::cerr << fmt::format("run folder: {}\n", dir.string());
  const auto outcome = train(loaded->recipe, dir, resume_from);
  if (outcome.stopped_by_signal) {
    std::cerr << fmt::format("stopped by {} after step {}; continue with `alignkit train --resume {}`\n",
                             outcome.stopped_by_signal == SIGINT ? "SIGINT" : "SIGTERM", outcome.steps, dir.string());
    return 128 + outcome.stopped_by_signal;
  }
  std::cerr << fmt::format("done: {} steps; metrics in {}, outputs in {}\n", outcome.steps,
                           (dir / "metrics.jsonl").string(), outcome.final_dir.string());
  const std::string device = loaded->recipe.section("run").get_string("device");
  if (plan.budget.device == PlanDevice::cpu && !compat::cuda_available()) report_cpu_memory(plan, dir);
  else if (compat::cuda_available() && device != "cpu")
    report_cuda_memory(plan, dir, device.rfind("cuda:", 0) == 0 ? std::atoi(device.c_str() + 5) : 0);
  return kOk;
}

int run_plan(const Args& args) {
  CommandLine command_line("alignkit plan RECIPE.toml [--gpu NAME | --memory-gib N | --device cpu] [--json]",
                           CommandLine::takes_recipe);
  command_line.add()("gpu", po::value<std::string>(), "Target GPU by name (t4, l4, a100-80, h100-80, ...), or auto: the CUDA device's free memory (default: [plan] in the recipe)")(
      "memory-gib", po::value<double>(), "Memory budget in GiB")(
      "device", po::value<std::string>(), "cpu: plan for this machine's RAM (the default without --gpu)")(
      "json", "Print JSON");
  if (!command_line.parse(args)) return kOk;
  // A command-line mistake is reported before the recipe is read.
  if (command_line.has("gpu") && command_line.has("memory-gib")) throw UsageError("give --gpu or --memory-gib, not both");
  auto loaded = load_and_validate(command_line.recipe(), command_line.sets());
  // The planner sizes the model the recipe names and the method's declared needs.
  require_training_sections(*loaded, "plan", {"method", "model"});
  const auto budget = budget_from(command_line, loaded->recipe);
  if (!loaded->stages.empty()) return run_plan_stages(*loaded, budget, command_line.has("json"));
  const auto plan = plan_recipe(*loaded, budget);
  std::cout << (command_line.has("json") ? plan_to_json(plan).dump(2) + "\n" : render_plan_table(plan));
  return kOk;
}

int guarded(const std::function<int()>& command) {
  try {
    return command();
  } catch (const RecipeInvalid& e) {
    std::cerr << e.format();
    return e.plugin_missing() ? kPluginMissing : kRecipeInvalid;
  } catch (const DiagnosticError& e) {
    std::cerr << e.format();
    return kFailure;
  } catch (const UsageError& e) {
    std::cerr << fmt::format("error: {}\nhelp: alignkit --help\n", e.what());
    return kUsage;
  } catch (const po::error& e) {
    std::cerr << fmt::format("error: {}\nhelp: add --help to the command for its options\n", e.what());
    return kUsage;
  } catch (const std::exception& e) {  // LibTorch's errors among them, shown without their C++ stack
    std::cerr << fmt::format("error: {}\n", error_text(e));
    return kFailure;
  } catch (...) {
    std::cerr << "error: internal: an exception that is not a std::exception\n";
    return kFailure;
  }
}

}  // namespace alignkit::cli
