// The memory planner: predicts the peak memory of a training run from the model's configuration,
// the method's declared needs and the recipe, before anything is loaded.
//
// One formula per component, each a small named function in memory_planner.cpp with its
// derivation; docs/memory-planner.md explains every one and cites the public facts behind them.
// The planner sizes what alignkit itself allocates (framework/host/trainer.cpp, the hf decoder,
// sdk/logprobs.cpp, sdk/lora.cpp, sdk/quantization.cpp), not what another framework would.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <alignkit/loss.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/online_method.hpp>

namespace alignkit {

struct ValidatedRecipe;

enum class Precision { fp32, bf16, fp16 };
enum class PlanDevice { cpu, cuda };
// How the reference model of a method that needs one is provided ([reference] strategy).
enum class PlanReference { none, copy, adapter_off, precomputed };

// What a method asks of a run, as the planner prices it: an offline loss's requirements, or an
// online method's spec (the models it needs, completions per prompt, tokens sampled).
struct MethodNeeds {
  MethodNeeds(const LossRequirements& requirements) : loss(requirements) {}  // NOLINT: either converts
  MethodNeeds(const OnlineSpec& spec) : online(spec) {}                      // NOLINT
  LossRequirements loss;             // an offline method's (default for an online one)
  std::optional<OnlineSpec> online;  // set: an online method

