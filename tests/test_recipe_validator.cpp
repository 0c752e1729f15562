// Validation of recipes: each class of error names file, line, column, key and a fix.
#include <gtest/gtest.h>

#include "host/recipe_render.hpp"
#include "host/recipe_validator.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;

struct Validation {
  PluginRegistry registry;
  std::vector<Diagnostic> problems;
  bool plugin_missing = false;
  std::unique_ptr<ValidatedRecipe> recipe;
};

// Validates `text` (written to recipe.toml in `dir`) against the built-in and fixture plugins.
std::unique_ptr<Validation> validate(const TempDir& dir, const std::string& text,
                                     const std::vector<std::string>& sets = {}) {
  auto v = std::make_unique<Validation>();
  v->registry.load(testing::plugin_dir());
  v->registry.load(testing::fixture_plugin("good"));
  v->registry.load(testing::fixture_plugin("loss"));
  try {
    v->recipe = std::make_unique<ValidatedRecipe>(
        validate_recipe(load_recipe(dir.write("recipe.toml", text), sets), v->registry, {false}));
  } catch (const RecipeInvalid& e) {
    v->problems = e.diagnostics();
    v->plugin_missing = e.plugin_missing();
  }
  return v;
}

const Diagnostic& only_problem(const Validation& v) {
  std::string all;
  for (const auto& d : v.problems) all += d.format();
  EXPECT_EQ(v.problems.size(), 1u) << all;
  static const Diagnostic none;
  return v.problems.empty() ? none : v.problems.front();
}

TEST(RecipeValidator, UnknownKeyNamesFileLineColumnAndSuggests) {
  TempDir dir;
  auto v = validate(dir, "[optimizer]\nlearning_rate = 1e-5\n  weight_decy = 0.1\n");
  const auto& d = only_problem(*v);
  EXPECT_EQ(d.message, "unknown key 'weight_decy' in [optimizer]");
  EXPECT_EQ(d.where.file, (dir.path() / "recipe.toml").string());
  EXPECT_EQ(d.where.line, 3);
  EXPECT_EQ(d.where.column, 3);
  EXPECT_EQ(d.source_line, "  weight_decy = 0.1");
  EXPECT_EQ(d.help, "did you mean 'weight_decay'?");
  EXPECT_NE(d.format().find("recipe.toml:3:3: error: unknown key 'weight_decy'"), std::string::npos) << d.format();
}

TEST(RecipeValidator, WrongTypePointsAtTheValue) {
  TempDir dir;
  auto v = validate(dir, "[training]\nmax_steps = \"100\"\n");
  const auto& d = only_problem(*v);
  EXPECT_EQ(d.message, "[training] max_steps: expected an integer, found string \"100\"");
  EXPECT_EQ(d.where.line, 2);
  EXPECT_EQ(d.where.column, 13);
  EXPECT_NE(d.help.find("remove the quotes"), std::string::npos);
}

TEST(RecipeValidator, OutOfRangeStatesTheRange) {
  TempDir dir;
  auto v = validate(dir, "[optimizer]\nadam_beta2 = 1.0\n");
  EXPECT_EQ(only_problem(*v).message,
            "[optimizer] adam_beta2: value 1 is out of range: expected a number in [0, 1)");
  v = validate(dir, "[optimizer]\nlearning_rate = 0\n");
  EXPECT_EQ(only_problem(*v).message,
            "[optimizer] learning_rate: value 0 is out of range: expected a number > 0");
}

TEST(RecipeValidator, IntegerLiteralIsAcceptedForAFloatKey) {
  TempDir dir;
  auto v = validate(dir, "[optimizer]\nmax_grad_norm = 2\n");
  ASSERT_TRUE(v->problems.empty());
  EXPECT_EQ(v->recipe->section("optimizer").get_float("max_grad_norm"), 2.0);
}

TEST(RecipeValidator, UnknownSectionSuggestsTheClosest) {
  TempDir dir;
  auto v = validate(dir, "[optimiser]\nlearning_rate = 1e-5\n");
  const auto& d = only_problem(*v);
  EXPECT_EQ(d.message, "unknown section [optimiser]");
  EXPECT_EQ(d.where.line, 1);
  EXPECT_EQ(d.help, "did you mean 'optimizer'?");
}

