// Multi-stage recipes: [[stage]] entries run in order in one run folder, each stage's model
// starting from the previous stage's final/model; per-stage keys, --set over every stage, errors
// pointing at the stage's own lines, and kill/SIGTERM/--resume across stages.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "host/recipe_loader.hpp"
#include "host/run_checkpoint.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::expect_same_metrics;
using testing::read_jsonl;
using testing::run_alignkit;
using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kLlama = testing::source_dir() / "tests/fixtures/oracle/llama";

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The shared sections of the test recipes: the oracle llama, init-model's byte-level tokenizer
// (same EOS and pad), token-id pairs, a checkpoint every 2 steps.
std::string base_sections(const TempDir& dir, const std::string& output) {
  if (!fs::exists(dir.path() / "tok"))
    EXPECT_EQ(run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "tok").string()})
                  .exit_code,
              0);
  if (!fs::exists(dir.path() / "pairs.jsonl")) dir.write("pairs.jsonl", testing::token_id_pairs());
  return fmt::format("[run]\noutput_dir = \"{}\"\n[model]\npath = \"{}\"\ntokenizer = \"tok\"\n"
                     "[data]\nformat = \"jsonl\"\npath = \"pairs.jsonl\"\n"
                     "[training]\nper_device_train_batch_size = 2\nlogging_steps = 2\nsave_steps = 2\n"
                     "[optimizer]\nlearning_rate = 1e-2\n",
                     output, kLlama.string());
}

// SFT for 4 steps, then DPO (beta 0.1, a frozen copy as reference) for 4, logging every step.
const char* const kSftThenDpo =
    "\n[[stage]]\nname = \"sft\"\n[stage.method]\nname = \"sft\"\n[stage.training]\nmax_steps = 4\n"
    "\n[[stage]]\nname = \"dpo\"\n[stage.method]\nname = \"dpo\"\nbeta = 0.1\n"
    "[stage.training]\nmax_steps = 4\nlogging_steps = 1\n[stage.optimizer]\nlearning_rate = 1e-3\n";

fs::path write_staged(const TempDir& dir, const std::string& name, const std::string& output) {
  return dir.write(name, base_sections(dir, output) + kSftThenDpo);
}

// A TOML text without its comment lines (the effective recipes' headers name their sources).
std::string without_comments(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);)
    if (line.rfind('#', 0) != 0) out += line + "\n";
  return out;
}

// The value a derived stage tree holds at `path`, as TOML text.
std::string value_at(const RecipeTree& tree, const KeyPath& path) {
  const auto it = tree.leaves.find(path);
  if (it == tree.leaves.end()) return "(absent)";
  std::ostringstream out;
  it->second.value->visit([&](const auto& v) { out << v; });
  return out.str();
}

TEST(Stages, StageTreesLayerSharedKeysStageKeysAndOverridesInThatOrder) {
  TempDir dir;
  dir.write("base.toml", "[optimizer]\nlearning_rate = 1.0\n[[stage]]\nname = \"a\"\n[[stage]]\nname = \"b\"\n");
  // Including a file with stages keeps them; a file writing its own replaces them.
  auto tree = load_recipe(dir.write("keeps.toml", "include = \"base.toml\"\n[training]\nmax_steps = 3\n"));
  ASSERT_EQ(tree.stages.size(), 2u);
  EXPECT_EQ(stage_name(tree, 1), "b");
  tree = load_recipe(dir.write("replaces.toml", "include = \"base.toml\"\n[[stage]]\n[stage.optimizer]\n"
                                                "learning_rate = 2.0\n[[stage]]\nname = \"c\"\n"));
  ASSERT_EQ(tree.stages.size(), 2u);
  EXPECT_EQ(stage_name(tree, 0), "stage-1");
  EXPECT_EQ(stage_name(tree, 1), "c");
  EXPECT_EQ(tree.stages[0].where.line, 2);  // the [[stage]] header
  EXPECT_EQ(value_at(stage_tree(tree, 0), {"optimizer", "learning_rate"}), "2.0");  // the stage's over the shared
  EXPECT_EQ(value_at(stage_tree(tree, 1), {"optimizer", "learning_rate"}), "1.0");
  EXPECT_EQ(value_at(stage_tree(tree, 0), {"name"}), "(absent)");  // a stage's name is not a recipe key

  // --set: a plain override wins over the stage's keys in every stage; a stage's own only there;
  // in order, so the last one for a key wins.
  tree = load_recipe(dir.path() / "replaces.toml",
                     {"stage.c.optimizer.learning_rate=4.0", "optimizer.learning_rate=3.0", "stage.c.training.max_steps=9"});
  EXPECT_EQ(value_at(stage_tree(tree, 0), {"optimizer", "learning_rate"}), "3.0");
  EXPECT_EQ(value_at(stage_tree(tree, 1), {"optimizer", "learning_rate"}), "3.0");
  EXPECT_EQ(value_at(stage_tree(tree, 0), {"training", "max_steps"}), "(absent)");
  EXPECT_EQ(value_at(stage_tree(tree, 1), {"training", "max_steps"}), "9");
  // What a stage inherits sits between the shared keys and its own.
  tree = load_recipe(dir.path() / "replaces.toml");
  RecipeLeaf inherited = tree.leaves.at({"optimizer", "learning_rate"});
  inherited.value = std::make_shared<toml::value<double>>(5.0);
  const std::map<KeyPath, RecipeLeaf> from_previous = {{{"optimizer", "learning_rate"}, inherited}};
  EXPECT_EQ(value_at(stage_tree(tree, 0, from_previous), {"optimizer", "learning_rate"}), "2.0");
  EXPECT_EQ(value_at(stage_tree(tree, 1, from_previous), {"optimizer", "learning_rate"}), "5.0");
}