  bool reference_model() const { return online ? online->reference_model : loss.reference_model; }
};

// The recipe settings that decide memory. Defaults are the recipe schema's defaults.
// An online method's reward or value model ([reward_model], [value_model]): weights of its own,
// or (share_base) a LoRA adapter and a one-output head on the policy's base.
struct PlanOnlineModel {
  bool share_base = false;
  ModelDescription model;  // its own weights' shapes (the loader's describe()); unused when shared
  BaseQuantization quantization = BaseQuantization::none;
};

struct PlanSettings {
  std::int64_t micro_batch = 8;       // training.per_device_train_batch_size (examples)
  std::int64_t max_length = 1024;     // training.max_length (prompt + completion tokens)
  Precision precision = Precision::fp32;
  bool master_weights = true;         // training.master_weights = "float32" (bf16/fp16 full fine-tuning)
  bool gradient_checkpointing = false;
  std::int64_t logprob_chunk = 256;   // positions per log-prob chunk; 0 = all at once
  bool lora = false;
  std::int64_t lora_r = 8;
  double lora_dropout = 0.0;
  std::vector<std::string> lora_targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  BaseQuantization quantization = BaseQuantization::none;
  // Resolved: `auto` is adapter-off with LoRA, else copy. Methods without a reference ignore it.
  PlanReference reference = PlanReference::copy;
  Precision reference_precision = Precision::fp32;
  BaseQuantization reference_quantization = BaseQuantization::none;  // a `copy` reference's [reference] quantization
  PlanDevice device = PlanDevice::cpu;
  bool eager_attention = false;  // [model] attention = "eager"
  // Online methods: tokens generated per prompt (0: the method's max_completion_tokens), prompts
  // per rollout (0: micro_batch), and the further models the method declares.
  std::int64_t max_new_tokens = 0;
  std::int64_t rollout_batch = 0;
  PlanOnlineModel reward_model, value_model;
};

// A recipe's quantization name ("none", "int8", "nf4", "nf4-double-quant") as the enum.
BaseQuantization quantization_of(const std::string& name);

// Reads the settings from a validated recipe's [training], [lora], [model], [reference], [run],
// [reward_model] and [value_model]; the online models' shapes are left for the caller to fill
// from their loader (nothing is read from disk here).
PlanSettings settings_from_recipe(const ValidatedRecipe& recipe);

enum class PlanPhase { weights, optimizer, forward, backward, step, generation, runtime };
const char* phase_name(PlanPhase phase);

struct PlanComponent {
  std::string name;
  std::int64_t bytes = 0;
  PlanPhase phase = PlanPhase::weights;  // where it is allocated
  std::string formula;                   // the formula with its numbers, for the breakdown
  // Resident in these phases; a transient one lives only in its own phase, and transients of
  // one phase run one after another, so only the largest of them counts there.
  std::vector<PlanPhase> live;
  bool transient = false;
};

// What the plan is compared with.
struct MemoryBudget {
  std::string name;            // "t4", "memory-gib", "cpu (MemTotal)"
  std::int64_t bytes = 0;
  PlanDevice device = PlanDevice::cuda;
  std::string source;          // where the usable figure comes from
  // What the device already holds before the run's first tensor. CPU: this process's resident
  // memory when the budget was made (LibTorch, its runtimes and the plugins are loaded by then);
  // 0 on CUDA, where the planner adds the context instead.
  std::int64_t resident = 0;
};

struct GpuPreset {
  const char* name;
  double usable_gib;   // total capacity as PyTorch reports it (torch.cuda.get_device_properties)
  const char* source;  // a public report of that figure
};
const std::vector<GpuPreset>& gpu_presets();
// A preset by name ("t4", "a100-80", ...); nullopt for an unknown name.
std::optional<MemoryBudget> gpu_budget(const std::string& name);
MemoryBudget memory_gib_budget(double gib, PlanDevice device = PlanDevice::cuda);
// The machine's MemTotal from /proc/meminfo (0 bytes where it cannot be read), with this
// process's resident memory as what is held before the run.
MemoryBudget cpu_budget();

// This process's resident memory now (VmRSS) and its peak so far (VmHWM), from
// /proc/self/status; 0 where it cannot be read.
std::int64_t resident_bytes();
std::int64_t peak_resident_bytes();

struct PlanSuggestion {
  std::string change;        // what to set, in recipe words
  std::int64_t total = 0;    // the plan's peak with only this change
  std::int64_t saves = 0;    // current peak - total
  bool fits = false;
};

// The name of the component that stands for allocator overhead (both devices), so readers of a
// plan (memory.json, tests) can tell the tensors' peak from the margin.
inline constexpr std::string_view kAllocatorMarginComponent = "allocator margin";

struct MemoryPlan {
  ModelDescription model;
  MethodNeeds method = LossRequirements{};
  PlanSettings settings;
  std::vector<PlanComponent> components;
  std::int64_t peak = 0;          // bytes at the peak phase, margins included
  PlanPhase peak_phase = PlanPhase::forward;
  std::vector<std::pair<PlanPhase, std::int64_t>> phase_totals;  // forward, backward, step, generation
  MemoryBudget budget;
  bool fits = false;
  std::vector<PlanSuggestion> suggestions;  // ranked by what they save, largest first
};

// Plans a run. Pure arithmetic: a 70B configuration plans in microseconds. Suggestions are
// filled only when the plan does not fit the budget (each is the plan re-run with one change).
MemoryPlan plan_memory(const ModelDescription& model, const MethodNeeds& method, const PlanSettings& settings,
                       const MemoryBudget& budget);

// Bytes a [rows, cols] matrix takes under a base quantization (the arithmetic of
// Nf4Weight::storage_bytes and Int8Weight::storage_bytes; `none` is rows * cols * dtype bytes).
std::int64_t quantized_matrix_bytes(std::int64_t rows, std::int64_t cols, BaseQuantization q, std::int64_t dtype_bytes);
// Trainable LoRA parameters apply_lora attaches for these targets, by the decoder's module names.
std::int64_t lora_trainable_parameters(const ModelDescription& model, std::int64_t r,
                                       const std::vector<std::string>& targets);

// Renderings for `alignkit plan`: a fixed-width table in GiB (2 decimals) and a JSON document
// whose schema is documented in docs/memory-planner.md ("schema": "alignkit.memory-plan/1").
std::string render_plan_table(const MemoryPlan& plan);
nlohmann::json plan_to_json(const MemoryPlan& plan);

}  // namespace alignkit