TEST(RecipeValidator, NestedAndArrayTablesAreNamed) {
  TempDir dir;
  EXPECT_EQ(only_problem(*validate(dir, "[optimizer.adam]\n")).message, "unknown key 'adam' in [optimizer]");
  EXPECT_EQ(only_problem(*validate(dir, "[optimizer]\nx = {}\n")).message, "unknown key 'x' in [optimizer]");
  EXPECT_EQ(only_problem(*validate(dir, "[optimizer.adam]\nbeta = 1\n")).message,
            "unknown key 'adam.beta' in [optimizer]");
  EXPECT_EQ(only_problem(*validate(dir, "[[scheduler]]\nname = \"linear\"\n")).message,
            "[[scheduler]] makes a list of sections; a recipe has one [scheduler]");
}

TEST(RecipeValidator, KeyOutsideAnySectionIsAnError) {
  TempDir dir;
  auto v = validate(dir, "learning_rate = 1e-5\n");
  EXPECT_EQ(only_problem(*v).message, "key 'learning_rate' is outside any section");
}

TEST(RecipeValidator, UnknownPluginIsReportedAsMissingWithSuggestion) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"cosin\"\n");
  const auto& d = only_problem(*v);
  EXPECT_TRUE(v->plugin_missing);
  EXPECT_EQ(d.message, "[scheduler] name: no scheduler plugin named 'cosin'");
  EXPECT_EQ(d.help, "did you mean 'cosine'?");
  ASSERT_FALSE(d.notes.empty());
  EXPECT_NE(d.notes.back().find("constant, cosine, fixture, linear, warmup_stable_decay"), std::string::npos);
}

TEST(RecipeValidator, RefusedPluginIsNamedWithItsReason) {
  TempDir dir;
  // The recipe loads a plugin that is refused; asking for it by name says why.
  auto v = validate(dir, "[plugins]\npaths = [\"" + testing::fixture_plugin("wrong_abi").string() +
                             "\"]\n[scheduler]\nname = \"other_abi\"\n");
  const auto& d = only_problem(*v);
  EXPECT_TRUE(v->plugin_missing);
  std::string notes;
  for (const auto& n : d.notes) notes += n + "\n";
  EXPECT_NE(notes.find("libfixture_wrong_abi.so was refused: built for 'libstdc++-cxx11 torch-9.9'"),
            std::string::npos)
      << d.format();
}

TEST(RecipeValidator, PluginKeysAreValidatedAgainstThePluginsDeclarations) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"cosine\"\nnum_cycle = 1\nmin_lr_rate = 2\n");
  ASSERT_EQ(v->problems.size(), 2u);
  EXPECT_EQ(v->problems[0].message, "unknown key 'num_cycle' in [scheduler]");
  EXPECT_EQ(v->problems[0].help, "did you mean 'num_cycles'?");
  EXPECT_EQ(v->problems[1].message,
            "[scheduler] min_lr_rate: value 2 is out of range: expected a number in [0, 1]");
}

TEST(RecipeValidator, KeyOfASiblingPluginSaysWhichPluginHasIt) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"linear\"\nnum_cycles = 1\n");
  const auto& d = only_problem(*v);
  std::string notes;
  for (const auto& n : d.notes) notes += n + "\n";
  EXPECT_NE(notes.find("'num_cycles' is an option of scheduler 'cosine'"), std::string::npos) << d.format();
}

TEST(RecipeValidator, ChoiceValuesAreCheckedWithSuggestion) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"fixture\"\nneeded = 1\nmode = \"balanse\"\n");
  const auto& d = only_problem(*v);
  EXPECT_EQ(d.message, "[scheduler] mode: 'balanse' is not one of: fast, slow, balanced");
  EXPECT_EQ(d.help, "did you mean 'balanced'?");
}

TEST(RecipeValidator, MissingRequiredKeyIsReportedAtTheSection) {
  TempDir dir;
  auto v = validate(dir, "[run]\nname = \"x\"\n\n[scheduler]\nname = \"fixture\"\n");
  const auto& d = only_problem(*v);
  EXPECT_EQ(d.message, "[scheduler] is missing required key 'needed'");
  EXPECT_EQ(d.where.line, 4);
  EXPECT_NE(d.help.find("needed = <an integer>"), std::string::npos) << d.help;
}

