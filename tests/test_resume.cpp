// Long runs that never lose work: checkpoints written whole or not at all, `train --resume`
// giving the same metrics as a run never interrupted, SIGTERM/SIGINT finishing the step and
// checkpointing, and the precomputed-reference cache refusing what it was not made for.
//
// Crashes are injected at named points (ALIGNKIT_FAULT, framework/host/fault_injection.hpp), so
// every kill lands where the test says, including in the middle of writing a checkpoint.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/safetensors.hpp>

#include "host/run_checkpoint.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::read_jsonl;
using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kLlama = testing::source_dir() / "tests/fixtures/oracle/llama";
const fs::path kLlamaTied = testing::source_dir() / "tests/fixtures/oracle/llama_tied";

// Eight pairs: with two pairs a micro-batch, the run crosses epochs and reshuffles, so the data
// position matters.
using testing::token_id_pairs;

// A DPO recipe (or `method`'s [method] body) on the oracle llama writing to <dir>/<output>;
// `training` adds [training] keys and `extra` other sections.
fs::path write_recipe(const TempDir& dir, const std::string& name, const std::string& output, const std::string& extra,
                      const std::string& training = "", const std::string& method = "name = \"dpo\"\nbeta = 0.1\n") {
  if (!fs::exists(dir.path() / "tok"))
    EXPECT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "tok").string()})
                  .exit_code,
              0);
  if (!fs::exists(dir.path() / "pairs.jsonl")) dir.write("pairs.jsonl", token_id_pairs());
  return dir.write(name, fmt::format("[run]\noutput_dir = \"{}\"\n[training]\nmax_steps = 8\nper_device_train_batch_size = 2\n"
                                     "logging_steps = 2\n{}[optimizer]\nlearning_rate = 1e-2\n"
                                     "[method]\n{}[model]\npath = \"{}\"\ntokenizer = \"tok\"\n"
                                     "[data]\nformat = \"jsonl\"\npath = \"pairs.jsonl\"\neval_fraction = 0.25\n"
                                     "[output]\nsave_model = false\n{}",
                                     output, training.find("save_steps") == std::string::npos ? training + "save_steps = 3\n" : training,
                                     method, kLlama.string(), extra));
}

using testing::expect_same_metrics;

// Every checkpoint folder present is complete and readable.
void expect_complete_checkpoints(const fs::path& run_dir) {
  for (const auto& c : list_checkpoints(run_dir)) {
    std::ifstream in(c.path / "trainer_state.json");
    const auto state = nlohmann::json::parse(in);
    EXPECT_EQ(state.at("step").get<std::int64_t>(), c.step);
    for (const char* file : {"trainable.safetensors", "optimizer.safetensors", "rng_state.safetensors"})
      EXPECT_NO_THROW(safetensors::File::open(c.path / file)) << c.path / file;
  }
}

const char* const kLoraWithDropout =
    "[lora]\nr = 4\nalpha = 8\ndropout = 0.1\ntarget_modules = [\"q_proj\", \"v_proj\", \"down_proj\"]\n";

