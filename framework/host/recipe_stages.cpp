#include "recipe_stages.hpp"

#include <algorithm>
#include <regex>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "option_value.hpp"
#include "recipe_render.hpp"
#include "recipe_schema.hpp"
#include "run_directory.hpp"

namespace alignkit {

namespace fs = std::filesystem;

namespace {

bool same_place(const SourceLocation& a, const SourceLocation& b) {
  return a.file == b.file && a.line == b.line && a.column == b.column;
}

// The section a misplaced key probably belongs to: the host section that declares it.
std::string section_declaring(const std::string& key) {
  for (const auto& schema : host_sections())
    for (const auto& spec : schema.host_options)
      if (key == spec.key) return schema.name;
  return "SECTION";
}

// What [[stage]] entries hold besides sections: a name that is a folder name, unique.
void check_stage_entries(const RecipeTree& tree, StageProblems& problems) {
  static const std::regex name_pattern("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  std::map<std::string, std::size_t> seen;
  for (std::size_t i = 0; i < tree.stages.size(); ++i) {
    const RecipeStage& stage = tree.stages[i];
    const std::string name = stage_name(tree, i);
    SourceLocation name_where = stage.where;
    std::string name_line = stage.source_line;
    for (const auto& [path, leaf] : stage.leaves) {
      if (path.size() != 1) continue;
      if (path[0] != "name") {
        const auto section = section_declaring(path[0]);
        problems.add(name, located(leaf.key_where, leaf.source_line,
                              fmt::format("key '{}' is directly under [[stage]], which holds only `name` and the "
                                          "stage's sections",
                                          path[0]),
                              fmt::format("put it in a section of the stage: [stage.{}] {} = ...", section, path[0])));
        continue;
      }
      name_where = leaf.value_where;
      name_line = leaf.source_line;
      if (!leaf.value->is_string())
        problems.add(name, located(leaf.value_where, leaf.source_line,
                              fmt::format("[[stage]] name must be a string (the stage's folder name), not {}",
                                          describe_found(*leaf.value))));
      else if (!std::regex_match(name, name_pattern) || name == "recipe.toml")
        problems.add(name, located(leaf.value_where, leaf.source_line,
                              fmt::format("'{}' cannot name a stage's folder in the run folder", name),
                              "use letters, digits, '_', '-' and '.', not starting with '.' or '-'"));
    }
    if (auto [it, fresh] = seen.emplace(name, i); !fresh)
      problems.add(name, located(name_where, name_line,
                            fmt::format("stage {} is named '{}' like stage {}; each stage needs its own folder", i + 1,
                                        name, it->second + 1),
                            "give each [[stage]] its own name = \"...\""));
  }
}

// [run] name and output_dir place the whole run; a stage's folder is its name inside it.
void check_run_keys(const RecipeTree& base, const RecipeTree& derived, const std::string& stage, const fs::path& run_dir,
                    StageProblems& problems) {
  for (const char* key : {"name", "output_dir"}) {
    const KeyPath path{"run", key};
    auto set = derived.leaves.find(path);
    if (set == derived.leaves.end()) continue;
    auto shared = base.leaves.find(path);
    if (shared != base.leaves.end() && same_place(shared->second.key_where, set->second.key_where)) continue;
    problems.add(stage, located(set->second.key_where, set->second.source_line,
                           fmt::format("[run] {} belongs to the whole run; a stage cannot set it", key),
                           fmt::format("set it at the top level; stage '{}' writes into {}", stage,
                                       (run_dir / stage).string())));
  }
}

}  // namespace

void StageProblems::add(const std::string& stage, const DiagnosticError& error) {
  if (const auto* invalid = dynamic_cast<const RecipeInvalid*>(&error); invalid && invalid->plugin_missing())
    plugin_missing_ = true;
  for (const auto& d : error.diagnostics()) add(stage, d);
}

void StageProblems::add(const std::string& stage, Diagnostic problem) {
  for (auto& f : found_)
    if (same_place(f.diagnostic.where, problem.where) && f.diagnostic.message == problem.message) {
      if (std::find(f.stages.begin(), f.stages.end(), stage) == f.stages.end()) f.stages.push_back(stage);
      return;
    }
  found_.push_back({std::move(problem), {stage}});
}

void StageProblems::throw_if_any(std::size_t stages) {
  if (found_.empty()) return;
  std::vector<Diagnostic> out;
  for (auto& f : found_) {
    std::vector<std::string> quoted;
    for (const auto& s : f.stages) quoted.push_back(fmt::format("'{}'", s));
    f.diagnostic.notes.push_back(stages > 1 && f.stages.size() == stages
                                     ? std::string("in every stage")
                                     : fmt::format("in stage {}", fmt::join(quoted, ", ")));
    out.push_back(std::move(f.diagnostic));
  }
  sort_diagnostics(out);
  found_.clear();
  throw RecipeInvalid(std::move(out), plugin_missing_);
}

std::vector<ValidatedStage> validate_stages(const RecipeTree& tree, PluginRegistry& registry, const fs::path& output_dir,
                                            const ValidateOptions& options) {
  StageProblems problems;
  check_stage_entries(tree, problems);
  std::vector<ValidatedStage> stages;
  std::vector<bool> valid;
  fs::path run_dir = output_dir;
  for (std::size_t i = 0; i < tree.stages.size(); ++i) {
    const RecipeStage& entry = tree.stages[i];
    ValidatedStage stage;
    stage.name = stage_name(tree, i);
    // A later stage starts from the previous stage's output unless its own keys or --set say
    // otherwise; the leaf points at the stage's [[stage]] line, which is where it comes from.
    std::map<KeyPath, RecipeLeaf> inherited;
    if (i > 0) {
      RecipeLeaf leaf;
      leaf.value = std::make_shared<toml::value<std::string>>(
          fs::absolute(run_dir / stages.back().name / "final" / "model").lexically_normal().string());
      leaf.key_where = leaf.value_where = entry.where;
      leaf.source_line = entry.source_line;
      leaf.base_dir = fs::current_path();
      inherited.emplace(KeyPath{"model", "path"}, std::move(leaf));
    }
    const bool ok = problems.check(stage.name, [&] {
      auto derived = stage_tree(tree, i, inherited);
      const auto model_path = derived.leaves.find(KeyPath{"model", "path"});
      stage.model_from_previous = i > 0 && model_path != derived.leaves.end() &&
                                  same_place(model_path->second.key_where, entry.where);
      check_run_keys(tree, derived, stage.name, run_dir.empty() ? fs::path("RUN") : run_dir, problems);
      stage.recipe = validate_recipe(std::move(derived), registry, options);
    });
    // The run folder is the first stage's: the later stages' chained paths lie inside it.
    if (i == 0 && run_dir.empty()) run_dir = ok ? run_directory(stage.recipe) : fs::path("runs") / stage.name;
    stages.push_back(std::move(stage));
    valid.push_back(ok);
  }
  for (std::size_t i = 1; i < stages.size(); ++i) {
    if (!valid[i - 1] || !valid[i] || !stages[i].model_from_previous) continue;
    const auto output = stages[i - 1].recipe.section("output");
    if (output.get_bool("save_model")) continue;
    Diagnostic d = output.error("save_model", fmt::format("stage '{}' saves no model, and stage '{}' starts from it",
                                                          stages[i - 1].name, stages[i].name),
                                fmt::format("save it (save_model = true), or give stage '{}' its own [stage.model] path",
                                            stages[i].name));
    problems.add(stages[i - 1].name, std::move(d));
  }
  problems.throw_if_any(tree.stages.size());
  return stages;
}

bool recipe_has_stages(const fs::path& file) {
  try {
    return !load_recipe(file).stages.empty();
  } catch (const DiagnosticError&) {
    return false;
  }
}

fs::path model_to_describe(const std::vector<ValidatedStage>& stages, std::size_t index) {
  const auto path = stages.at(index).recipe.section("model").get_path("path");
  if (index == 0 || fs::exists(path) || !stages[index].model_from_previous) return path;
  return model_to_describe(stages, index - 1);
}

std::string render_staged_recipe(const std::vector<ValidatedStage>& stages) {
  auto run_place = [](std::string_view section, std::string_view key) {
    return section == "run" && (key == "name" || key == "output_dir");
  };
  std::vector<std::string> names;
  for (const auto& stage : stages) names.push_back(stage.name);
  // Each stage's tree names the same files and overrides.
  std::string out = render_recipe_header(stages.front().recipe.tree);
  out += fmt::format("# {} stages, run in this order, each in its own folder of the run: {}\n", stages.size(),
                     fmt::join(names, ", "));
  out += render_recipe_sections(stages.front().recipe, "", run_place);
  for (const auto& stage : stages) {
    out += fmt::format("\n[[stage]]\nname = {}\n", to_toml_text(detail::OptionValue(stage.name)));
    out += render_recipe_sections(stage.recipe, "stage.",
                                  [&](std::string_view section, std::string_view key) { return !run_place(section, key); });
  }
  return out;
}

}  // namespace alignkit