TEST(RecipeValidator, ListElementsAreCheckedOneByOne) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"fixture\"\nneeded = 1\nweights = [1.0, -2.0]\n");
  EXPECT_EQ(only_problem(*v).message,
            "[scheduler] weights: element 1: value -2 is out of range: expected a number >= 0");
}

TEST(RecipeValidator, EveryProblemIsReportedNotJustTheFirst) {
  TempDir dir;
  auto v = validate(dir, "[optimizer]\nlearning_rate = -1\nadam_beta1 = \"x\"\nfoo = 1\n[trainning]\n");
  EXPECT_EQ(v->problems.size(), 4u);
  // In file order.
  for (std::size_t i = 1; i < v->problems.size(); ++i)
    EXPECT_LE(v->problems[i - 1].where.line, v->problems[i].where.line);
}

TEST(RecipeValidator, SetOverridesAreValidatedLikeTheRecipe) {
  TempDir dir;
  auto v = validate(dir, "[training]\nmax_steps = 10\n", {"training.max_steps=ten", "optimizer.lerning_rate=1"});
  ASSERT_EQ(v->problems.size(), 2u);
  EXPECT_EQ(v->problems[0].where.file, "--set");
  EXPECT_EQ(v->problems[0].message, "[training] max_steps: expected an integer, found string \"ten\"");
  EXPECT_EQ(v->problems[1].message, "unknown key 'lerning_rate' in [optimizer]");
  EXPECT_EQ(v->problems[1].help, "did you mean 'learning_rate'?");
  EXPECT_EQ(v->problems[1].where.line, 2);
}

TEST(RecipeValidator, SetOverrideWinsOverFileAndIsUsed) {
  TempDir dir;
  auto v = validate(dir, "[training]\nmax_steps = 10\n", {"training.max_steps=20"});
  ASSERT_TRUE(v->problems.empty());
  EXPECT_EQ(v->recipe->section("training").get_int("max_steps"), 20);
  EXPECT_EQ(v->recipe->section("training").where("max_steps").file, "--set");
}

TEST(RecipeValidator, DefaultsAreFilledAndTyped) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"fixture\"\nneeded = 4\nfile = \"data/x.jsonl\"\n");
  ASSERT_TRUE(v->problems.empty());
  const auto s = v->recipe->section("scheduler");
  EXPECT_FALSE(s.get_bool("flag"));
  EXPECT_EQ(s.get_int("count"), 3);
  EXPECT_EQ(s.get_float("ratio"), 0.5);
  EXPECT_EQ(s.get_string("mode"), "fast");
  EXPECT_EQ(s.get_float_list("weights"), (std::vector<double>{1.0, 2.0}));
  EXPECT_TRUE(s.get_int_list("ids").empty());
  EXPECT_EQ(s.get_string_list("tags"), std::vector<std::string>{"a"});
  EXPECT_EQ(s.get_path("file"), dir.path() / "data/x.jsonl");  // relative to the recipe file
  EXPECT_TRUE(s.has("needed"));
  EXPECT_FALSE(s.has("count"));
  // Reading an undeclared key or with the wrong type is the plugin author's bug.
  EXPECT_THROW(s.get_int("undeclared"), std::logic_error);
  EXPECT_THROW(s.get_string("count"), std::logic_error);
}

TEST(RecipeValidator, OptionalKeyWithoutDefaultIsUnset) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"fixture\"\nneeded = 4\n");
  ASSERT_TRUE(v->problems.empty());
  const auto s = v->recipe->section("scheduler");
  EXPECT_FALSE(s.has("file"));
  EXPECT_THROW(s.get_path("file"), std::logic_error);
}

TEST(RecipeValidator, WarmupStepsAndRatioTogetherIsAnError) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nwarmup_steps = 10\nwarmup_ratio = 0.1\n");
  const auto& d = only_problem(*v);
  EXPECT_EQ(d.message, "[scheduler] warmup_ratio: is set together with warmup_steps");
  EXPECT_EQ(d.where.line, 3);
}

