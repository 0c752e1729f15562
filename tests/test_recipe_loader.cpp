// Reading recipe files: includes, overrides, and files that are not recipes at all.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <random>

#include <toml++/toml.h>

#include "host/recipe_loader.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;

double float_at(const RecipeTree& tree, const KeyPath& path) {
  const auto& node = *tree.leaves.at(path).value;
  return node.is_integer() ? static_cast<double>(node.as_integer()->get()) : node.as_floating_point()->get();
}

// Runs `fn`, expecting a DiagnosticError, and returns its first diagnostic.
template <typename F>
Diagnostic first_error(F&& fn) {
  try {
    fn();
  } catch (const DiagnosticError& e) {
    return e.diagnostics().at(0);
  }
  ADD_FAILURE() << "expected a DiagnosticError";
  return {};
}

TEST(RecipeLoader, IncludeOverridePrecedence) {
  TempDir dir;
  dir.write("base/a.toml", "[optimizer]\nlearning_rate = 1.0\nweight_decay = 0.1\nadam_beta1 = 0.5\nadam_beta2 = 0.5\n");
  dir.write("base/b.toml", "[optimizer]\nweight_decay = 0.2\nadam_beta1 = 0.6\n");
  const auto recipe = dir.write("recipe.toml",
                                "include = [\"base/a.toml\", \"base/b.toml\"]\n[optimizer]\nadam_beta1 = 0.7\n");
  const auto tree = load_recipe(recipe, {"optimizer.adam_beta2=0.8"});
  EXPECT_EQ(float_at(tree, {"optimizer", "learning_rate"}), 1.0);  // only in a.toml
  EXPECT_EQ(float_at(tree, {"optimizer", "weight_decay"}), 0.2);   // b.toml overrides a.toml
  EXPECT_EQ(float_at(tree, {"optimizer", "adam_beta1"}), 0.7);     // the file overrides its includes
  EXPECT_EQ(float_at(tree, {"optimizer", "adam_beta2"}), 0.8);     // --set overrides everything
  ASSERT_EQ(tree.files.size(), 3u);
  EXPECT_EQ(tree.files.back(), recipe);
  // Each value remembers the file and line that set it.
  const auto& where = tree.leaves.at({"optimizer", "weight_decay"}).key_where;
  EXPECT_EQ(where.file, (dir.path() / "base/b.toml").string());
  EXPECT_EQ(where.line, 2);
  EXPECT_EQ(tree.leaves.at({"optimizer", "adam_beta2"}).key_where.file, "--set");
}

TEST(RecipeLoader, IncludedPathsResolveAgainstTheIncludingFile) {
  TempDir dir;
  dir.write("a/b/deep.toml", "[run]\nname = \"deep\"\n");
  dir.write("a/mid.toml", "include = \"b/deep.toml\"\n");
  const auto tree = load_recipe(dir.write("top.toml", "include = \"a/mid.toml\"\n"));
  EXPECT_EQ(tree.leaves.at({"run", "name"}).value->as_string()->get(), "deep");
  EXPECT_EQ(tree.leaves.at({"run", "name"}).base_dir, dir.path() / "a/b");
}

TEST(RecipeLoader, IncludeCycleIsReportedAtTheInclude) {
  TempDir dir;
  dir.write("a.toml", "include = \"b.toml\"\n");
  dir.write("b.toml", "\n\ninclude = \"a.toml\"\n");
  const auto d = first_error([&] { load_recipe(dir.path() / "a.toml"); });
  EXPECT_NE(d.message.find("include cycle"), std::string::npos) << d.format();
  EXPECT_EQ(d.where.file, (dir.path() / "b.toml").string());
  EXPECT_EQ(d.where.line, 3);
}