TEST(Resume, ResumedRunEqualsTheUninterruptedOneStepForStep) {
  // LoRA with dropout, so the random state must come back too; the adapter-off reference.
  TempDir dir;
  const auto whole = write_recipe(dir, "whole.toml", "whole", kLoraWithDropout);
  const auto cut = write_recipe(dir, "cut.toml", "cut", kLoraWithDropout);
  auto r = testing::run_alignkit({"train", whole.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Killed after step 5: the newest checkpoint is step 3, in the middle of a logging window.
  r = testing::run_alignkit({"train", cut.string()}, {"ALIGNKIT_FAULT=step:5:KILL"});
  ASSERT_EQ(r.exit_code, 128 + SIGKILL) << r.output;
  ASSERT_EQ(latest_checkpoint(dir.path() / "cut")->step, 3);
  r = testing::run_alignkit({"train", "--resume", (dir.path() / "cut").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resume: from"), std::string::npos) << r.output;
  expect_same_metrics(dir.path() / "whole/metrics.jsonl", dir.path() / "cut/metrics.jsonl");
  ASSERT_EQ(read_jsonl(dir.path() / "cut/metrics.jsonl").size(), 4u);
  // The final adapters are the same numbers.
  const auto a = safetensors::File::open(dir.path() / "whole/final/adapter/adapter_model.safetensors");
  const auto b = safetensors::File::open(dir.path() / "cut/final/adapter/adapter_model.safetensors");
  ASSERT_EQ(a.header().tensors.size(), b.header().tensors.size());
  for (const auto& t : a.header().tensors) EXPECT_TRUE(torch::equal(a.tensor(t.name), b.tensor(t.name))) << t.name;
}

// A reward model from a causal LM: the resumed run draws its fresh score head again, and the
// checkpoint's trained head replaces it.
TEST(Resume, RewardModelResumesItsTrainedScoreHead) {
  TempDir dir;
  const std::string reward = "name = \"reward\"\n";
  const auto whole = write_recipe(dir, "whole.toml", "whole", "", "", reward);
  const auto cut = write_recipe(dir, "cut.toml", "cut", "", "", reward);
  auto r = testing::run_alignkit({"train", whole.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_alignkit({"train", cut.string()}, {"ALIGNKIT_FAULT=step:5:KILL"});
  ASSERT_EQ(r.exit_code, 128 + SIGKILL) << r.output;
  r = testing::run_alignkit({"train", "--resume", (dir.path() / "cut").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_metrics(dir.path() / "whole/metrics.jsonl", dir.path() / "cut/metrics.jsonl");
  const auto metrics = read_jsonl(dir.path() / "cut/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 4u);
  EXPECT_TRUE(metrics.back().contains("accuracy"));
  EXPECT_TRUE(metrics.back().contains("eval_accuracy"));
}

TEST(Resume, MixedPrecisionResumesFromTheFloat32Masters) {
  // bf16 full fine-tuning with fp32 master weights: the checkpoint holds the masters, not the
  // bf16 weights rounded from them, so the resumed run goes on from the same fp32 numbers.
  TempDir dir;
  const std::string training = "precision = \"bfloat16\"\n";
  const auto whole = write_recipe(dir, "whole.toml", "whole", "", training);
  const auto cut = write_recipe(dir, "cut.toml", "cut", "", training);
  auto r = testing::run_alignkit({"train", whole.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_alignkit({"train", cut.string()}, {"ALIGNKIT_FAULT=step:5:KILL"});
  ASSERT_EQ(r.exit_code, 128 + SIGKILL) << r.output;
  const auto checkpoint = latest_checkpoint(dir.path() / "cut");
  ASSERT_EQ(checkpoint->step, 3);
  const auto masters = safetensors::File::open(checkpoint->path / "trainable.safetensors");
  for (const auto& t : masters.header().tensors) EXPECT_EQ(masters.tensor(t.name).scalar_type(), torch::kFloat32) << t.name;
  r = testing::run_alignkit({"train", "--resume", (dir.path() / "cut").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_metrics(dir.path() / "whole/metrics.jsonl", dir.path() / "cut/metrics.jsonl");
  const auto a = safetensors::File::open(dir.path() / "whole/checkpoint-8/trainable.safetensors");
  const auto b = safetensors::File::open(dir.path() / "cut/checkpoint-8/trainable.safetensors");
  for (const auto& t : a.header().tensors) EXPECT_TRUE(torch::equal(a.tensor(t.name), b.tensor(t.name))) << t.name;
}

TEST(Resume, KilledAnywhereIncludingMidCheckpointResumesFromTheLastCompleteOne) {
  // Full fine-tuning with the precomputed reference (cached in the run folder and reused on resume).
  TempDir dir;
  const std::string extra = "[reference]\nstrategy = \"precomputed\"\n", training = "save_total_limit = 1\n";
  const auto whole = write_recipe(dir, "whole.toml", "whole", extra, training);
  auto r = testing::run_alignkit({"train", whole.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Checkpoints at steps 3, 6 and 8, four files each: the points a kill can land on, a few drawn
  // with a fixed seed, plus the ones that matter most (mid-write of the second checkpoint, and
  // between its rename and the deletion of the first).
  std::vector<std::string> faults = {"checkpoint-file:6:KILL", "checkpoint-prune:2:KILL", "checkpoint-commit:1:KILL"};
  std::mt19937 rng(7);
  faults.push_back(fmt::format("step:{}:KILL", std::uniform_int_distribution<int>(4, 7)(rng)));
  faults.push_back(fmt::format("checkpoint-file:{}:KILL", std::uniform_int_distribution<int>(1, 11)(rng)));
  for (std::size_t i = 0; i < faults.size(); ++i) {
    SCOPED_TRACE(faults[i]);
    const auto output = fmt::format("cut{}", i);
    const auto recipe = write_recipe(dir, output + ".toml", output, extra, training);
    r = testing::run_alignkit({"train", recipe.string()}, {"ALIGNKIT_FAULT=" + faults[i]});
    ASSERT_EQ(r.exit_code, 128 + SIGKILL) << r.output;
    expect_complete_checkpoints(dir.path() / output);
    if (!latest_checkpoint(dir.path() / output)) {
      // Killed before the first checkpoint was complete: nothing to resume, and saying so.
      r = testing::run_alignkit({"train", "--resume", (dir.path() / output).string()});
      EXPECT_EQ(r.exit_code, 1);
      EXPECT_NE(r.output.find("has no checkpoint to resume from"), std::string::npos) << r.output;
      continue;
    }
    r = testing::run_alignkit({"train", "--resume", (dir.path() / output).string()});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("reused from"), std::string::npos) << r.output;
    expect_same_metrics(dir.path() / "whole/metrics.jsonl", dir.path() / output / "metrics.jsonl");
    // Only the newest checkpoint is kept (save_total_limit = 1), and no temporary folder is left.
    const auto left = list_checkpoints(dir.path() / output);
    ASSERT_EQ(left.size(), 1u);
    EXPECT_EQ(left[0].step, 8);
    for (const auto& entry : fs::directory_iterator(dir.path() / output))
      EXPECT_NE(entry.path().filename().string().rfind(".checkpoint-", 0), 0u) << entry.path();
  }
}

TEST(Resume, SigtermFinishesTheStepWritesACheckpointAndExits) {
  TempDir dir;
  const auto whole = write_recipe(dir, "whole.toml", "whole", "");
  const auto cut = write_recipe(dir, "cut.toml", "cut", "");
  auto r = testing::run_alignkit({"train", whole.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The signal arrives during step 4; the step completes and is checkpointed although save_steps is 3.
  r = testing::run_alignkit({"train", cut.string()}, {"ALIGNKIT_FAULT=step:4:TERM"});
  ASSERT_EQ(r.exit_code, 128 + SIGTERM) << r.output;
  EXPECT_NE(r.output.find("stopped by SIGTERM after step 4"), std::string::npos) << r.output;
  EXPECT_EQ(latest_checkpoint(dir.path() / "cut")->step, 4);
  EXPECT_FALSE(fs::exists(dir.path() / "cut/final"));
  // A fresh run may not start over the unfinished one.
  r = testing::run_alignkit({"train", cut.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("holds checkpoint-4 of an unfinished run (step 4 of 8)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  r = testing::run_alignkit({"train", "--resume", (dir.path() / "cut").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_metrics(dir.path() / "whole/metrics.jsonl", dir.path() / "cut/metrics.jsonl");
  // A finished run's folder may be reused: its checkpoints are replaced by the new run's.
  r = testing::run_alignkit({"train", cut.string(), "--set", "training.save_steps=0"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto left = list_checkpoints(dir.path() / "cut");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].step, 8);
}

TEST(Resume, SignalFromAnotherProcessStopsTheRunCleanly) {
  // A real SIGTERM from outside, sent once the run has written a checkpoint (any: older ones are
  // pruned, so a fast run may be past checkpoint-2 before the shell looks).
  TempDir dir;
  const auto recipe = write_recipe(dir, "long.toml", "long", "", "save_steps = 2\n");
  const auto script = fmt::format(
      "'{}' train '{}' --set training.max_steps=100000 2>'{}' & pid=$!\n"
      "for i in $(seq 6000); do compgen -G '{}/checkpoint-*' >/dev/null && break; kill -0 $pid 2>/dev/null || break; "
      "sleep 0.05; done\n"
      "kill -TERM $pid; wait $pid; echo \"exit $?\"\n",
      ALIGNKIT_BINARY, recipe.string(), (dir.path() / "stderr").string(), (dir.path() / "long").string());
  const auto r = testing::run_command({"bash", "-c", script});
  EXPECT_NE(r.stdout_text.find(fmt::format("exit {}", 128 + SIGTERM)), std::string::npos) << r.output;
  std::ifstream err(dir.path() / "stderr");
  const std::string log((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("stopped by SIGTERM"), std::string::npos) << log;
  const auto latest = latest_checkpoint(dir.path() / "long");
  ASSERT_TRUE(latest);
  EXPECT_GE(latest->step, 2);
  expect_complete_checkpoints(dir.path() / "long");
  // The run stopped where its checkpoint is: the metrics end at or before it.
  const auto lines = read_jsonl(dir.path() / "long/metrics.jsonl");
  ASSERT_FALSE(lines.empty());
  EXPECT_LE(lines.back()["step"].get<std::int64_t>(), latest->step);
}

TEST(Resume, CommandLineMistakesAreUsageErrors) {
  TempDir dir;
  const auto recipe = write_recipe(dir, "r.toml", "run", "");
  auto r = testing::run_alignkit({"train", recipe.string(), "--resume", (dir.path() / "run").string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = testing::run_alignkit({"train", "--resume", dir.path().string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("is not a run folder"), std::string::npos) << r.output;
}

TEST(ReferenceCache, MatchingCacheIsReusedAndAnyOtherIsRefusedNamingWhatDiffers) {
  TempDir dir;
  const std::string cache = "[reference]\nstrategy = \"precomputed\"\ncache = \"ref.safetensors\"\n";
  auto r = testing::run_alignkit({"train", write_recipe(dir, "a.toml", "a", cache).string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("precomputed in"), std::string::npos) << r.output;
  ASSERT_TRUE(fs::exists(dir.path() / "ref.safetensors"));
  // Another run with the same model, data and tokenisation: reused, and the same numbers.
  r = testing::run_alignkit({"train", write_recipe(dir, "b.toml", "b", cache).string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("reused from"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("precomputed in"), std::string::npos) << r.output;
  expect_same_metrics(dir.path() / "a/metrics.jsonl", dir.path() / "b/metrics.jsonl");

  auto refused = [&](const std::string& name, const std::vector<std::string>& sets, const std::string& differing) {
    SCOPED_TRACE(name);
    std::vector<std::string> args = {"train", write_recipe(dir, name + ".toml", name, cache).string()};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    const auto refusal = testing::run_alignkit(args);
    EXPECT_EQ(refusal.exit_code, 1) << refusal.output;
    EXPECT_NE(refusal.output.find("were made for another " + differing), std::string::npos) << refusal.output;
    EXPECT_NE(refusal.output.find("ref.safetensors"), std::string::npos) << refusal.output;
  };
  // Other data: the data file and therefore the examples.
  refused("data", {"data.path=" + dir.write("other.jsonl", token_id_pairs(1)).string()}, "data, examples");
  // Another model with the same vocabulary.
  refused("model", {fmt::format("model.path={}", kLlamaTied.string())}, "model");
  // Another tokenisation setting that truncates nothing here: only that part differs.
  refused("tokenization", {"training.max_length=500"}, "tokenization");
  // The cache is left as it was, and still reused by a matching run.
  r = testing::run_alignkit({"train", write_recipe(dir, "c.toml", "c", cache).string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("reused from"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace alignkit
