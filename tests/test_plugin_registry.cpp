// The plugin registry: each reason a plugin is refused, with the good ones still loaded, and
// libraries kept loaded for as long as their objects live.
#include <gtest/gtest.h>

#include <dlfcn.h>

#include <cmath>

#include <alignkit/loss.hpp>
#include <alignkit/scheduler.hpp>

#include "host/plugin_registry.hpp"
#include "host/recipe_validator.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::fixture_plugin;
using testing::TempDir;

std::string refusal_of(const PluginRegistry& registry, const std::filesystem::path& path) {
  for (const auto& r : registry.refused())
    if (r.path == path) return r.reason;
  return "(not refused)";
}

struct RefusalCase {
  const char* fixture;
  const char* reason_contains;
};

void PrintTo(const RefusalCase& c, std::ostream* out) { *out << c.fixture; }

class PluginRefusal : public ::testing::TestWithParam<RefusalCase> {};

TEST_P(PluginRefusal, IsReportedWithPathAndReasonWhileOthersLoad) {
  const auto& c = GetParam();
  PluginRegistry registry;
  registry.load(fixture_plugin("good"));
  registry.load(fixture_plugin(c.fixture));
  registry.load(testing::plugin_dir());
  ASSERT_EQ(registry.refused().size(), 1u);
  EXPECT_EQ(registry.refused()[0].path, fixture_plugin(c.fixture));
  EXPECT_NE(registry.refused()[0].reason.find(c.reason_contains), std::string::npos)
      << "reason: " << registry.refused()[0].reason;
  // The good fixture and the four built-in schedulers are there regardless.
  EXPECT_NE(registry.find(PluginKind::scheduler, "fixture"), nullptr);
  EXPECT_EQ(registry.names(PluginKind::scheduler).size(), 5u);
}

INSTANTIATE_TEST_SUITE_P(
    EachReason, PluginRefusal,
    ::testing::Values(
        // The fixture declares the host's version + 1.
        RefusalCase{"wrong_api", "this host speaks version " ALIGNKIT_STRINGIFY(ALIGNKIT_PLUGIN_API_VERSION)},
        RefusalCase{"wrong_abi", "built for 'libstdc++-cxx11 torch-9.9'"},
        RefusalCase{"bad_magic", "bad magic number"},
        RefusalCase{"null_info", "returned no metadata"},
        RefusalCase{"throws", "its metadata entry threw: configuration file missing"},
        RefusalCase{"no_entry", "not an alignkit plugin: it does not export 'alignkit_plugin_entry'"},
        RefusalCase{"undefined_symbol", "undefined symbol: alignkit_fixture_symbol_nobody_defines"},
        RefusalCase{"bad_name", "invalid name 'Bad Name'"},
        RefusalCase{"reserved_key", "option 'warmup_steps' is reserved: the host owns [scheduler] warmup_steps"},
        RefusalCase{"bad_default", "option 'beta' has a bad default \"high\": expected a number"},
        RefusalCase{"duplicate_key", "option 'beta' is declared twice"},
        RefusalCase{"duplicate", "duplicate scheduler 'fixture'"}),
    [](const auto& info) { return std::string(info.param.fixture); });

TEST(PluginRegistry, DuplicateKeepsTheFirstFoundAndNamesIt) {
  PluginRegistry registry;
  registry.load(fixture_plugin("good"));
  registry.load(fixture_plugin("duplicate"));
  EXPECT_EQ(registry.find(PluginKind::scheduler, "fixture")->version, "2.1.0");
  EXPECT_NE(refusal_of(registry, fixture_plugin("duplicate")).find(fixture_plugin("good").string()),
            std::string::npos);
}

TEST(PluginRegistry, FileThatIsNotASharedLibraryIsRefused) {
  TempDir dir;
  const auto fake = dir.write("libnot_a_library.so", "this is text, not ELF\n");
  PluginRegistry registry;
  registry.load(dir.path());
  registry.load(testing::plugin_dir());
  EXPECT_NE(refusal_of(registry, fake).find("not a loadable shared library"), std::string::npos)
      << refusal_of(registry, fake);
  EXPECT_EQ(registry.names(PluginKind::scheduler).size(), 4u);
}

