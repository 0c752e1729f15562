// Helpers shared by the tests: scratch folders, files, and running the alignkit binary.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <alignkit/diagnostic.hpp>
#include <alignkit/model_loader.hpp>

#include "host/plugin_registry.hpp"
#include "host/recipe_validator.hpp"

namespace alignkit::testing {

// A fresh folder under the system temp folder, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `content` to path()/name (creating parent folders) and returns the full path.
  std::filesystem::path write(const std::string& name, const std::string& content) const;

 private:
  std::filesystem::path path_;
};

std::filesystem::path plugin_dir();  // the build tree's plugin folder

// A recipe written to a scratch folder and validated against the given plugin files or folders
// (by default the build tree's plugins), with the registry that loaded them.
struct RecipeFixture {
  explicit RecipeFixture(const std::string& text, const std::vector<std::filesystem::path>& plugins = {plugin_dir()});
  TempDir dir;
  PluginRegistry registry;
  ValidatedRecipe recipe;
};

// The build tree's `hf` model loader, selected through a [model] section as a recipe would.
struct HfLoader {
  RecipeFixture fixture{"[model]\nloader = \"hf\"\npath = \"m\"\n"};
  std::shared_ptr<ModelLoader> loader =
      fixture.registry.create<ModelLoader>(*fixture.recipe.plugins.at("model"), fixture.recipe.section("model"));
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
  std::string stdout_text;
};

// Runs a program (argv[0]) with its arguments (each shell-quoted) and `env` assignments ("K=V").
CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env = {});
// run_command for the alignkit binary.
CommandResult run_alignkit(const std::vector<std::string>& args, const std::vector<std::string>& env = {});

// Copies the oracle model tests/fixtures/oracle/NAME into a fresh, writable folder under `dir`,
// so a test can change or damage it.
std::filesystem::path copy_model(const TempDir& dir, const char* name);
// Rewrites DIR/config.json through `edit`.
void edit_config(const std::filesystem::path& dir, const std::function<void(nlohmann::json&)>& edit);

// Gives every LoRA adapter of `model` a non-zero B drawn from N(0, 0.05) with `seed`, as training
// would, so an adapter changes the model's output.
void perturb_adapters(torch::nn::Module& model, std::uint64_t seed);

// The objects of a JSON Lines file (metrics.jsonl, score's output), blank lines skipped.
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& file);

// What a resumed or chained run must reproduce exactly: every logged value of every line of two
// metrics.jsonl files (the same operations on the same numbers on one CPU give the same bits).
void expect_same_metrics(const std::filesystem::path& expected, const std::filesystem::path& actual);

// Eight preference pairs as token ids for the oracle llama (a 300-token vocabulary, EOS 2), as
// JSON Lines; `shift` changes every prompt.
std::string token_id_pairs(int shift = 0);

// The diagnostics a DiagnosticError carries, formatted, for assertion messages.
std::string describe(const DiagnosticError& e);

std::filesystem::path source_dir();
// (plugin_dir() is declared above: the build tree's plugin folder)
std::filesystem::path fixture_plugin_dir();  // the fixture plugins (tests/fixture_plugins)
std::filesystem::path fixture_plugin(const std::string& variant);  // e.g. "good" -> its .so

}  // namespace alignkit::testing
