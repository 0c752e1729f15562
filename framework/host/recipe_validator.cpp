#include "recipe_validator.hpp"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include <alignkit/dataset.hpp>
#include <alignkit/judge.hpp>
#include <alignkit/loss.hpp>
#include <alignkit/online_method.hpp>
#include <alignkit/model_loader.hpp>

#include "option_value.hpp"
#include "recipe_schema.hpp"
#include <alignkit/did_you_mean.hpp>

namespace alignkit {

namespace fs = std::filesystem;

RecipeSection ValidatedRecipe::section(std::string_view name) const {
  auto it = sections.find(std::string(name));
  if (it == sections.end()) throw std::logic_error(fmt::format("recipe has no [{}] section", name));
  return RecipeSection(it->second);
}

namespace {

Diagnostic at(const SourceLocation& where, const std::string& line, std::string message,
              std::string help = {}) {
  Diagnostic d;
  d.where = where;
  d.source_line = line;
  d.message = std::move(message);
  d.help = std::move(help);
  return d;
}

std::vector<std::string> keys_of(const std::vector<OptionSpec>& specs) {
  std::vector<std::string> out;
  for (const auto& s : specs) out.emplace_back(s.key);
  return out;
}

class Validator {
 public:
  Validator(RecipeTree& tree, PluginRegistry& registry) : tree_(tree), registry_(registry) {}

  // Leaves of one top-level section, keyed by the rest of their path.
  std::map<KeyPath, const RecipeLeaf*> leaves_of(const std::string& section) const {
    std::map<KeyPath, const RecipeLeaf*> out;
    for (const auto& [path, leaf] : tree_.leaves)
      if (path.size() >= 2 && path[0] == section) out[KeyPath(path.begin() + 1, path.end())] = &leaf;
    return out;
  }

  bool present(const std::string& section) const {
    for (const auto& [path, leaf] : tree_.leaves)
      if (path[0] == section) return true;
    return tree_.tables.count(KeyPath{section}) > 0;
  }

  detail::SectionData build(const SectionSchema& schema, const PluginRecord* plugin) {
    detail::SectionData data;
    data.name = schema.name;
    if (auto it = tree_.tables.find(KeyPath{schema.name}); it != tree_.tables.end()) {
      data.header = it->second.where;
      data.header_line = it->second.source_line;
    } else {
      data.header = SourceLocation{tree_.file.string(), 0, 0};
    }
    std::vector<OptionSpec> specs = schema.host_options;
    if (plugin) specs.insert(specs.end(), plugin->options.begin(), plugin->options.end());
    for (const auto& spec : specs) {
      detail::SectionEntry entry;
      entry.spec = spec;
      entry.value = parse_default(spec).value;  // defaults were checked when the plugin loaded
      data.entries.emplace(spec.key, std::move(entry));
    }

    const bool know_all_keys = !schema.selects_plugin() || plugin;
    for (const auto& [rest, leaf] : leaves_of(schema.name)) {
      const std::string key = to_string(rest);
      auto it = rest.size() == 1 ? data.entries.find(rest[0]) : data.entries.end();
      if (it == data.entries.end()) {
        if (know_all_keys) report_unknown_key(schema, plugin, key, *leaf, keys_of(specs));
        continue;
      }
      auto converted = convert_option_value(*leaf->value, it->second.spec);
      if (!converted.problem.empty()) {
        problems_.push_back(at(leaf->value_where, leaf->source_line,
                               fmt::format("[{}] {}: {}", schema.name, key, converted.problem),
                               converted.help));
        continue;
      }
      resolve_paths(it->second.spec.type, converted.value, leaf->base_dir);
      it->second.value = std::move(converted.value);
      it->second.set_in_recipe = true;
      it->second.where = leaf->key_where;
      it->second.source_line = leaf->source_line;
    }
    for (const auto& [key, entry] : data.entries) {
      if (entry.spec.required && !entry.set_in_recipe && (know_all_keys || !plugin_option(plugin, key)))
        problems_.push_back(at(data.header, data.header_line,
                               fmt::format("[{}] is missing required key '{}'", schema.name, key),
                               fmt::format("add {} = <{}>: {}", key, describe_expected(entry.spec),
                                           entry.spec.doc)));
    }
    return data;
  }

