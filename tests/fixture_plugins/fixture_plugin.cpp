// Plugins made to be refused, one per reason the registry gives, plus well-formed plugins of every
// kind. One source, built once per FIXTURE_* definition (tests/CMakeLists.txt).
#include <alignkit/alignkit.hpp>

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace {

const alignkit::OptionSpec kAllTypes[] = {
    {.key = "flag", .type = alignkit::OptionType::boolean, .default_value = "false", .doc = "A boolean."},
    {.key = "count", .type = alignkit::OptionType::integer, .default_value = "3", .doc = "An integer.",
     .min = 1, .max = 10},
    {.key = "ratio", .type = alignkit::OptionType::floating, .default_value = "0.5", .doc = "A float.",
     .min = 0, .max = 1, .max_exclusive = true},
    {.key = "mode", .type = alignkit::OptionType::string, .default_value = "\"fast\"", .doc = "A choice.",
     .choices = "fast|slow|balanced"},
    {.key = "file", .type = alignkit::OptionType::path, .doc = "An optional path."},
    {.key = "weights", .type = alignkit::OptionType::float_list, .default_value = "[1.0, 2]",
     .doc = "Floats.", .min = 0},
    {.key = "ids", .type = alignkit::OptionType::int_list, .default_value = "[]", .doc = "Integers."},
    {.key = "tags", .type = alignkit::OptionType::string_list, .default_value = "[\"a\"]", .doc = "Strings."},
    {.key = "needed", .type = alignkit::OptionType::integer, .doc = "Required.", .required = true},
    {.key = "throw_in", .type = alignkit::OptionType::string, .default_value = "\"nothing\"",
     .doc = "Where to throw: the host must survive a plugin throwing anything, anywhere.",
     .choices = "nothing|factory|check|factor"},
    {.key = "throw_what", .type = alignkit::OptionType::string, .default_value = "\"subclass\"",
     .doc = "A std::exception subclass defined in this plugin, or an int.", .choices = "subclass|int"},
};

// With ALIGNKIT_FIXTURE_TRACE=FILE, each factory appends its plugin's name to FILE: the tests count
// how often the host creates each plugin's object.
void trace_creation(const char* name) {
  if (const char* file = std::getenv("ALIGNKIT_FIXTURE_TRACE")) std::ofstream(file, std::ios::app) << name << "\n";
}

// An exception type whose code lives in this plugin: it must not outlive the library.
struct FixtureError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_as(const std::string& what, const char* where) {
  if (what == "int") throw 42;
  throw FixtureError(std::string("fixture failure in ") + where);
}

class FixtureScheduler final : public alignkit::Scheduler {
 public:
  explicit FixtureScheduler(const alignkit::RecipeSection& options)
      : ratio_(options.get_float("ratio")),
        throw_in_(options.get_string("throw_in")),
        throw_what_(options.get_string("throw_what")) {
    if (throw_in_ == "factory") throw_as(throw_what_, "the factory");
    // A cross-field rule only the plugin knows, reported at the key like the host's own errors.
    if (options.get_bool("flag") && options.get_string("mode") == "slow")
      throw alignkit::DiagnosticError(options.error("mode", "'slow' cannot be combined with flag = true",
                                                    "set flag = false or choose another mode"));
  }
  void check(const alignkit::ScheduleShape&) const override {
    if (throw_in_ == "check") throw_as(throw_what_, "check");
  }
  double lr_factor(std::int64_t step, const alignkit::ScheduleShape&) const override {
    if (throw_in_ == "factor" && step == 3) throw_as(throw_what_, "lr_factor");
    return ratio_;
  }

 private:
  double ratio_;
  std::string throw_in_, throw_what_;
};

std::unique_ptr<FixtureScheduler> make_scheduler(const alignkit::RecipeSection& options) {
  return std::make_unique<FixtureScheduler>(options);
}

class NotAScheduler final : public alignkit::PluginObject {};
std::unique_ptr<NotAScheduler> make_wrong_type(const alignkit::RecipeSection&) {
  return std::make_unique<NotAScheduler>();
}

class FixtureLoss final : public alignkit::Loss {
 public:
  alignkit::LossRequirements requirements() const override {
    alignkit::LossRequirements r;
    r.reference_model = true;
    return r;
  }
  alignkit::LossResult compute(const alignkit::LossBatch& batch) override {
    return {(batch.chosen.logps - batch.rejected.logps).mean(), {}};
  }
};
std::unique_ptr<FixtureLoss> make_loss(const alignkit::RecipeSection&) {
  trace_creation("fixture_loss");
  return std::make_unique<FixtureLoss>();
}

class FixtureDataset final : public alignkit::Dataset {
 public:
  alignkit::ExampleLayout layout() const override { return alignkit::ExampleLayout::paired; }
  void read(alignkit::ExampleSink& sink) override {
    alignkit::Example example;
    example.prompt.form = alignkit::Segment::Form::text;
    example.prompt.text = "2 + 2 =";
    sink.add(std::move(example));
  }
};
std::unique_ptr<FixtureDataset> make_dataset(const alignkit::RecipeSection&) {
  trace_creation("fixture_data");
  return std::make_unique<FixtureDataset>();
}

class FixtureModelLoader final : public alignkit::ModelLoader {
 public:
  alignkit::ModelDescription describe(const std::filesystem::path&) const override {
    alignkit::ModelDescription d;
    d.architecture = "FixtureForCausalLM";
    return d;
  }
  std::shared_ptr<alignkit::CausalLM> load(const std::filesystem::path& dir, const alignkit::LoadOptions&) override {
    throw std::runtime_error("the fixture loader loads no weights: " + dir.string());
  }
  void save(const alignkit::CausalLM&, const std::filesystem::path&) const override {}
};
std::unique_ptr<FixtureModelLoader> make_model_loader(const alignkit::RecipeSection&) {
  trace_creation("fixture_loader");
  return std::make_unique<FixtureModelLoader>();
}

const alignkit::OptionSpec kReserved[] = {
    {.key = "warmup_steps", .type = alignkit::OptionType::integer, .default_value = "0", .doc = "Clashes."},
};
const alignkit::OptionSpec kBadDefault[] = {
    {.key = "beta", .type = alignkit::OptionType::floating, .default_value = "\"high\"", .doc = "Bad default."},
};
const alignkit::OptionSpec kDuplicateKey[] = {
    {.key = "beta", .type = alignkit::OptionType::floating, .default_value = "0.1", .doc = "Once."},
    {.key = "beta", .type = alignkit::OptionType::floating, .default_value = "0.2", .doc = "Twice."},
};

}  // namespace

