// The `alignkit` binary as a user runs it: exit codes, output, and the files it writes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/plugin.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::run_alignkit;
using testing::TempDir;

const std::string kMinimal = (testing::source_dir() / "recipes/minimal.toml").string();

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Cli, VersionAndHelp) {
  auto r = run_alignkit({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find(fmt::format("plugin API {}", ALIGNKIT_PLUGIN_API_VERSION)), std::string::npos) << r.output;
  // The allocator the build linked is the one that answers malloc (jemalloc where the build found it).
  EXPECT_NE(r.output.find(std::string("allocator: ") + ALIGNKIT_EXPECTED_ALLOCATOR), std::string::npos) << r.output;
  EXPECT_EQ(run_alignkit({"--help"}).exit_code, 0);
  for (const char* command : {"train", "plan", "plugins"}) {
    r = run_alignkit({command, "--help"});
    EXPECT_EQ(r.exit_code, 0) << command;
    EXPECT_NE(r.stdout_text.find(std::string("usage: alignkit ") + command), std::string::npos) << r.output;
  }
  for (const char* sub : {"check", "keys", "show", "schedule"}) {
    r = run_alignkit({"recipe", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.stdout_text.find(std::string("usage: alignkit recipe ") + sub), std::string::npos) << r.output;
  }
}

TEST(Cli, UsageErrorsExitWithTwo) {
  EXPECT_EQ(run_alignkit({}).exit_code, 2);
  auto r = run_alignkit({"trian"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("did you mean 'train'?"), std::string::npos) << r.output;
  EXPECT_EQ(run_alignkit({"recipe"}).exit_code, 2);
  EXPECT_EQ(run_alignkit({"recipe", "chek", kMinimal}).exit_code, 2);
  EXPECT_EQ(run_alignkit({"recipe", "check"}).exit_code, 2);  // no recipe
  EXPECT_EQ(run_alignkit({"plugins", "--jsn"}).exit_code, 2);
  EXPECT_EQ(run_alignkit({"plan", kMinimal, "--gpu", "t4", "--memory-gib", "15"}).exit_code, 2);
}

TEST(Cli, PluginsJsonListsSchedulersWithMetadata) {
  auto r = run_alignkit({"plugins", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto json = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(json["api_version"], ALIGNKIT_PLUGIN_API_VERSION);
  std::set<std::string> names;
  for (const auto& p : json["plugins"]) {
    EXPECT_EQ(p["api_version"], ALIGNKIT_PLUGIN_API_VERSION);
    EXPECT_FALSE(p["description"].get<std::string>().empty());
    EXPECT_TRUE(std::filesystem::exists(p["path"].get<std::string>()));
    names.insert(p["kind"].get<std::string>() + "/" + p["name"].get<std::string>());
    if (p["name"] == "cosine") {
      ASSERT_EQ(p["options"].size(), 2u);
      EXPECT_EQ(p["options"][0]["key"], "num_cycles");
      EXPECT_EQ(p["options"][0]["default"], "0.5");
      EXPECT_EQ(p["options"][0]["type"], "float");
    }
  }
  for (const char* expected : {"scheduler/constant", "scheduler/cosine", "scheduler/linear",
                               "scheduler/warmup_stable_decay", "model_loader/hf", "dataset/jsonl", "dataset/hh_rlhf"})
    EXPECT_TRUE(names.count(expected)) << expected;
  EXPECT_TRUE(json["refused"].empty());
}

TEST(Cli, PluginsReportsRefusedOnesFromThePluginPath) {
  auto r = run_alignkit({"plugins", "--json"}, {"ALIGNKIT_PLUGIN_PATH=" + testing::fixture_plugin_dir().string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto json = nlohmann::json::parse(r.stdout_text);
  std::set<std::string> refused;
  for (const auto& p : json["refused"]) {
    refused.insert(std::filesystem::path(p["path"].get<std::string>()).filename().string());
    EXPECT_FALSE(p["reason"].get<std::string>().empty());
  }
  EXPECT_TRUE(refused.count("libfixture_wrong_api.so"));
  EXPECT_TRUE(refused.count("libfixture_throws.so"));
  EXPECT_TRUE(refused.count("libfixture_no_entry.so"));
  std::set<std::string> accepted;
  for (const auto& p : json["plugins"]) accepted.insert(p["name"]);
  EXPECT_TRUE(accepted.count("fixture_loss"));
  EXPECT_TRUE(accepted.count("cosine"));
  // The table form says the same.
  r = run_alignkit({"plugins"}, {"ALIGNKIT_PLUGIN_PATH=" + testing::fixture_plugin_dir().string()});
  EXPECT_NE(r.stdout_text.find("refused:"), std::string::npos);
  EXPECT_NE(r.stdout_text.find(fmt::format("built for plugin API version {}", ALIGNKIT_PLUGIN_API_VERSION + 1)),
            std::string::npos)
      << r.stdout_text;
}

TEST(Cli, MinimalRecipeChecks) {
  auto r = run_alignkit({"recipe", "check", kMinimal});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("ok"), std::string::npos);
  EXPECT_NE(r.stdout_text.find("scheduler 'cosine'"), std::string::npos) << r.stdout_text;
}

TEST(Cli, InvalidRecipeExitsWithThreeAndLocatesTheError) {
  TempDir dir;
  const auto recipe = dir.write("bad.toml", "[optimizer]\nlearning_rate = \"fast\"\n");
  auto r = run_alignkit({"recipe", "check", recipe.string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find(recipe.string() + ":2:17: error: [optimizer] learning_rate: expected a number"),
            std::string::npos)
      << r.output;
}

TEST(Cli, MissingPluginExitsWithFour) {
  TempDir dir;
  auto r = run_alignkit({"recipe", "check", dir.write("r.toml", "[scheduler]\nname = \"cosin\"\n").string()});
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.output.find("did you mean 'cosine'?"), std::string::npos) << r.output;
}

TEST(Cli, SetOverridesAreValidated) {
  auto r = run_alignkit({"recipe", "check", kMinimal, "--set", "optimizer.learning_rate=-1"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("--set:1:25: error: [optimizer] learning_rate: value -1 is out of range"),
            std::string::npos)
      << r.output;
  r = run_alignkit({"recipe", "show", kMinimal, "--set", "optimizer.learning_rate=2e-5", "--set",
                    "run.name=other"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.stdout_text.find("learning_rate = 2e-05"), std::string::npos) << r.stdout_text;
  EXPECT_NE(r.stdout_text.find("name = 'other'"), std::string::npos) << r.stdout_text;
}

TEST(Cli, FilesThatAreNotRecipesNeverCrashOrHang) {
  TempDir dir;
  const auto huge = dir.path() / "huge.toml";
  const int fd = ::open(huge.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 100 * 1000 * 1000), 0);
  ::close(fd);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {dir.write("empty.toml", "").string(), "recipe is empty"},
      {dir.write("binary.toml", std::string("\0\1\2\3garbage", 11)).string(), "binary file"},
      {dir.write("text.toml", "this is not toml at all\n").string(), "not valid TOML"},
      {huge.string(), "a recipe is at most"},
      {(dir.path() / "absent.toml").string(), "no such file"},
      {dir.path().string(), "is a directory"},
  };
  for (const auto& [file, message] : cases) {
    auto r = run_alignkit({"recipe", "check", file});
    EXPECT_EQ(r.exit_code, 3) << file << "\n" << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
  }
}

TEST(Cli, TrainNeedsMethodModelAndData) {
  TempDir dir;
  const auto recipe = dir.write("r.toml", "[training]\nmax_steps = 3\n");
  auto r = run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("`alignkit train` needs a [method] section"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("installed method plugins: cpo, dpo, ipo, kto, orpo, ppo, reward, sft, simpo"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("installed model_loader plugins: hf"), std::string::npos) << r.output;
}

TEST(Cli, TrainWritesTheEffectiveRecipeIntoTheRunFolder) {
  TempDir dir;
  dir.write("base.toml", "[optimizer]\nlearning_rate = 3e-6\n");
  const auto recipe = dir.write(
      "r.toml",
      "include = \"base.toml\"\n[plugins]\npaths = [\"" + testing::fixture_plugin_dir().string() + "\"]\n" +
          "[method]\nname = \"fixture_loss\"\n[model]\nloader = \"fixture_loader\"\npath = \"model\"\n"
          "[data]\nformat = \"fixture_data\"\n[training]\nmax_steps = 5\n");
  const auto out = dir.path() / "runs/one";
  auto r = run_alignkit({"train", recipe.string(), "--output", out.string(), "--set", "training.max_steps=6"});
  const std::string written = read_file(out / "recipe.toml");
  ASSERT_FALSE(written.empty()) << r.output;
  EXPECT_NE(written.find("learning_rate = 3e-06"), std::string::npos) << written;
  EXPECT_NE(written.find("max_steps = 6"), std::string::npos) << written;
  EXPECT_NE(written.find("path = '" + (dir.path() / "model").string() + "'"), std::string::npos) << written;
  // The fixture model folder has no tokenizer: the run stops with that, after the recipe was written.
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("tokenizer.json"), std::string::npos) << r.output;
  // The written recipe is itself a valid recipe.
  EXPECT_EQ(run_alignkit({"recipe", "check", (out / "recipe.toml").string()}).exit_code, 0);
}

// The objects instantiate_plugins creates are the ones the plan and the loop use: each factory
// runs once per run (once, the method's ran three times: validation, the plan, the loop).
TEST(Cli, TrainCreatesEachPluginOnce) {
  TempDir dir;
  const auto recipe = dir.write(
      "r.toml", "[plugins]\npaths = [\"" + testing::fixture_plugin_dir().string() + "\"]\n" +
                    "[method]\nname = \"fixture_loss\"\n[model]\nloader = \"fixture_loader\"\npath = \"model\"\n"
                    "[data]\nformat = \"fixture_data\"\n[training]\nmax_steps = 5\n");
  const auto trace = dir.path() / "created.txt";
  auto r = run_alignkit({"train", recipe.string(), "--output", (dir.path() / "run").string()},
                        {"ALIGNKIT_FIXTURE_TRACE=" + trace.string()});
  // It got past the plan into the loop's set-up: the fixture model folder has no tokenizer.
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("tokenizer.json"), std::string::npos) << r.output;
  const std::string created = read_file(trace);
  std::map<std::string, int> count;
  std::istringstream lines(created);
  for (std::string line; std::getline(lines, line);) ++count[line];
  for (const char* name : {"fixture_loss", "fixture_loader", "fixture_data"})
    EXPECT_EQ(count[name], 1) << name << " in:\n" << created;
}

TEST(Cli, ScheduleCommandPrintsEveryStep) {
  auto r = run_alignkit({"recipe", "schedule", kMinimal, "--set", "training.max_steps=20"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(std::count(r.stdout_text.begin(), r.stdout_text.end(), '\n'), 21);  // header + 20 steps
  EXPECT_NE(r.stdout_text.find("\n1,0.5,2.5e-06\n"), std::string::npos) << r.stdout_text;  // warmup 2 steps
}

TEST(Cli, RecipeKeysMatchesTheCommittedReference) {
  auto r = run_alignkit({"recipe", "keys"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string committed = read_file(testing::source_dir() / "docs/recipe-reference.md");
  if (r.stdout_text != committed) {
    std::istringstream got(r.stdout_text), want(committed);
    std::string a, b;
    int line = 1;
    while (std::getline(got, a) && std::getline(want, b) && a == b) ++line;
    ADD_FAILURE() << "docs/recipe-reference.md is stale from line " << line
                  << ": regenerate it with scripts/update-docs.sh\n  code: " << a << "\n  file: " << b;
  }
}

TEST(Cli, PluginThatThrowsAnythingAnywhereIsReportedNotACrash) {
  TempDir dir;
  for (const char* where : {"factory", "check", "factor"})
    for (const char* what : {"subclass", "int"}) {
      const auto recipe = dir.write(
          "r.toml", "[plugins]\npaths = [\"" + testing::fixture_plugin("good").string() +
                        "\"]\n[training]\nmax_steps = 5\n[scheduler]\nname = \"fixture\"\nneeded = 1\nthrow_in = \"" + where +
                        "\"\nthrow_what = \"" + what + "\"\n");
      auto r = run_alignkit({"recipe", "schedule", recipe.string()});
      EXPECT_EQ(r.exit_code, 3) << where << " " << what << "\n" << r.output;
      EXPECT_NE(r.output.find("scheduler plugin 'fixture'"), std::string::npos) << r.output;
      if (std::string(what) == "subclass")
        EXPECT_NE(r.output.find(std::string("fixture failure in ")), std::string::npos) << r.output;
      else
        EXPECT_NE(r.output.find("not a std::exception"), std::string::npos) << r.output;
    }
}

TEST(Cli, TrainNeverWritesOverTheRecipeItRuns) {
  TempDir dir;
  const std::string text =
      "# my notes\n[plugins]\npaths = [\"" + testing::fixture_plugin_dir().string() +
      "\"]\n[method]\nname = \"fixture_loss\"\n[model]\nloader = \"fixture_loader\"\npath = \"m\"\n"
      "[data]\nformat = \"fixture_data\"\n[training]\nmax_steps = 1\n";
  const auto recipe = dir.write("recipe.toml", text);
  auto r = run_alignkit({"train", recipe.string(), "--output", dir.path().string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("which this run reads"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(recipe), text);
  // A run name is one folder name, never a path.
  r = run_alignkit({"train", recipe.string(), "--set", "run.name=.."});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.output.find("'..' cannot name a run folder"), std::string::npos) << r.output;
}

TEST(Cli, PluginsJsonSurvivesFileNamesThatAreNotUtf8) {
  TempDir dir;
  dir.write("lib\xff\xfe.so", "not a library\n");
  auto r = run_alignkit({"plugins", "--json"}, {"ALIGNKIT_PLUGIN_PATH=" + dir.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto json = nlohmann::json::parse(r.stdout_text);
  ASSERT_EQ(json["refused"].size(), 1u);
  EXPECT_NE(json["refused"][0]["reason"].get<std::string>().find("not a loadable shared library"), std::string::npos);
}

TEST(Cli, RecipePluginsLoadEvenWhenOtherSectionsHaveErrors) {
  TempDir dir;
  const auto recipe = dir.write("r.toml", "[plugins]\npaths = [\"" + testing::fixture_plugin("good").string() +
                                              "\"]\n[optimiser]\n[scheduler]\nname = \"fixture\"\nneeded = 1\n");
  auto r = run_alignkit({"recipe", "check", recipe.string()});
  EXPECT_EQ(r.exit_code, 3) << r.output;  // the typo, not a missing plugin
  EXPECT_NE(r.output.find("unknown section [optimiser]"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("no scheduler plugin"), std::string::npos) << r.output;
}

TEST(Cli, WarnsWhenLibTorchRunsOnTheReferenceBlas) {
  // Debian installs the reference BLAS here; preloading it makes it answer LibTorch's BLAS calls,
  // as it does on a machine where OpenBLAS is not installed.
  const std::string reference_blas = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3";
  ASSERT_TRUE(std::filesystem::exists(reference_blas)) << "the test command installs libblas3";
  auto r = run_alignkit({"plugins"}, {"LD_PRELOAD=" + reference_blas});
  EXPECT_EQ(r.exit_code, 0);
  const std::string resolved = std::filesystem::canonical(reference_blas).string();
  EXPECT_NE(r.output.find("warning: LibTorch is using the reference BLAS (" + resolved + ")"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("apt-get install libopenblas0-openmp"), std::string::npos);
  r = run_alignkit({"plugins"});
  EXPECT_EQ(r.output.find("reference BLAS"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace alignkit