  static bool plugin_option(const PluginRecord* plugin, const std::string& key) {
    if (!plugin) return false;
    return std::any_of(plugin->options.begin(), plugin->options.end(),
                       [&](const OptionSpec& s) { return key == s.key; });
  }

  static void resolve_paths(OptionType type, detail::OptionValue& value, const fs::path& base) {
    auto resolve = [&](std::string& p) {
      // Absolute, so the effective recipe written into the run folder still names the same files.
      if (!p.empty() && fs::path(p).is_relative()) p = fs::absolute(base / p).lexically_normal().string();
    };
    if (type == OptionType::path) resolve(std::get<std::string>(value));
    if (type == OptionType::path_list)
      for (auto& p : std::get<std::vector<std::string>>(value)) resolve(p);
  }

  void report_unknown_key(const SectionSchema& schema, const PluginRecord* plugin,
                          const std::string& key, const RecipeLeaf& leaf,
                          const std::vector<std::string>& known) {
    Diagnostic d = at(leaf.key_where, leaf.source_line,
                      fmt::format("unknown key '{}' in [{}]", key, schema.name));
    if (plugin) d.notes.push_back(fmt::format("[{}] takes the host's keys and those of {} '{}'",
                                              schema.name, to_string(plugin->kind), plugin->name));
    d.help = suggestion(key, known);
    if (schema.selects_plugin()) {
      // A key of a sibling plugin usually means the wrong plugin was selected.
      for (const auto& other : registry_.accepted())
        if (std::find(schema.plugin_kinds.begin(), schema.plugin_kinds.end(), other.kind) != schema.plugin_kinds.end() &&
            &other != plugin && plugin_option(&other, key)) {
          d.notes.push_back(fmt::format("'{}' is an option of {} '{}'", key, to_string(other.kind), other.name));
          break;
        }
    }
    problems_.push_back(std::move(d));
  }

  const PluginRecord* select_plugin(const SectionSchema& schema) {
    const auto leaves = leaves_of(schema.name);
    const OptionSpec* selector = nullptr;
    for (const auto& spec : schema.host_options)
      if (std::string_view(spec.key) == schema.selector_key) selector = &spec;
    std::string name;
    SourceLocation where{tree_.file.string(), 0, 0};
    std::string line;
    if (auto it = leaves.find(KeyPath{schema.selector_key}); it != leaves.end()) {
      auto converted = convert_option_value(*it->second->value, *selector);
      if (!converted.problem.empty()) return nullptr;  // reported with the section's other keys
      name = std::get<std::string>(converted.value);
      where = it->second->value_where;
      line = it->second->source_line;
    } else if (selector->default_value) {
      name = std::get<std::string>(parse_default(*selector).value);
      if (auto t = tree_.tables.find(KeyPath{schema.name}); t != tree_.tables.end()) {
        where = t->second.where;
        line = t->second.source_line;
      }
    } else {
      return nullptr;  // missing required selector: reported as a missing key
    }
    try {
      return &registry_.require(schema.plugin_kinds, schema.noun(), name, where, line);
    } catch (const DiagnosticError& e) {
      for (auto d : e.diagnostics()) {
        d.message = fmt::format("[{}] {}: {}", schema.name, schema.selector_key, d.message);
        problems_.push_back(std::move(d));
      }
      plugin_missing_ = true;
      return nullptr;
    }
  }

