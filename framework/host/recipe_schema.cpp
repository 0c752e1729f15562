#include "recipe_schema.hpp"

#include <algorithm>

namespace alignkit {

namespace {

std::vector<SectionSchema> make_sections() {
  std::vector<SectionSchema> s;
  s.push_back({"run", "What the run is called, where it writes, and how it uses the machine.",
               {
                   {.key = "name", .type = OptionType::string, .default_value = "\"alignkit-run\"",
                    .doc = "Name of the run; the default output folder is runs/<name>."},
                   {.key = "output_dir", .type = OptionType::path,
                    .doc = "Folder for the run's outputs (effective recipe, metrics, checkpoints). "
                           "Default: runs/<name> under the working directory. `--output` overrides it."},
                   {.key = "seed", .type = OptionType::integer, .default_value = "42", .doc =
                    "Seed for every random number generator (transformers' default).", .min = 0},
                   {.key = "device", .type = OptionType::string, .default_value = "\"auto\"",
                    .doc = "`cpu`, `cuda`, `cuda:N`, or `auto` (the first CUDA device if there is "
                           "one, else the CPU)."},
                   {.key = "threads", .type = OptionType::integer, .default_value = "0",
                    .doc = "CPU threads for tensor operations; 0 uses every core this process may "
                           "run on.", .min = 0, .max = 1024},
               }});
  s.push_back({"training", "The length of the run.",
               {
                   {.key = "max_steps", .type = OptionType::integer,
                    .doc = "Optimizer updates to run. Schedulers stretch over this many steps.",
                    .min = 1, .max = 1e12},
               }});
  s.push_back({"optimizer", "AdamW with decoupled weight decay; names and defaults as in transformers' TrainingArguments.",
               {
                   {.key = "learning_rate", .type = OptionType::floating, .default_value = "5e-05",
                    .doc = "Peak learning rate, reached after warmup.", .min = 0,
                    .min_exclusive = true},
                   {.key = "weight_decay", .type = OptionType::floating, .default_value = "0.0",
                    .doc = "Decoupled weight decay.", .min = 0},
                   {.key = "adam_beta1", .type = OptionType::floating, .default_value = "0.9",
                    .doc = "AdamW beta1.", .min = 0, .max = 1, .max_exclusive = true},
                   {.key = "adam_beta2", .type = OptionType::floating, .default_value = "0.999",
                    .doc = "AdamW beta2.", .min = 0, .max = 1, .max_exclusive = true},
                   {.key = "adam_epsilon", .type = OptionType::floating, .default_value = "1e-08",
                    .doc = "AdamW epsilon.", .min = 0, .min_exclusive = true},
                   {.key = "max_grad_norm", .type = OptionType::floating, .default_value = "1.0",
                    .doc = "Clip the global gradient norm to this; 0 disables clipping.", .min = 0},
               }});
  s.push_back({"scheduler",
               "The learning-rate schedule: a scheduler plugin, with warmup resolved by the host "
               "(warmup_steps if > 0, else ceil(warmup_ratio * max_steps), as transformers does).",
               {
                   {.key = "name", .type = OptionType::string, .default_value = "\"linear\"",
                    .doc = "Scheduler plugin (`alignkit plugins` lists them). transformers' default "
                           "is linear."},
                   {.key = "warmup_steps", .type = OptionType::integer, .default_value = "0",
                    .doc = "Linear warmup from 0 over this many steps.", .min = 0},
                   {.key = "warmup_ratio", .type = OptionType::floating, .default_value = "0.0",
                    .doc = "Warmup as a fraction of max_steps, used when warmup_steps is 0.",
                    .min = 0, .max = 1},
               },
               PluginKind::scheduler, "name"});
  s.push_back({"method", "The alignment method: a loss plugin and its options.",
               {
                   {.key = "name", .type = OptionType::string, .doc = "Loss plugin, e.g. `dpo`.",
                    .required = true},
               },
               PluginKind::loss, "name", false});
  s.push_back({"model", "The policy model: a model-loader plugin and the model directory.",
               {
                   {.key = "loader", .type = OptionType::string, .default_value = "\"hf\"",
                    .doc = "Model-loader plugin."},
                   {.key = "path", .type = OptionType::path,
                    .doc = "Model directory (config.json and weights).", .required = true},
               },
               PluginKind::model_loader, "loader", false});
  s.push_back({"data", "Training data: a dataset plugin for the file format, and its options.",
               {
                   {.key = "format", .type = OptionType::string,
                    .doc = "Dataset plugin naming the data format.", .required = true},
               },
               PluginKind::dataset, "format", false});
  s.push_back({"plugins", "Extra plugin libraries for this recipe.",
               {
                   {.key = "paths", .type = OptionType::path_list, .default_value = "[]",
                    .doc = "Plugin files or folders, searched before ALIGNKIT_PLUGIN_PATH and the "
                           "installed plugins."},
               }});
  return s;
}

}  // namespace

const std::vector<SectionSchema>& host_sections() {
  static const std::vector<SectionSchema> sections = make_sections();
  return sections;
}

const SectionSchema* find_section(std::string_view name) {
  const auto& sections = host_sections();
  auto it = std::find_if(sections.begin(), sections.end(),
                         [&](const SectionSchema& s) { return name == s.name; });
  return it == sections.end() ? nullptr : &*it;
}

const SectionSchema* section_for_kind(PluginKind kind) {
  for (const auto& s : host_sections())
    if (s.plugin_kind == kind) return &s;
  return nullptr;
}

}  // namespace alignkit