TEST(RecipeValidator, DeviceMustBeADevice) {
  TempDir dir;
  EXPECT_EQ(only_problem(*validate(dir, "[run]\ndevice = \"gpu\"\n")).message, "[run] device: 'gpu' is not a device");
  EXPECT_TRUE(validate(dir, "[run]\ndevice = \"cuda:1\"\n")->problems.empty());
}

TEST(RecipeValidator, PluginSectionsAreOptionalButCheckedWhenPresent) {
  TempDir dir;
  auto v = validate(dir, "[run]\nname = \"x\"\n");
  ASSERT_TRUE(v->problems.empty());
  EXPECT_FALSE(v->recipe->has_section("method"));
  EXPECT_TRUE(v->recipe->has_section("scheduler"));  // implicit, with defaults
  EXPECT_EQ(v->recipe->plugins.at("scheduler")->name, "linear");

  v = validate(dir, "[method]\nbeta = 0.1\n");
  EXPECT_EQ(only_problem(*v).message, "[method] is missing required key 'name'");
  v = validate(dir, "[method]\nname = \"fixture_loss\"\n");
  EXPECT_TRUE(v->problems.empty());
  EXPECT_EQ(v->recipe->plugins.at("method")->kind, PluginKind::loss);
}

TEST(RecipeValidator, PluginRejectingItsOptionsReportsAtTheKey) {
  TempDir dir;
  auto v = validate(dir, "[scheduler]\nname = \"fixture\"\nneeded = 1\nflag = true\nmode = \"slow\"\n");
  ASSERT_TRUE(v->problems.empty());
  try {
    instantiate_plugins(*v->recipe, v->registry);
    FAIL() << "the fixture rejects flag = true with mode = \"slow\"";
  } catch (const DiagnosticError& e) {
    const auto& d = e.diagnostics().at(0);
    EXPECT_EQ(d.message, "[scheduler] mode: 'slow' cannot be combined with flag = true");
    EXPECT_EQ(d.where.line, 5);
    EXPECT_EQ(d.help, "set flag = false or choose another mode");
  }
}

TEST(ScheduleShape, WarmupFollowsTransformersRule) {
  TempDir dir;
  // warmup_ratio: ceil(0.15 * 10) = 2 steps.
  auto v = validate(dir, "[training]\nmax_steps = 10\n[scheduler]\nwarmup_ratio = 0.15\n");
  ASSERT_TRUE(v->problems.empty());
  EXPECT_EQ(schedule_shape(*v->recipe).warmup_steps, 2);
  v = validate(dir, "[training]\nmax_steps = 10\n[scheduler]\nwarmup_steps = 4\n");
  EXPECT_EQ(schedule_shape(*v->recipe).warmup_steps, 4);
  v = validate(dir, "[training]\nmax_steps = 10\n[scheduler]\nwarmup_steps = 11\n");
  EXPECT_THROW(schedule_shape(*v->recipe), DiagnosticError);
}

TEST(EffectiveRecipe, RoundTripsToTheSameValues) {
  TempDir dir;
  dir.write("base.toml", "[optimizer]\nlearning_rate = 0.1\n");
  auto v = validate(dir, "include = \"base.toml\"\n[scheduler]\nname = \"cosine\"\nmin_lr_rate = 0.1\n",
                    {"training.max_steps=7"});
  ASSERT_TRUE(v->problems.empty());
  const std::string text = render_effective_recipe(*v->recipe);
  // The effective recipe is itself a valid recipe with the same values, defaults spelled out.
  TempDir again;
  auto w = validate(again, text);
  std::string problems;
  for (const auto& d : w->problems) problems += d.format();
  ASSERT_TRUE(w->problems.empty()) << text << problems;
  EXPECT_EQ(w->recipe->section("optimizer").get_float("learning_rate"), 0.1);
  EXPECT_EQ(w->recipe->section("training").get_int("max_steps"), 7);
  EXPECT_EQ(w->recipe->section("scheduler").get_float("min_lr_rate"), 0.1);
  EXPECT_TRUE(w->recipe->section("scheduler").has("num_cycles"));  // the default, written out
  const std::string again_text = render_effective_recipe(*w->recipe);
  EXPECT_EQ(again_text.substr(again_text.find("\n[")), text.substr(text.find("\n[")));
}

}  // namespace
}  // namespace alignkit