  void check_sections_are_known() {
    std::vector<std::string> names;
    for (const auto& s : host_sections()) names.emplace_back(s.name);
    std::set<std::string> reported;
    auto unknown = [&](const std::string& name, const SourceLocation& where, const std::string& line) {
      if (!reported.insert(name).second) return;
      if (name == "stage")  // the loader took out [[stage]] tables: this is `stage` in another shape
        problems_.push_back(at(where, line, "'stage' must be a list of tables, one [[stage]] per stage",
                               "write [[stage]] (double brackets) before each stage, then its sections as "
                               "[stage.method], [stage.training], ..."));
      else
        problems_.push_back(at(where, line, fmt::format("unknown section [{}]", name), suggestion(name, names)));
    };
    for (const auto& [path, table] : tree_.tables) {
      if (path.size() == 1 && !find_section(path[0])) unknown(path[0], table.where, table.source_line);
      // A nested table with keys is reported key by key; an empty one has no keys to report.
      if (path.size() >= 2 && find_section(path[0]) && !has_leaf_under(path))
        problems_.push_back(at(table.where, table.source_line,
                               fmt::format("unknown key '{}' in [{}]", to_string(KeyPath(path.begin() + 1, path.end())),
                                           path[0]),
                               "sections hold key = value pairs, not tables"));
    }
    for (const auto& [path, leaf] : tree_.leaves) {
      if (path[0] == "stage") {
        unknown(path[0], leaf.key_where, leaf.source_line);
      } else if (path.size() == 1 && find_section(path[0]) && leaf.value->is_array()) {
        problems_.push_back(at(leaf.key_where, leaf.source_line,
                               fmt::format("[[{}]] makes a list of sections; a recipe has one [{}]", path[0], path[0]),
                               fmt::format("write [{}] with single brackets, once", path[0])));
      } else if (path.size() == 1) {
        problems_.push_back(at(leaf.key_where, leaf.source_line,
                               fmt::format("key '{}' is outside any section", path[0]),
                               "put it under a [section] header; `alignkit recipe keys` lists them"));
      } else if (!find_section(path[0])) {
        unknown(path[0], leaf.key_where, leaf.source_line);
      }
    }
  }

  bool has_leaf_under(const KeyPath& table) const {
    auto it = tree_.leaves.lower_bound(table);
    return it != tree_.leaves.end() && it->first.size() > table.size() &&
           std::equal(table.begin(), table.end(), it->first.begin());
  }

