// What a checkpoint saves and restores of a run, beyond the files of its parts: where the loop
// stands in the data and in the logging window (RunState), written with the trained tensors,
// AdamW's moments, the RNG state, the method's own state and the adapter into checkpoint-STEP/,
// whole or not at all. Both loops checkpoint through these.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <torch/types.h>

#include "optimizer_step.hpp"
#include "plugin_registry.hpp"
#include "run_checkpoint.hpp"
#include "run_models.hpp"
#include "step_metrics.hpp"

namespace alignkit {

// The loop's position in its data: a seeded shuffle per epoch, drawn from in order.
struct DataPosition {
  std::mt19937_64 shuffle_rng;
  std::vector<std::size_t> order;  // this epoch's permutation
  std::size_t cursor = 0;          // next index into order
  std::int64_t examples_seen = 0;  // over all epochs (epoch = examples_seen / examples)

  // The next `size` indices of `examples` (fewer than a batch: one pass): a fresh std::shuffle
  // with mt19937_64 each epoch (the same seed gives the same order, not the order transformers'
  // RandomSampler would draw).
  std::vector<std::size_t> next(std::size_t size, std::size_t examples);
};

struct RunState {
  DataPosition data;
  StepWindow window;
};

// The method's state between steps (Loss::state or OnlineMethod::state), through call_plugin.
struct MethodState {
  const PluginRecord* plugin = nullptr;
  std::function<std::map<std::string, torch::Tensor>()> save;
  std::function<void(const std::map<std::string, torch::Tensor>&)> load;
};

// What a checkpoint holds besides RunState. `examples_hash` identifies the training data as
// tokenized: a checkpoint of other data is refused.
struct CheckpointParts {
  OptimizerStep& optimizer;
  RunModels& models;
  MethodState method;
  std::string examples_hash;
  torch::Device device;
};

// checkpoint-STEP/: trainable.safetensors, optimizer.safetensors, rng_state.safetensors,
// loss_state.safetensors (when the method keeps state), adapter/ (with LoRA) and
// trainer_state.json, written last; then older checkpoints are pruned to `keep`.
void save_checkpoint(const std::filesystem::path& run_dir, std::int64_t step, std::int64_t max_steps,
                     const RunState& state, const CheckpointParts& parts, std::int64_t keep);

// Puts the run back where checkpoint `c` left it; returns its step.
std::int64_t restore_checkpoint(const CheckpointFolder& c, RunState& state, const CheckpointParts& parts);

// The step and planned length a checkpoint records.
std::pair<std::int64_t, std::int64_t> checkpoint_progress(const CheckpointFolder& c);

}  // namespace alignkit
