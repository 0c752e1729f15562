// The plugin ABI: what a plugin library exports and what the host checks before calling into it.
//
// A plugin is a shared library exporting one C symbol, `alignkit_plugin_entry`, that returns a
// pointer to a static PluginInfo. The host reads and checks that metadata (magic, API version,
// build ABI, kind, name, option declarations) before it calls anything else; only a plugin it
// accepts ever has its factory called. Write the entry with ALIGNKIT_PLUGIN:
//
//   std::unique_ptr<alignkit::Scheduler> make(const alignkit::RecipeSection& options);
//   ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::scheduler, "my_sched",
//                   "1.0.0", "One line saying what it does", kOptions));
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include <alignkit/options.hpp>
#include <alignkit/version.hpp>

// The version of the contract between host and plugins: the layout of PluginInfo and OptionSpec
// and the virtual interfaces (Scheduler, Loss, OnlineMethod, Dataset, ModelLoader, Judge). Bumped
// on any change to them; the host refuses plugins built for another version. A new kind with its
// own interface (Judge) left it as it was: the plugins of the existing kinds did not change.
// 5: online methods are their own kind (OnlineMethod), losses declare their metrics and scoring
// as data; 4: sequence scores (reward models); 3: online models, rollouts.
#define ALIGNKIT_PLUGIN_API_VERSION 5

// C++ objects cross the boundary, so host and plugin must agree on the standard library ABI
// and, for tensor-facing plugins, on the LibTorch release. The tag records both at the plugin's
// compile time; the host compares it with its own.
#if defined(_LIBCPP_VERSION)
#define ALIGNKIT_STDLIB_TAG "libc++"
#elif defined(_GLIBCXX_USE_CXX11_ABI) && _GLIBCXX_USE_CXX11_ABI
#define ALIGNKIT_STDLIB_TAG "libstdc++-cxx11"
#else
#define ALIGNKIT_STDLIB_TAG "libstdc++-pre-cxx11"
#endif
#define ALIGNKIT_STRINGIFY_INNER(x) #x
#define ALIGNKIT_STRINGIFY(x) ALIGNKIT_STRINGIFY_INNER(x)
#include <torch/version.h>
#define ALIGNKIT_BUILD_ABI                                                     \
  ALIGNKIT_STDLIB_TAG " torch-" ALIGNKIT_STRINGIFY(TORCH_VERSION_MAJOR) "." \
      ALIGNKIT_STRINGIFY(TORCH_VERSION_MINOR)

#define ALIGNKIT_EXPORT __attribute__((visibility("default")))

namespace alignkit {

class RecipeSection;

// Base of every object a plugin creates. Its destructor is defined in the SDK library, so the
// type information is unique across libraries and the host can dynamic_cast to the kind's
// interface.
class PluginObject {
 public:
  PluginObject() = default;
  PluginObject(const PluginObject&) = delete;
  PluginObject& operator=(const PluginObject&) = delete;
  virtual ~PluginObject();
};

enum class PluginKind : std::uint32_t {
  scheduler = 1,     // learning-rate schedule (alignkit/scheduler.hpp)
  loss = 2,          // an alignment method's objective (alignkit/loss.hpp)
  dataset = 3,       // turns data files into examples (alignkit/dataset.hpp)
  model_loader = 4,  // reads and writes model directories (alignkit/model_loader.hpp)
  judge = 5,         // held-out prompts and a score for generations (alignkit/judge.hpp)
  online_method = 6,  // a method that learns from its own samples (alignkit/online_method.hpp)
};

// "scheduler", "loss", "dataset", "model_loader", "judge", "online_method"; nullptr for an
// unknown value.
const char* to_string(PluginKind kind);

// Creates the plugin's object from its validated options. Returns a new object the host owns;
// throws DiagnosticError for option combinations the plugin rejects.
using PluginFactory = PluginObject* (*)(const RecipeSection& options);

inline constexpr std::uint32_t kPluginMagic = 0x414c4b50;  // "ALKP"

struct PluginInfo {
  std::uint32_t magic;        // kPluginMagic: this really is alignkit metadata
  std::uint32_t api_version;  // ALIGNKIT_PLUGIN_API_VERSION at the plugin's build
  std::uint32_t struct_size;  // sizeof(PluginInfo) at the plugin's build
  PluginKind kind;
  const char* name;         // unique per kind: lowercase letters, digits, '_' and '-'
  const char* version;      // the plugin's own version, e.g. "1.2.0"
  const char* description;  // one line
  const char* build_abi;    // ALIGNKIT_BUILD_ABI at the plugin's build
  const OptionSpec* options;
  std::size_t option_count;
  PluginFactory create;
};

// Adapts a typed factory `std::unique_ptr<T> make(const RecipeSection&)` to PluginFactory.
template <auto Make>
PluginObject* adapt_factory(const RecipeSection& options) {
  return Make(options).release();
}

template <auto Make, std::size_t N>
constexpr PluginInfo plugin_info(PluginKind kind, const char* name, const char* version,
                                 const char* description, const OptionSpec (&options)[N]) {
  return PluginInfo{kPluginMagic, ALIGNKIT_PLUGIN_API_VERSION, sizeof(PluginInfo), kind,
                    name, version, description, ALIGNKIT_BUILD_ABI, options, N,
                    &adapt_factory<Make>};
}

template <auto Make>
constexpr PluginInfo plugin_info(PluginKind kind, const char* name, const char* version,
                                 const char* description) {
  return PluginInfo{kPluginMagic, ALIGNKIT_PLUGIN_API_VERSION, sizeof(PluginInfo), kind,
                    name, version, description, ALIGNKIT_BUILD_ABI, nullptr, 0,
                    &adapt_factory<Make>};
}

}  // namespace alignkit

// The symbol every plugin exports; the host resolves it by this exact name.
#define ALIGNKIT_PLUGIN_ENTRY_NAME "alignkit_plugin_entry"

// Defines the plugin's entry point returning the given PluginInfo expression.
#define ALIGNKIT_PLUGIN(...)                                                   \
  extern "C" ALIGNKIT_EXPORT const ::alignkit::PluginInfo* alignkit_plugin_entry() { \
    static const ::alignkit::PluginInfo info = __VA_ARGS__;                   \
    return &info;                                                              \
  }