TEST(PluginRegistry, FolderScanIgnoresFilesThatAreNotLibraries) {
  TempDir dir;
  dir.write("README.md", "notes\n");
  dir.write("recipe.toml", "[run]\n");
  PluginRegistry registry;
  registry.load(dir.path());
  EXPECT_TRUE(registry.refused().empty());
  EXPECT_TRUE(registry.accepted().empty());
}

TEST(PluginRegistry, MissingExplicitFileIsRefused) {
  PluginRegistry registry;
  registry.load("/nonexistent/libplugin.so");
  ASSERT_EQ(registry.refused().size(), 1u);
  EXPECT_EQ(registry.refused()[0].reason, "no such file or folder");
}

TEST(PluginRegistry, LoadingTheSameFileTwiceIsANoOp) {
  PluginRegistry registry;
  registry.load(testing::plugin_dir());
  registry.load(testing::plugin_dir());
  registry.load(testing::plugin_dir() / "libscheduler_cosine.so");
  EXPECT_EQ(registry.names(PluginKind::scheduler).size(), 4u);
  EXPECT_TRUE(registry.refused().empty());
}

TEST(PluginRegistry, MetadataIsCopiedFromThePlugin) {
  PluginRegistry registry;
  registry.load(testing::plugin_dir());
  const auto* cosine = registry.find(PluginKind::scheduler, "cosine");
  ASSERT_NE(cosine, nullptr);
  EXPECT_EQ(cosine->version, "1.0.0");
  EXPECT_EQ(cosine->api_version, static_cast<std::uint32_t>(ALIGNKIT_PLUGIN_API_VERSION));
  ASSERT_EQ(cosine->options.size(), 2u);
  EXPECT_STREQ(cosine->options[0].key, "num_cycles");
  EXPECT_STREQ(cosine->options[0].default_value, "0.5");
}

TEST(PluginRegistry, RequireListsInstalledPluginsAndSuggests) {
  PluginRegistry registry;
  registry.load(testing::plugin_dir());
  try {
    registry.require(PluginKind::scheduler, "linaer", SourceLocation{"r.toml", 3, 8}, "name = \"linaer\"");
    FAIL();
  } catch (const DiagnosticError& e) {
    const auto& d = e.diagnostics().at(0);
    EXPECT_EQ(d.message, "no scheduler plugin named 'linaer'");
    EXPECT_EQ(d.help, "did you mean 'linear'?");
    EXPECT_EQ(d.where.line, 3);
  }
  PluginRegistry empty;
  try {
    empty.require(PluginKind::loss, "dpo", SourceLocation{}, "");
    FAIL();
  } catch (const DiagnosticError& e) {
    EXPECT_EQ(e.diagnostics().at(0).notes.at(0), "no loss plugins are installed");
  }
}

// Validated [scheduler] and [method] sections for the fixture plugins, for creating objects directly.
struct FixtureSection : testing::RecipeFixture {
  explicit FixtureSection(const std::string& variant = "good")
      : RecipeFixture("[scheduler]\nname = \"" + std::string(variant == "wrong_type" ? "wrong_type" : "fixture") +
                          "\"\n" + (variant == "good" ? "needed = 1\nratio = 0.25\n" : "") +
                          "[method]\nname = \"fixture_loss\"\n",
                      {fixture_plugin(variant), fixture_plugin("loss")}) {}
};

bool library_is_loaded(const std::filesystem::path& path) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (!handle) return false;
  dlclose(handle);
  return true;
}

TEST(PluginRegistry, ObjectsKeepTheirLibraryLoaded) {
  std::shared_ptr<Scheduler> scheduler;
  {
    FixtureSection f;
    scheduler = f.registry.create<Scheduler>(*f.recipe.plugins.at("scheduler"), f.recipe.section("scheduler"));
  }  // the registry, its records and the recipe are gone
  EXPECT_TRUE(library_is_loaded(fixture_plugin("good")));
  EXPECT_EQ(scheduler->lr_factor(0, ScheduleShape{10, 0}), 0.25);  // calls into the plugin
  scheduler.reset();
  EXPECT_FALSE(library_is_loaded(fixture_plugin("good")));
}

TEST(PluginRegistry, CreateChecksTheObjectImplementsTheKind) {
  FixtureSection f("wrong_type");
  try {
    f.registry.create<Scheduler>(*f.recipe.plugins.at("scheduler"), f.recipe.section("scheduler"));
    FAIL();
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.diagnostics().at(0).message.find("does not implement the scheduler interface"), std::string::npos);
  }
}