  void check_host_rules(const ValidatedRecipe& recipe) {
    const RecipeSection scheduler = recipe.section("scheduler");
    if (scheduler.get_int("warmup_steps") > 0 && scheduler.get_float("warmup_ratio") > 0)
      problems_.push_back(scheduler.error("warmup_ratio", "is set together with warmup_steps",
                                          "set one of them; transformers silently ignores the ratio when "
                                          "both are > 0"));
    const RecipeSection run = recipe.section("run");
    static const std::regex name_pattern("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
    if (!std::regex_match(run.get_string("name"), name_pattern))
      problems_.push_back(run.error("name", fmt::format("'{}' cannot name a run folder", run.get_string("name")),
                                    "use letters, digits, '_', '-' and '.', not starting with '.' or '-'"));
    static const std::regex device_pattern("auto|cpu|cuda|cuda:[0-9]{1,3}");
    const std::string device = run.get_string("device");
    if (!std::regex_match(device, device_pattern))
      problems_.push_back(run.error("device", fmt::format("'{}' is not a device", device),
                                    "use cpu, cuda, cuda:N or auto"));
  }

  std::vector<Diagnostic> problems_;
  bool plugin_missing_ = false;

 private:
  RecipeTree& tree_;
  PluginRegistry& registry_;
};

}  // namespace

void sort_diagnostics(std::vector<Diagnostic>& problems) {
  std::stable_sort(problems.begin(), problems.end(), [](const Diagnostic& a, const Diagnostic& b) {
    const bool a_set = a.where.file == "--set", b_set = b.where.file == "--set";
    if (a_set != b_set) return b_set;  // recipe files first, then overrides
    return std::tie(a.where.file, a.where.line, a.where.column) <
           std::tie(b.where.file, b.where.line, b.where.column);
  });
}

ValidatedRecipe validate_recipe(RecipeTree tree, PluginRegistry& registry, const ValidateOptions& options) {
  ValidatedRecipe recipe;
  Validator v(tree, registry);
  v.check_sections_are_known();

  // [plugins] first: the libraries it names must be loaded before the other sections are checked.
  const std::size_t before = v.problems_.size();
  recipe.sections["plugins"] = v.build(*find_section("plugins"), nullptr);
  if (v.problems_.size() == before)  // problems elsewhere must not stop the recipe's plugins loading
    for (const auto& path : RecipeSection(recipe.sections["plugins"]).get_path_list("paths"))
      registry.load(path);
  if (options.load_default_plugins) registry.load_default_search_path();

  for (const auto& schema : host_sections()) {
    if (std::string_view(schema.name) == "plugins") continue;
    if (!schema.implicit && !v.present(schema.name)) continue;
    const PluginRecord* plugin = schema.selects_plugin() ? v.select_plugin(schema) : nullptr;
    recipe.sections[schema.name] = v.build(schema, plugin);
    if (plugin) recipe.plugins[schema.name] = plugin;
  }
  if (v.problems_.empty()) v.check_host_rules(recipe);

  if (!v.problems_.empty()) {
    sort_diagnostics(v.problems_);
    throw RecipeInvalid(std::move(v.problems_), v.plugin_missing_);
  }
  recipe.tree = std::move(tree);
  return recipe;
}

ScheduleShape schedule_shape(const ValidatedRecipe& recipe) {
  const RecipeSection training = recipe.section("training");
  const RecipeSection scheduler = recipe.section("scheduler");
  if (!training.has("max_steps"))
    throw DiagnosticError(training.error("max_steps", "is not set; the schedule needs the run's length",
                                         "add max_steps = <steps> under [training]"));
  ScheduleShape shape;
  shape.total_steps = training.get_int("max_steps");
  const std::int64_t steps = scheduler.get_int("warmup_steps");
  // The ratio is at most 1, so ceil(ratio * total) <= total; the comparison also keeps the cast
  // defined for totals near the int64 limit.
  const double from_ratio = std::ceil(static_cast<double>(shape.total_steps) * scheduler.get_float("warmup_ratio"));
  shape.warmup_steps = steps > 0 ? steps
                       : from_ratio >= static_cast<double>(shape.total_steps)
                           ? shape.total_steps
                           : static_cast<std::int64_t>(from_ratio);
  if (shape.warmup_steps > shape.total_steps) {
    const char* key = steps > 0 ? "warmup_steps" : "warmup_ratio";
    throw DiagnosticError(scheduler.error(
        key, fmt::format("warmup of {} steps is longer than the run ({} steps)", shape.warmup_steps, shape.total_steps),
        "shorten the warmup or raise [training] max_steps"));
  }
  return shape;
}

void instantiate_plugins(ValidatedRecipe& recipe, const PluginRegistry& registry) {
  for (const auto& [section_name, plugin] : recipe.plugins) {
    if (recipe.objects.count(section_name)) continue;
    const RecipeSection section = recipe.section(section_name);
    std::shared_ptr<PluginObject> object;
    switch (plugin->kind) {
      case PluginKind::scheduler: {
        auto scheduler = registry.create<Scheduler>(*plugin, section);
        if (recipe.section("training").has("max_steps")) {
          const auto shape = schedule_shape(recipe);
          call_plugin(*plugin, "its check of the schedule", [&] { scheduler->check(shape); });
        }
        object = scheduler;
        break;
      }
      case PluginKind::loss: object = registry.create<Loss>(*plugin, section); break;
      case PluginKind::online_method: object = registry.create<OnlineMethod>(*plugin, section); break;
      case PluginKind::dataset: object = registry.create<Dataset>(*plugin, section); break;
      case PluginKind::model_loader: object = registry.create<ModelLoader>(*plugin, section); break;
      case PluginKind::judge: object = registry.create<Judge>(*plugin, section); break;
    }
    recipe.objects[section_name] = std::move(object);
  }
}

}  // namespace alignkit