using alignkit::PluginKind;

#if defined(FIXTURE_GOOD)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_scheduler>(PluginKind::scheduler, "fixture", "2.1.0",
                                                      "Scheduler declaring one option of every type", kAllTypes))
#elif defined(FIXTURE_DUPLICATE)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_scheduler>(PluginKind::scheduler, "fixture", "9.9.9",
                                                      "Same kind and name as the good fixture", kAllTypes))
#elif defined(FIXTURE_LOSS)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_loss>(PluginKind::loss, "fixture_loss", "1.0.0",
                                                 "A loss that needs a reference model"))
#elif defined(FIXTURE_DATASET)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_dataset>(PluginKind::dataset, "fixture_data", "1.0.0",
                                                    "One paired example"))
#elif defined(FIXTURE_MODEL_LOADER)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_model_loader>(PluginKind::model_loader, "fixture_loader", "1.0.0",
                                                         "Describes a model, loads nothing"))
#elif defined(FIXTURE_WRONG_API)
extern "C" ALIGNKIT_EXPORT const alignkit::PluginInfo* alignkit_plugin_entry() {
  static alignkit::PluginInfo info = alignkit::plugin_info<make_scheduler>(
      PluginKind::scheduler, "future", "1.0.0", "Built for a newer host", kAllTypes);
  info.api_version = ALIGNKIT_PLUGIN_API_VERSION + 1;
  return &info;
}
#elif defined(FIXTURE_WRONG_ABI)
extern "C" ALIGNKIT_EXPORT const alignkit::PluginInfo* alignkit_plugin_entry() {
  static alignkit::PluginInfo info = alignkit::plugin_info<make_scheduler>(
      PluginKind::scheduler, "other_abi", "1.0.0", "Built against another LibTorch", kAllTypes);
  info.build_abi = "libstdc++-cxx11 torch-9.9";
  return &info;
}
#elif defined(FIXTURE_BAD_MAGIC)
extern "C" ALIGNKIT_EXPORT const alignkit::PluginInfo* alignkit_plugin_entry() {
  static alignkit::PluginInfo info = alignkit::plugin_info<make_scheduler>(
      PluginKind::scheduler, "impostor", "1.0.0", "Not alignkit metadata", kAllTypes);
  info.magic = 0x12345678;
  return &info;
}
#elif defined(FIXTURE_NULL_INFO)
extern "C" ALIGNKIT_EXPORT const alignkit::PluginInfo* alignkit_plugin_entry() { return nullptr; }
#elif defined(FIXTURE_THROWS)
extern "C" ALIGNKIT_EXPORT const alignkit::PluginInfo* alignkit_plugin_entry() {
  throw std::runtime_error("configuration file missing");
}
#elif defined(FIXTURE_NO_ENTRY)
extern "C" ALIGNKIT_EXPORT int some_other_function() { return 42; }
#elif defined(FIXTURE_UNDEFINED_SYMBOL)
extern "C" void alignkit_fixture_symbol_nobody_defines();
extern "C" ALIGNKIT_EXPORT void uses_missing_symbol() { alignkit_fixture_symbol_nobody_defines(); }
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_scheduler>(PluginKind::scheduler, "unresolved", "1.0.0",
                                                      "Links against a symbol nobody defines", kAllTypes))
#elif defined(FIXTURE_BAD_NAME)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_scheduler>(PluginKind::scheduler, "Bad Name", "1.0.0",
                                                      "Name with a space and capitals", kAllTypes))
#elif defined(FIXTURE_RESERVED_KEY)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_scheduler>(PluginKind::scheduler, "reserved", "1.0.0",
                                                      "Declares a key the host owns", kReserved))
#elif defined(FIXTURE_BAD_DEFAULT)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_scheduler>(PluginKind::scheduler, "bad_default", "1.0.0",
                                                      "A float option whose default is a string", kBadDefault))
#elif defined(FIXTURE_DUPLICATE_KEY)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_scheduler>(PluginKind::scheduler, "duplicate_key", "1.0.0",
                                                      "Declares one key twice", kDuplicateKey))
#elif defined(FIXTURE_WRONG_TYPE)
ALIGNKIT_PLUGIN(alignkit::plugin_info<make_wrong_type>(PluginKind::scheduler, "wrong_type", "1.0.0",
                                                       "Says scheduler, makes something else"))
#else
#error "define one FIXTURE_* macro"
#endif