TEST(RecipeLoader, MissingIncludeNamesTheFileAndTheIncludeLine) {
  TempDir dir;
  const auto recipe = dir.write("r.toml", "# comment\ninclude = \"nope.toml\"\n");
  const auto d = first_error([&] { load_recipe(recipe); });
  EXPECT_NE(d.message.find("nope.toml: no such file"), std::string::npos) << d.format();
  EXPECT_EQ(d.where.file, recipe.string());
  EXPECT_EQ(d.where.line, 2);
}

TEST(RecipeLoader, IncludeMustBeAStringOrListOfStrings) {
  TempDir dir;
  const auto d = first_error([&] { load_recipe(dir.write("r.toml", "include = 3\n")); });
  EXPECT_NE(d.message.find("'include' must be a file name"), std::string::npos) << d.format();
  EXPECT_EQ(d.where.line, 1);
}

TEST(RecipeLoader, NotTomlReportsLineAndColumn) {
  TempDir dir;
  const auto recipe = dir.write("r.toml", "[run]\nname = \"x\"\nseed = = 3\n");
  const auto d = first_error([&] { load_recipe(recipe); });
  EXPECT_NE(d.message.find("not valid TOML"), std::string::npos) << d.format();
  EXPECT_EQ(d.where.line, 3);
  EXPECT_GT(d.where.column, 0);
  EXPECT_EQ(d.source_line, "seed = = 3");
}

TEST(RecipeLoader, EmptyRecipeIsAnError) {
  TempDir dir;
  for (const char* text : {"", "\n\n  \n", "# only a comment\n"}) {
    const auto d = first_error([&] { load_recipe(dir.write("empty.toml", text)); });
    EXPECT_EQ(d.message, "recipe is empty");
    EXPECT_FALSE(d.help.empty());
  }
}

TEST(RecipeLoader, BinaryFileIsRefused) {
  TempDir dir;
  const auto d = first_error([&] { load_recipe(dir.write("model.bin", std::string("\x7f" "ELF\0\0\x01", 7))); });
  EXPECT_NE(d.message.find("binary file"), std::string::npos) << d.format();
}

TEST(RecipeLoader, InvalidUtf8IsAnErrorNotACrash) {
  TempDir dir;
  const auto d = first_error([&] { load_recipe(dir.write("r.toml", "[run]\nname = \"\xff\xfe\"\n")); });
  EXPECT_NE(d.message.find("not valid TOML"), std::string::npos) << d.format();
  EXPECT_EQ(d.where.line, 2);
}

TEST(RecipeLoader, HugeFileIsRefusedWithoutReadingIt) {
  TempDir dir;
  const auto path = dir.path() / "huge.toml";
  // A 100 MB sparse file: refused from its size alone, so this stays fast.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 100 * 1000 * 1000), 0);
  ::close(fd);
  const auto d = first_error([&] { load_recipe(path); });
  EXPECT_NE(d.message.find("100000000 bytes"), std::string::npos) << d.format();
}

TEST(RecipeLoader, DeepNestingIsAnErrorNotAStackOverflow) {
  TempDir dir;
  const auto d = first_error([&] {
    load_recipe(dir.write("deep.toml", "[run]\nname = " + std::string(100000, '[') + "\n"));
  });
  EXPECT_NE(d.message.find("not valid TOML"), std::string::npos) << d.format();
}

TEST(RecipeLoader, DeepDottedKeysAreAnErrorNotAStackOverflow) {
  TempDir dir;
  std::string header = "[a";
  for (int i = 0; i < 20000; ++i) header += ".a";
  const auto d = first_error([&] { load_recipe(dir.write("deep.toml", header + "]\nx = 1\n")); });
  EXPECT_NE(d.message.find("keys nest deeper than 8 levels"), std::string::npos) << d.format();
}

TEST(RecipeLoader, IncludesFanningOutAreBounded) {
  // Each file includes the next one 30 times: 30^4 loads unless bounded.
  TempDir dir;
  for (int level = 1; level <= 4; ++level) {
    std::string includes = "include = [";
    for (int i = 0; i < 30; ++i) includes += "\"f" + std::to_string(level + 1) + ".toml\", ";
    dir.write("f" + std::to_string(level) + ".toml", includes + "]\n");
  }
  dir.write("f5.toml", "[run]\nname = \"leaf\"\n");
  const auto d = first_error([&] { load_recipe(dir.path() / "f1.toml"); });
  EXPECT_NE(d.message.find("includes more than 64 files"), std::string::npos) << d.format();
}

