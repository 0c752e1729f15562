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
  s.push_back({"training", "The training loop: length, batches, sequence lengths, precision and logging (TRL's names and defaults).",
               {
                   {.key = "max_steps", .type = OptionType::integer,
                    .doc = "Optimizer updates to run. Schedulers stretch over this many steps.",
                    .min = 1, .max = 1e12},
                   {.key = "per_device_train_batch_size", .type = OptionType::integer, .default_value = "8",
                    .doc = "Examples per micro-batch (a preference pair counts once; its chosen and "
                           "rejected completions run in one forward).", .min = 1, .max = 1e6},
                   {.key = "gradient_accumulation_steps", .type = OptionType::integer, .default_value = "1",
                    .doc = "Micro-batches per optimizer update.", .min = 1, .max = 1e6},
                   {.key = "max_length", .type = OptionType::integer, .default_value = "1024",
                    .doc = "Longest prompt + completion in tokens; longer rows are truncated per "
                           "truncation_mode.", .min = 2},
                   {.key = "max_prompt_length", .type = OptionType::integer, .default_value = "512",
                    .doc = "Longest prompt in tokens; longer prompts keep their end (TRL).", .min = 1},
                   {.key = "max_completion_length", .type = OptionType::integer,
                    .doc = "Longest completion in tokens (EOS included); unset: no limit of its own.", .min = 1},
                   {.key = "truncation_mode", .type = OptionType::string, .default_value = "\"keep_end\"",
                    .doc = "What a row longer than max_length keeps: `keep_end` drops tokens from the "
                           "prompt's start, `keep_start` drops them from the completion's end.",
                    .choices = "keep_end|keep_start"},
                   {.key = "precision", .type = OptionType::string, .default_value = "\"float32\"",
                    .doc = "Compute dtype of the models: `float32`, `bfloat16` or `float16` (CUDA). "
                           "Trainable adapters stay float32.",
                    .choices = "float32|bfloat16|float16"},
                   {.key = "master_weights", .type = OptionType::string, .default_value = "\"float32\"",
                    .doc = "Full fine-tuning in bfloat16 or float16: `float32` (mixed precision) keeps "
                           "fp32 master copies of the weights, which AdamW updates with fp32 gradients and "
                           "moments, and copies them into the model after each step; float16 adds dynamic "
                           "loss scaling. `none` updates the low-precision weights in place with "
                           "low-precision moments: 12 bytes less per parameter, but an update smaller than "
                           "half the gap between neighbouring bf16 values is lost. LoRA adapters are float32 either way.",
                    .choices = "float32|none"},
                   {.key = "gradient_checkpointing", .type = OptionType::boolean, .default_value = "false",
                    .doc = "Recompute each decoder layer in backward instead of keeping its activations."},
                   {.key = "logprob_chunk", .type = OptionType::integer, .default_value = "256",
                    .doc = "Positions per chunk when computing vocabulary log-probs (0: all at once).",
                    .min = 0},
                   {.key = "packing", .type = OptionType::boolean, .default_value = "false",
                    .doc = "Run a micro-batch's rows as one padding-free row (segment-id attention), with "
                           "the padded path's losses; pays when rows differ much in length."},
                   {.key = "logging_steps", .type = OptionType::integer, .default_value = "10",
                    .doc = "Optimizer steps per metrics line (metrics are averaged over the window).", .min = 1},
                   {.key = "eval_steps", .type = OptionType::integer, .default_value = "0",
                    .doc = "Evaluate on the eval split every this many steps, and at the end; 0: only "
                           "at the end (when there is an eval split).", .min = 0},
                   {.key = "per_device_eval_batch_size", .type = OptionType::integer, .default_value = "8",
                    .doc = "Examples per evaluation batch.", .min = 1},
                   {.key = "save_steps", .type = OptionType::integer, .default_value = "500",
                    .doc = "Write a checkpoint (run folder, checkpoint-STEP) every this many steps; 0: only at "
                           "the end and when SIGINT or SIGTERM stops the run. `alignkit train --resume RUN` "
                           "continues from the newest.", .min = 0},
                   {.key = "save_total_limit", .type = OptionType::integer, .default_value = "2",
                    .doc = "Checkpoints kept: older ones are deleted once a newer one is complete; 0 keeps "
                           "all.", .min = 0},
               }});
  s.push_back({"lora", "LoRA adapters on the policy (PEFT's names and defaults). Absent or enabled = false: full fine-tuning.",
               {
                   {.key = "enabled", .type = OptionType::boolean, .default_value = "true",
                    .doc = "Train LoRA adapters instead of every weight."},
                   {.key = "r", .type = OptionType::integer, .default_value = "8", .doc = "Adapter rank.",
                    .min = 1, .max = 65536},
                   {.key = "alpha", .type = OptionType::floating, .default_value = "8.0",
                    .doc = "lora_alpha: the update is scaled by alpha / r (or alpha / sqrt(r)).", .min = 0,
                    .min_exclusive = true},
                   {.key = "dropout", .type = OptionType::floating, .default_value = "0.0",
                    .doc = "Dropout on the adapter's input.", .min = 0, .max = 1, .max_exclusive = true},
                   {.key = "target_modules", .type = OptionType::string_list,
                    .default_value = "[\"q_proj\", \"k_proj\", \"v_proj\", \"o_proj\", \"gate_proj\", \"up_proj\", \"down_proj\"]",
                    .doc = "Projections to adapt, by name or name suffix."},
                   {.key = "use_rslora", .type = OptionType::boolean, .default_value = "false",
                    .doc = "Scale by alpha / sqrt(r) (rsLoRA)."},
                   {.key = "init_adapter", .type = OptionType::path,
                    .doc = "Start from this PEFT adapter (a folder with adapter_config.json) instead of a "
                           "fresh one; its config then sets r, alpha, dropout and target_modules, and "
                           "setting those keys as well is an error."},
               },
               {}, nullptr, false});
  s.push_back({"reference", "The frozen reference model of methods that need one (DPO, IPO, KTO).",
               {
                   {.key = "strategy", .type = OptionType::string, .default_value = "\"auto\"",
                    .doc = "`copy`: a frozen copy of the starting policy; `adapter-off`: the policy with "
                           "its LoRA adapters disabled (no second copy); `precomputed`: reference "
                           "log-probs computed in one pass before training; `auto`: adapter-off with "
                           "LoRA, else copy. Ignored by reference-free methods.",
                    .choices = "auto|copy|adapter-off|precomputed"},
                   {.key = "path", .type = OptionType::path,
                    .doc = "Reference model directory for `copy` (default: the policy's [model] path)."},
                   {.key = "precision", .type = OptionType::string,
                    .doc = "Compute dtype of a `copy` reference (default: [training] precision).",
                    .choices = "float32|bfloat16|float16"},
                   {.key = "quantization", .type = OptionType::string, .default_value = "\"none\"",
                    .doc = "Store a `copy` reference's projections as `int8`, `nf4` or `nf4-double-quant` "
                           "(it is frozen, so it needs no adapters).",
                    .choices = "none|int8|nf4|nf4-double-quant"},
                   {.key = "cache", .type = OptionType::path,
                    .doc = "File of `precomputed` reference log-probs (safetensors), keyed by the model, the "
                           "data and the tokenisation: reused when they match, refused naming what differs "
                           "when not, written when absent. Default: reference-logps.safetensors in the run "
                           "folder (a fresh run recomputes it; a resumed one reuses it)."},
               }});
  // The further models of online methods (a method declares them: OnlineSpec::reward_model,
  // value_model). Present only when the recipe has them.
  auto online_model = [](const char* name, const char* doc, const char* path_doc, const char* share_doc) {
    return SectionSchema{name, doc,
                         {
                             {.key = "path", .type = OptionType::path, .doc = path_doc},
                             {.key = "quantization", .type = OptionType::string, .default_value = "\"none\"",
                              .doc = "Store the model's projections as `int8`, `nf4` or `nf4-double-quant` (a quantized "
                                     "value model trains through adapters, so it needs [lora]).",
                              .choices = "none|int8|nf4|nf4-double-quant"},
                             {.key = "share_base", .type = OptionType::boolean, .default_value = "false",
                              .doc = share_doc},
                         },
                         {}, nullptr, false};
  };
  s.push_back(online_model("reward_model",
                           "The reward model of online methods (PPO): a sequence-classification model scoring each "
                           "generated completion at its last token; frozen.",
                           "Model directory (config.json with a ...ForSequenceClassification architecture, "
                           "num_labels 1); required unless share_base.",
                           "A LoRA adapter ([lora]'s r and targets) and a score head on the policy's base instead "
                           "of weights of its own."));
  s.push_back(online_model("value_model",
                           "The value model (critic) of PPO, trained with the policy. Default: the [reward_model] "
                           "settings, as TRL's examples start the value model from the reward model.",
                           "Model directory; default: [reward_model] path.",
                           "A LoRA adapter and a value head on the policy's base, trained with the policy."));
  s.push_back({"output", "What the run saves at the end, in <run>/final.",
               {
                   {.key = "save_adapter", .type = OptionType::boolean, .default_value = "true",
                    .doc = "With LoRA: the adapter in PEFT's format (final/adapter)."},
                   {.key = "save_model", .type = OptionType::boolean, .default_value = "true",
                    .doc = "The trained model in HF format with its tokenizer (final/model); with LoRA, "
                           "the adapter merged into the base."},
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
               {PluginKind::scheduler}, "name"});
  s.push_back({"method", "The alignment method: a loss plugin (offline: DPO, KTO, ...) or an online-method plugin (PPO, ...) and its options.",
               {
                   {.key = "name", .type = OptionType::string, .doc = "Method plugin, e.g. `dpo`.",
                    .required = true},
               },
               {PluginKind::loss, PluginKind::online_method}, "name", false, "method"});
  s.push_back({"model", "The policy model: a model-loader plugin and the model directory.",
               {
                   {.key = "loader", .type = OptionType::string, .default_value = "\"hf\"",
                    .doc = "Model-loader plugin."},
                   {.key = "path", .type = OptionType::path,
                    .doc = "Model directory (config.json and weights).", .required = true},
                   {.key = "tokenizer", .type = OptionType::path,
                    .doc = "Tokenizer directory (tokenizer.json); default: the model directory."},
                   {.key = "quantization", .type = OptionType::string, .default_value = "\"none\"",
                    .doc = "Store the frozen base's projections as `int8`, `nf4` or `nf4-double-quant` "
                           "(QLoRA; needs [lora]).",
                    .choices = "none|int8|nf4|nf4-double-quant"},
                   {.key = "attention", .type = OptionType::string, .default_value = "\"auto\"",
                    .doc = "`auto`: the fused attention kernel where it applies (fp32 on the CPU), "
                           "transformers' eager formulation elsewhere; `eager`: eager everywhere "
                           "(transformers' attn_implementation=\"eager\"; same values, more memory).",
                    .choices = "auto|eager"},
               },
               {PluginKind::model_loader}, "loader", false});
  s.push_back({"data", "Training data: a dataset plugin for the file format, and its options.",
               {
                   {.key = "format", .type = OptionType::string,
                    .doc = "Dataset plugin naming the data format.", .required = true},
                   {.key = "eval_fraction", .type = OptionType::floating, .default_value = "0.0",
                    .doc = "Fraction of the examples held out for evaluation (a seeded split).",
                    .min = 0, .max = 1, .max_exclusive = true},
                   {.key = "on_error", .type = OptionType::string, .default_value = "\"fail\"",
                    .doc = "A malformed record: `fail` stops with its file and line; `skip` counts it "
                           "and goes on (the count is reported).",
                    .choices = "fail|skip"},
               },
               {PluginKind::dataset}, "format", false});
  s.push_back({"judge", "A programmatic judge for `alignkit eval`: held-out prompts, greedy generation, a score per completion.",
               {
                   {.key = "name", .type = OptionType::string,
                    .doc = "Judge plugin, e.g. `task_api`.", .required = true},
                   {.key = "max_new_tokens", .type = OptionType::integer, .default_value = "64",
                    .doc = "Tokens generated at most per prompt (greedy; generation stops at EOS).",
                    .min = 1, .max = 1e6},
                   {.key = "batch_size", .type = OptionType::integer, .default_value = "32",
                    .doc = "Prompts generated together (left-padded, one KV cache).", .min = 1, .max = 1e6},
               },
               {PluginKind::judge}, "name", false});
  s.push_back({"plan", "The memory budget `train` and `plan` check the recipe against when no --gpu or --memory-gib is given.",
               {
                   {.key = "gpu", .type = OptionType::string,
                    .doc = "A GPU preset (`t4`, `l4`, `a100-80`, ...; `alignkit plan --help` lists them), or `auto` "
                           "for the free memory of the CUDA device the run uses."},
                   {.key = "memory_gib", .type = OptionType::floating,
                    .doc = "A budget in GiB instead of a preset (for [run] device = \"cpu\": of this machine's RAM).",
                    .min = 0, .min_exclusive = true},
               }});
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
    if (std::find(s.plugin_kinds.begin(), s.plugin_kinds.end(), kind) != s.plugin_kinds.end()) return &s;
  return nullptr;
}

}  // namespace alignkit
