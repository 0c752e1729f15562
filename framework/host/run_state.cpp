#include "run_state.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/safetensors.hpp>

#include "fault_injection.hpp"

namespace alignkit {

namespace fs = std::filesystem;

namespace {

constexpr int kTrainerStateFormat = 1;

nlohmann::json read_trainer_state(const fs::path& file) {
  try {
    std::ifstream in(file);
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw_file_error(file.string(), fmt::format("is not a trainer state: {}", e.what()));
  }
}

}  // namespace

std::vector<std::size_t> DataPosition::next(std::size_t size, std::size_t examples) {
  std::vector<std::size_t> batch;
  while (batch.size() < size) {
    if (cursor >= order.size()) {
      order.resize(examples);
      std::iota(order.begin(), order.end(), std::size_t{0});
      std::shuffle(order.begin(), order.end(), shuffle_rng);
      cursor = 0;
    }
    batch.push_back(order[cursor++]);
    ++examples_seen;
    if (batch.size() == examples) break;  // fewer examples than a batch: one pass
  }
  return batch;
}

void save_checkpoint(const fs::path& run_dir, std::int64_t step, std::int64_t max_steps, const RunState& state,
                     const CheckpointParts& parts, std::int64_t keep) {
  const auto start = std::chrono::steady_clock::now();
  const auto target = run_dir / fmt::format("checkpoint-{}", step);
  if (fs::exists(target / "trainer_state.json")) return;  // resumed from this very step
  AtomicDirectory folder(target);
  const auto& dir = folder.staging();
  parts.optimizer.save(dir, [] { fault_point("checkpoint-file"); });
  std::vector<std::pair<std::string, torch::Tensor>> rng{{"cpu", at::detail::getDefaultCPUGenerator().get_state()}};
  if (parts.device.is_cuda()) rng.emplace_back("cuda", at::globalContext().defaultGenerator(parts.device).get_state());
  safetensors::save(dir / "rng_state.safetensors", rng);
  fault_point("checkpoint-file");
  const auto method_state = call_plugin(*parts.method.plugin, "to save its state", parts.method.save);
  if (!method_state.empty()) {
    safetensors::save(dir / "loss_state.safetensors", {method_state.begin(), method_state.end()});
    fault_point("checkpoint-file");
  }
  if (parts.models.lora()) {
    parts.models.save_adapter(dir / "adapter");
    fault_point("checkpoint-file");
  }
  std::ostringstream shuffle_state;
  shuffle_state << state.data.shuffle_rng;
  nlohmann::json json = {
      {"format", kTrainerStateFormat},
      {"step", step},
      {"max_steps", max_steps},
      {"examples", parts.examples_hash},
      {"trainable", parts.optimizer.names()},
      {"examples_seen", state.data.examples_seen},
      {"cursor", state.data.cursor},
      {"order", state.data.order},
      {"shuffle_rng", shuffle_state.str()},
      {"window", state.window.to_json()},
  };
  if (auto scaler = parts.optimizer.scaler_state()) json["loss_scaler"] = *scaler;
  write_file_atomically(dir / "trainer_state.json", json.dump(1));
  fault_point("checkpoint-file");
  fault_point("checkpoint-commit");
  folder.commit();
  fault_point("checkpoint-prune");
  prune_checkpoints(run_dir, keep);
  std::cerr << fmt::format("checkpoint: {} ({:.1f}s)\n", target.string(),
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

std::int64_t restore_checkpoint(const CheckpointFolder& c, RunState& state, const CheckpointParts& parts) {
  const auto state_file = c.path / "trainer_state.json";
  const auto json = read_trainer_state(state_file);
  auto refuse = [&](const std::string& what) {
    throw_file_error(c.path.string(), what, "resume with the recipe the run was started with (its recipe.toml)");
  };
  try {
    if (json.at("format").get<int>() != kTrainerStateFormat)
      throw_file_error(state_file.string(), fmt::format("is format {}; this alignkit reads format {}",
                                                        json.at("format").get<int>(), kTrainerStateFormat));
    if (json.at("examples").get<std::string>() != parts.examples_hash)
      refuse("was written for other training data (the examples as tokenized differ from this run's)");
    if (json.at("trainable").get<std::vector<std::string>>() != parts.optimizer.names())
      refuse("was written for other trainable parameters (did [lora] or the model change?)");
    parts.optimizer.restore(c.path, refuse);
    if (json.contains("loss_scaler")) parts.optimizer.restore_scaler(json["loss_scaler"]);
    const auto rng = safetensors::File::open(c.path / "rng_state.safetensors");
    // Generators are handles: a copy sets the shared state.
    auto cpu_generator = at::detail::getDefaultCPUGenerator();
    cpu_generator.set_state(rng.tensor("cpu").clone());
    if (parts.device.is_cuda() && rng.find("cuda")) {
      auto cuda_generator = at::globalContext().defaultGenerator(parts.device);
      cuda_generator.set_state(rng.tensor("cuda").clone());
    }
    if (fs::exists(c.path / "loss_state.safetensors")) {
      const auto file = safetensors::File::open(c.path / "loss_state.safetensors");
      std::map<std::string, torch::Tensor> method_state;
      for (const auto& t : file.header().tensors) method_state[t.name] = file.tensor(t.name).clone();
      call_plugin(*parts.method.plugin, "to restore its state", [&] { parts.method.load(method_state); });
    }
    state.data.examples_seen = json.at("examples_seen").get<std::int64_t>();
    state.data.cursor = json.at("cursor").get<std::size_t>();
    state.data.order = json.at("order").get<std::vector<std::size_t>>();
    std::istringstream(json.at("shuffle_rng").get<std::string>()) >> state.data.shuffle_rng;
    state.window.from_json(json.at("window"));
  } catch (const nlohmann::json::exception& e) {
    throw_file_error(state_file.string(), fmt::format("is not a trainer state: {}", e.what()));
  }
  const auto step = json.at("step").get<std::int64_t>();
  std::cerr << fmt::format("resume: from {} (step {})\n", c.path.string(), step);
  return step;
}

std::pair<std::int64_t, std::int64_t> checkpoint_progress(const CheckpointFolder& c) {
  const auto file = c.path / "trainer_state.json";
  const auto json = read_trainer_state(file);
  try {
    return {json.at("step").get<std::int64_t>(), json.at("max_steps").get<std::int64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw_file_error(file.string(), fmt::format("is not a trainer state: {}", e.what()));
  }
}

}  // namespace alignkit