TEST(PluginRegistry, LossPluginDeclaresWhatItNeeds) {
  FixtureSection f;
  auto loss = f.registry.create<Loss>(*f.recipe.plugins.at("method"), f.recipe.section("method"));
  EXPECT_TRUE(loss->requirements().reference_model);
  EXPECT_EQ(loss->requirements().examples, ExampleLayout::paired);
  LossBatch batch;
  batch.chosen.logps = torch::tensor({-1.0, -2.0});
  batch.rejected.logps = torch::tensor({-3.0, -3.0});
  EXPECT_DOUBLE_EQ(loss->compute(batch).loss.item<double>(), 1.5);
}

TEST(CheckPluginInfo, AcceptsWellFormedMetadataAndRejectsEachField) {
  static const OptionSpec options[] = {
      {.key = "beta", .type = OptionType::floating, .default_value = "0.1", .doc = "Strength."}};
  PluginInfo info{kPluginMagic, ALIGNKIT_PLUGIN_API_VERSION, sizeof(PluginInfo), PluginKind::loss,
                  "demo", "1.0", "A demo", ALIGNKIT_BUILD_ABI, options, 1,
                  [](const RecipeSection&) -> PluginObject* { return nullptr; }};
  EXPECT_EQ(check_plugin_info(info), "");
  auto with = [&](auto change) {
    PluginInfo copy = info;
    change(copy);
    return check_plugin_info(copy);
  };
  EXPECT_NE(with([](PluginInfo& i) { i.struct_size = 8; }).find("metadata is 8 bytes"), std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.kind = static_cast<PluginKind>(99); }).find("unknown plugin kind 99"),
            std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.version = ""; }).find("no version"), std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.description = nullptr; }).find("no description"), std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.create = nullptr; }).find("no factory"), std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.option_count = 2; i.options = nullptr; }).find("no option table"),
            std::string::npos);
  static const OptionSpec bad_range[] = {
      {.key = "k", .type = OptionType::floating, .default_value = "0.5", .doc = "", .min = 1, .max = 0}};
  EXPECT_NE(with([](PluginInfo& i) { i.options = bad_range; }).find("min 1 above max 0"), std::string::npos);
  static const OptionSpec choices_on_int[] = {
      {.key = "k", .type = OptionType::integer, .default_value = "1", .doc = "", .choices = "a|b"}};
  EXPECT_NE(with([](PluginInfo& i) { i.options = choices_on_int; }).find("not a string option"), std::string::npos);
  static const OptionSpec nan_bound[] = {
      {.key = "k", .type = OptionType::floating, .default_value = "0.5", .doc = "", .min = std::nan("")}};
  EXPECT_NE(with([](PluginInfo& i) { i.options = nan_bound; }).find("NaN bound"), std::string::npos);
  static const OptionSpec empty_range[] = {
      {.key = "k", .type = OptionType::floating, .doc = "", .min = 1, .max = 1, .min_exclusive = true}};
  EXPECT_NE(with([](PluginInfo& i) { i.options = empty_range; }).find("empty range"), std::string::npos);
  static const OptionSpec two_values[] = {
      {.key = "k", .type = OptionType::string, .default_value = "\"a\"\nv2 = 3", .doc = ""}};
  EXPECT_NE(with([](PluginInfo& i) { i.options = two_values; }).find("more than one value"), std::string::npos);
  static const OptionSpec empty_choice[] = {
      {.key = "k", .type = OptionType::string, .default_value = "\"a\"", .doc = "", .choices = ""}};
  EXPECT_NE(with([](PluginInfo& i) { i.options = empty_choice; }).find("empty choice"), std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.description = "two\nlines"; }).find("not one printable line"), std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.version = "1|2"; }).find("not one printable line"), std::string::npos);
  EXPECT_NE(with([](PluginInfo& i) { i.description = "bad \xff utf-8"; }).find("not one printable line"),
            std::string::npos);
  static const OptionSpec out_of_range_default[] = {
      {.key = "k", .type = OptionType::integer, .default_value = "5", .doc = "", .max = 4}};
  EXPECT_NE(with([](PluginInfo& i) { i.options = out_of_range_default; }).find("bad default 5"), std::string::npos);
}

}  // namespace
}  // namespace alignkit