TEST(Stages, SftThenDpoChainsTheModelInOneRunFolder) {
  TempDir dir;
  const auto recipe = write_staged(dir, "staged.toml", "run");
  auto r = run_alignkit({"train", recipe.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path run = dir.path() / "run";
  EXPECT_NE(r.output.find("(2 stages: sft, dpo)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stage 1/2 'sft': starting in " + (run / "sft").string()), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stage 2/2 'dpo': done, 4 steps"), std::string::npos) << r.output;
  for (const char* stage : {"sft", "dpo"}) {
    EXPECT_TRUE(fs::exists(run / stage / "final/model/model.safetensors")) << stage;
    EXPECT_EQ(latest_checkpoint(run / stage)->step, 4) << stage;
  }
  EXPECT_EQ(read_jsonl(run / "sft/metrics.jsonl").size(), 2u);  // logging_steps = 2 from the shared [training]

  // The DPO stage starts from the SFT stage's final model, as its own recipe.toml says, and its
  // reference is a copy of that model: the first step's loss is log 2 (policy = reference).
  const auto sft_model = fs::absolute(run / "sft/final/model").lexically_normal().string();
  EXPECT_NE(read_file(run / "dpo/recipe.toml").find("path = '" + sft_model + "'"), std::string::npos)
      << read_file(run / "dpo/recipe.toml");
  const auto dpo = read_jsonl(run / "dpo/metrics.jsonl");
  ASSERT_EQ(dpo.size(), 4u);  // the stage's own logging_steps = 1
  constexpr double kLossTolerance = 1e-6;  // fp32 log-sigmoid of exactly 0
  EXPECT_NEAR(dpo[0]["loss"].get<double>(), std::log(2.0), kLossTolerance);
  EXPECT_DOUBLE_EQ(dpo[0]["learning_rate"].get<double>(), 1e-3);  // the stage's [optimizer] over the shared one

  // The same DPO as a single recipe from the saved SFT model gives the same numbers: the stage's
  // weights started where SFT ended.
  const auto single = dir.write("single.toml", base_sections(dir, "single") +
                                                   "[method]\nname = \"dpo\"\nbeta = 0.1\n[output]\nsave_model = false\n");
  r = run_alignkit({"train", single.string(), "--set", "model.path=" + sft_model, "--set", "training.max_steps=4",
                    "--set", "training.logging_steps=1", "--set", "optimizer.learning_rate=1e-3"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_metrics(dir.path() / "single/metrics.jsonl", run / "dpo/metrics.jsonl");

  // RUN/recipe.toml is the whole run's effective recipe and loads back to the same stages.
  const std::string effective = read_file(run / "recipe.toml");
  EXPECT_NE(effective.find("[[stage]]\nname = 'sft'"), std::string::npos) << effective;
  r = run_alignkit({"recipe", "show", (run / "recipe.toml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(without_comments(r.stdout_text), without_comments(effective));
}

TEST(Stages, StageKeysOverrideTheSharedOnesAndSetOverridesWinEverywhere) {
  TempDir dir;
  const auto recipe = write_staged(dir, "staged.toml", "run");
  auto show = [&](const std::vector<std::string>& sets) {
    std::vector<std::string> args = {"recipe", "show", recipe.string()};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    auto r = run_alignkit(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.stdout_text;
  };
  auto stage_text = [](const std::string& text, const std::string& name) {
    const auto start = text.find("[[stage]]\nname = '" + name + "'");
    EXPECT_NE(start, std::string::npos) << text;
    return text.substr(start, text.find("[[stage]]", start + 1) - start);
  };
  auto text = show({});
  EXPECT_NE(stage_text(text, "sft").find("\nlearning_rate = 0.01\n"), std::string::npos) << text;
  EXPECT_NE(stage_text(text, "dpo").find("\nlearning_rate = 0.001\n"), std::string::npos) << text;
  EXPECT_NE(stage_text(text, "sft").find("\n[stage.method]\nname = 'sft'\n"), std::string::npos) << text;
  // The run's folder is written once, at the top; no stage carries it.
  EXPECT_NE(text.find("\n[run]\nname = 'alignkit-run'\noutput_dir = '"), std::string::npos) << text;
  EXPECT_EQ(stage_text(text, "sft").find("output_dir"), std::string::npos) << text;

  // A plain --set wins over the stages' own keys; a stage's --set applies to that stage only.
  text = show({"optimizer.learning_rate=0.5", "stage.dpo.training.max_steps=7"});
  EXPECT_NE(stage_text(text, "sft").find("\nlearning_rate = 0.5\n"), std::string::npos) << text;
  EXPECT_NE(stage_text(text, "dpo").find("\nlearning_rate = 0.5\n"), std::string::npos) << text;
  EXPECT_NE(stage_text(text, "sft").find("\nmax_steps = 4\n"), std::string::npos) << text;
  EXPECT_NE(stage_text(text, "dpo").find("\nmax_steps = 7\n"), std::string::npos) << text;

  // check and plan report every stage; plan sizes the later stage from the model it starts from.
  auto r = run_alignkit({"recipe", "check", recipe.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("ok, 2 stages"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("stage 2/2 'dpo', from the model of 'sft'"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("[method] loss 'dpo'"), std::string::npos) << r.stdout_text;
  r = run_alignkit({"plan", recipe.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("stage 1/2 'sft': " + kLlama.string()), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("stage 2/2 'dpo': sized from " + kLlama.string()), std::string::npos) << r.stdout_text;
  r = run_alignkit({"recipe", "schedule", recipe.string(), "--stage", "dpo"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::count(r.stdout_text.begin(), r.stdout_text.end(), '\n'), 5);  // header + 4 steps
  EXPECT_EQ(run_alignkit({"recipe", "schedule", recipe.string()}).exit_code, 2);  // which stage?
}

TEST(Stages, MistakesInStagesAreReportedAtTheirLines) {
  TempDir dir;
  const std::string base = base_sections(dir, "run");
  const int first = static_cast<int>(std::count(base.begin(), base.end(), '\n')) + 1;  // the first stage line
  auto check = [&](const std::string& stages, const std::vector<std::string>& sets = {}) {
    std::vector<std::string> args = {"recipe", "check", dir.write("r.toml", base + stages).string()};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    return run_alignkit(args);
  };
  const auto file = (dir.path() / "r.toml").string();
  auto expect_error_at = [&](const testing::CommandResult& r, int line, int column, const std::string& message) {
    EXPECT_NE(r.output.find(fmt::format("{}:{}:{}: error: {}", file, line, column, message)), std::string::npos)
        << r.output;
  };

  // A misspelt key in the second stage: its own line, and which stage.
  auto r = check("[[stage]]\nname = \"a\"\n[stage.method]\nname = \"sft\"\n"
                 "[[stage]]\nname = \"b\"\n[stage.method]\nname = \"dpo\"\nbetta = 0.1\n");
  EXPECT_EQ(r.exit_code, 3);
  expect_error_at(r, first + 8, 1, "unknown key 'betta' in [method]");
  EXPECT_NE(r.output.find("note: in stage 'b'"), std::string::npos) << r.output;

  // A mistake in the shared sections is reported once, for every stage.
  r = check("[[stage]]\n[stage.method]\nname = \"sft\"\n[[stage]]\n[stage.method]\nname = \"dpo\"\n",
            {"optimizer.learning_rat=1"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("--set:1:1: error: unknown key 'learning_rat' in [optimizer]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("in every stage"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("unknown key", r.output.find("unknown key") + 1), std::string::npos) << r.output;

  // A key directly under [[stage]], an unknown section in a stage, a duplicate name.
  r = check("[[stage]]\nname = \"a\"\nmax_steps = 3\n[stage.method]\nname = \"sft\"\n"
            "[[stage]]\nname = \"a\"\n[stage.trainig]\nmax_steps = 3\n[stage.method]\nname = \"sft\"\n");
  EXPECT_EQ(r.exit_code, 3);
  expect_error_at(r, first + 2, 1, "key 'max_steps' is directly under [[stage]]");
  EXPECT_NE(r.output.find("help: put it in a section of the stage: [stage.training] max_steps = ..."), std::string::npos)
      << r.output;
  expect_error_at(r, first + 7, 1, "unknown section [trainig]");
  EXPECT_NE(r.output.find("did you mean 'training'?"), std::string::npos) << r.output;
  expect_error_at(r, first + 6, 8, "stage 2 is named 'a' like stage 1");

  // `stage` in another shape than [[stage]]; the run's folder set in a stage; a stage that starts
  // from a previous stage saving no model; a --set naming no stage.
  r = check("[stage.method]\nname = \"sft\"\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("'stage' must be a list of tables, one [[stage]] per stage"), std::string::npos) << r.output;
  r = check("[[stage]]\n[stage.run]\nname = \"x\"\n[stage.method]\nname = \"sft\"\n[stage.output]\nsave_model = false\n"
            "[[stage]]\n[stage.method]\nname = \"dpo\"\n");
  EXPECT_EQ(r.exit_code, 3);
  expect_error_at(r, first + 2, 1, "[run] name belongs to the whole run");
  expect_error_at(r, first + 6, 1, "[output] save_model: stage 'stage-1' saves no model, and stage 'stage-2' starts from it");
  r = check("[[stage]]\nname = \"sft\"\n[stage.method]\nname = \"sft\"\n", {"stage.stf.training.max_steps=2"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("--set:1:7: error: the recipe has no stage named 'stf'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 'sft'?"), std::string::npos) << r.output;
}

TEST(Stages, KilledInTheSecondStageResumesThereWithTheSameMetrics) {
  TempDir dir;
  auto r = run_alignkit({"train", write_staged(dir, "whole.toml", "whole").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Killed after the DPO stage's step 3 (4 SFT steps + 3): its newest checkpoint is step 2.
  r = run_alignkit({"train", write_staged(dir, "cut.toml", "cut").string()}, {"ALIGNKIT_FAULT=step:7:KILL"});
  ASSERT_EQ(r.exit_code, 128 + SIGKILL) << r.output;
  const fs::path cut = dir.path() / "cut";
  ASSERT_EQ(latest_checkpoint(cut / "dpo")->step, 2);
  r = run_alignkit({"train", "--resume", cut.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stage 1/2 'sft': finished before, skipped"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stage 2/2 'dpo': resuming from step 2"), std::string::npos) << r.output;
  for (const char* stage : {"sft", "dpo"})
    expect_same_metrics(dir.path() / "whole" / stage / "metrics.jsonl", cut / stage / "metrics.jsonl");
}

TEST(Stages, SigtermStopsTheWholeRunAndResumeContinuesInsideTheStage) {
  TempDir dir;
  auto r = run_alignkit({"train", write_staged(dir, "whole.toml", "whole").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto recipe = write_staged(dir, "cut.toml", "cut");
  const fs::path cut = dir.path() / "cut";
  // During the DPO stage's step 1: the step finishes, is checkpointed, and no later work starts.
  r = run_alignkit({"train", recipe.string()}, {"ALIGNKIT_FAULT=step:5:TERM"});
  ASSERT_EQ(r.exit_code, 128 + SIGTERM) << r.output;
  EXPECT_NE(r.output.find("stopped by SIGTERM in stage 'dpo' after step 1"), std::string::npos) << r.output;
  EXPECT_EQ(latest_checkpoint(cut / "dpo")->step, 1);
  // A fresh run may not start over the unfinished one.
  r = run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("holds an unfinished run of stages sft, dpo, stopped in stage 'dpo'"), std::string::npos)
      << r.output;
  r = run_alignkit({"train", "--resume", cut.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* stage : {"sft", "dpo"})
    expect_same_metrics(dir.path() / "whole" / stage / "metrics.jsonl", cut / stage / "metrics.jsonl");

  // During the SFT stage's last step: that stage ends with its outputs, the DPO stage does not start.
  const auto late = write_staged(dir, "late.toml", "late");
  r = run_alignkit({"train", late.string()}, {"ALIGNKIT_FAULT=step:4:TERM"});
  ASSERT_EQ(r.exit_code, 128 + SIGTERM) << r.output;
  EXPECT_NE(r.output.find("stopped by SIGTERM after stage 'sft'"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir.path() / "late/sft/final/model/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir.path() / "late/dpo"));
  r = run_alignkit({"train", "--resume", (dir.path() / "late").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_same_metrics(dir.path() / "whole/dpo/metrics.jsonl", dir.path() / "late/dpo/metrics.jsonl");
}

TEST(Stages, QuickstartRecipeIsTwoChainedStages) {
  const auto recipe = (testing::source_dir() / "recipes/quickstart.toml").string();
  const auto r = run_alignkit({"recipe", "check", recipe});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("stage 1/2 'sft'"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("stage 2/2 'dpo', from the model of 'sft'"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("800 steps"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("150 steps"), std::string::npos) << r.stdout_text;
}

}  // namespace
}  // namespace alignkit