TEST(RecipeLoader, DirectoryAndMissingFileAreErrors) {
  TempDir dir;
  EXPECT_NE(first_error([&] { load_recipe(dir.path()); }).message.find("is a directory"), std::string::npos);
  EXPECT_NE(first_error([&] { load_recipe(dir.path() / "absent.toml"); }).message.find("no such file"),
            std::string::npos);
}

TEST(RecipeLoader, RandomBytesNeverCrashTheLoader) {
  // A short fuzz: whatever the bytes, the loader either loads or throws a DiagnosticError.
  TempDir dir;
  std::mt19937 rng(1234);
  static const char letters[] = "[]=\"'.#\n abc123_-{},\t\\\xc3\xa9\x00\xff";
  const std::string alphabet(letters, sizeof(letters) - 1);  // keeps the NUL byte
  for (int i = 0; i < 300; ++i) {
    std::string text;
    const int length = static_cast<int>(rng() % 200);
    for (int j = 0; j < length; ++j) text += alphabet[rng() % alphabet.size()];
    const auto file = dir.write("fuzz.toml", text);
    try {
      load_recipe(file);
    } catch (const DiagnosticError& e) {
      EXPECT_FALSE(e.diagnostics().empty());
    }
  }
}

TEST(RecipeLoader, SetOverrideParsesTomlValuesAndBareStrings) {
  TempDir dir;
  const auto recipe = dir.write("r.toml", "[run]\nname = \"x\"\n");
  const auto tree = load_recipe(recipe, {"run.name=baseline", "run.seed=7", "plugins.paths=[\"a\", \"b\"]",
                                         "optimizer.learning_rate=1e-5"});
  EXPECT_EQ(tree.leaves.at({"run", "name"}).value->as_string()->get(), "baseline");
  EXPECT_EQ(tree.leaves.at({"run", "seed"}).value->as_integer()->get(), 7);
  EXPECT_EQ(tree.leaves.at({"plugins", "paths"}).value->as_array()->size(), 2u);
  EXPECT_DOUBLE_EQ(float_at(tree, {"optimizer", "learning_rate"}), 1e-5);
  EXPECT_EQ(tree.leaves.at({"run", "seed"}).key_where.line, 2);  // the second --set
}

TEST(RecipeLoader, MalformedSetOverridesAreErrors) {
  TempDir dir;
  const auto recipe = dir.write("r.toml", "[run]\nname = \"x\"\n");
  for (const std::string bad : {"run.name", "name=3", "run..name=3", "run.na me=3", "=3", "run.seed=99999999999999999999",
                                "run.seed=1\nrun.name=2", "run.name.x=1", "run.name=", "run.seed=[1,"}) {
    const auto d = first_error([&] { load_recipe(recipe, {bad}); });
    EXPECT_EQ(d.where.file, "--set") << bad;
    EXPECT_EQ(d.message.find("remove the quotes"), std::string::npos) << bad;
    EXPECT_EQ(d.source_line, bad);
    EXPECT_FALSE(d.help.empty());
  }
}

TEST(RecipeLoader, ReplacingATableWithAValueDropsTheTable) {
  TempDir dir;
  dir.write("base.toml", "[model.lora]\nr = 8\n");
  const auto tree = load_recipe(dir.write("r.toml", "include = \"base.toml\"\n[model]\nlora = false\n"));
  EXPECT_EQ(tree.leaves.count({"model", "lora", "r"}), 0u);
  EXPECT_TRUE(tree.leaves.at({"model", "lora"}).value->is_boolean());
}

}  // namespace
}  // namespace alignkit
