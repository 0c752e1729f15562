// The plugin registry: finds plugin libraries, checks their metadata, and creates their objects.
//
// Order of search (earlier wins a name clash): files a recipe names in [plugins] paths, then
// ALIGNKIT_PLUGIN_PATH (folders or files, ':'-separated), then <libdir>/alignkit/plugins beside
// the host binary's bin/ folder, which is both the build tree's and the install tree's plugin folder.
//
// A library is accepted only after its metadata passes every check; a refused one is recorded
// with its path and reason and the others carry on. Objects a plugin creates hold a reference to
// their library, so it stays loaded for as long as any of them lives.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <alignkit/diagnostic.hpp>
#include <alignkit/error_text.hpp>
#include <alignkit/plugin.hpp>
#include <alignkit/recipe_section.hpp>

namespace boost::dll {
class shared_library;
}

namespace alignkit {

struct PluginRecord {
  std::filesystem::path path;
  PluginKind kind;
  std::string name;
  std::string version;
  std::string description;
  std::uint32_t api_version = 0;
  std::vector<OptionSpec> options;  // pointers into the library, which the record keeps loaded
  PluginFactory create = nullptr;
  std::shared_ptr<boost::dll::shared_library> library;
};

struct RefusedPlugin {
  std::filesystem::path path;
  std::string name;    // "kind 'name'" when the metadata was readable, else empty
  std::string reason;  // why it was refused, lowercase, no final period
};

class PluginRegistry {
 public:
  PluginRegistry();
  ~PluginRegistry();
  PluginRegistry(PluginRegistry&&) noexcept;
  PluginRegistry& operator=(PluginRegistry&&) noexcept;

  // The folders searched by default: ALIGNKIT_PLUGIN_PATH's entries, then the plugin folder
  // beside the running executable.
  static std::vector<std::filesystem::path> default_search_path();

  // Loads every shared library in a folder (files named *.so or *.so.N), or one file. A file
  // named explicitly is always tried; from a folder only shared-library names are. A plugin
  // folder holds plugins only: each library in it is loaded, running its static initialisers.
  // Loading the same file twice is a no-op.
  void load(const std::filesystem::path& file_or_folder);
  void load_default_search_path();

  const std::vector<PluginRecord>& accepted() const { return accepted_; }
  const std::vector<RefusedPlugin>& refused() const { return refused_; }

  const PluginRecord* find(PluginKind kind, std::string_view name) const;
  const PluginRecord* find(const std::vector<PluginKind>& kinds, std::string_view name) const;
  std::vector<std::string> names(PluginKind kind) const;
  std::vector<std::string> names(const std::vector<PluginKind>& kinds) const;  // sorted

  // Finds a plugin of one of `kinds` or throws a DiagnosticError located at `where` that names
  // what was asked for (`noun`: "method", "scheduler", ...), whether a library of that name was
  // refused (and why), and what is installed.
  const PluginRecord& require(const std::vector<PluginKind>& kinds, const std::string& noun, std::string_view name,
                              const SourceLocation& where, const std::string& source_line) const;
  const PluginRecord& require(PluginKind kind, std::string_view name, const SourceLocation& where,
                              const std::string& source_line) const {
    return require({kind}, to_string(kind), name, where, source_line);
  }

  // Creates the plugin's object through its factory and checks it is a T. The returned pointer
  // keeps the plugin library loaded.
  template <typename T>
  std::shared_ptr<T> create(const PluginRecord& plugin, const RecipeSection& options) const {
    PluginObject* object = create_object(plugin, options);
    if (auto* typed = dynamic_cast<T*>(object)) {
      auto library = plugin.library;
      return std::shared_ptr<T>(typed, [library](T* p) { delete p; });
    }
    delete object;
    throw_wrong_type(plugin);
  }

  // For objects a plugin object returns (a model from a loader): the returned pointer also keeps
  // the plugin's library loaded, since the object's code lives there.
  template <typename T>
  static std::shared_ptr<T> keep_loaded(const PluginRecord& plugin, std::shared_ptr<T> object) {
    // Members are destroyed in reverse order: the object first, then the library.
    auto holder = std::make_shared<std::pair<std::shared_ptr<boost::dll::shared_library>, std::shared_ptr<T>>>(
        plugin.library, std::move(object));
    return std::shared_ptr<T>(holder, holder->second.get());
  }

 private:
  PluginObject* create_object(const PluginRecord& plugin, const RecipeSection& options) const;
  [[noreturn]] void throw_wrong_type(const PluginRecord& plugin) const;
  void load_file(const std::filesystem::path& file);

  std::vector<PluginRecord> accepted_;
  std::vector<RefusedPlugin> refused_;
  std::vector<std::filesystem::path> seen_;
};

// "<kind> plugin '<name>' (<path>) failed <doing>: <what>"
Diagnostic plugin_failure(const PluginRecord& plugin, const char* doing, const std::string& what);

// Runs `fn`, which calls into `plugin`, and turns whatever it throws into a DiagnosticError of the
// SDK's own type that names the plugin. The conversion happens here, while the plugin's library
// is surely loaded: an exception whose type or message lives in a plugin must not outlive it.
template <typename F>
auto call_plugin(const PluginRecord& plugin, const char* doing, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const DiagnosticError& e) {
    throw DiagnosticError(e.diagnostics());  // copied: the thrown object may be a plugin's subclass
  } catch (const std::exception& e) {
    throw DiagnosticError(plugin_failure(plugin, doing, error_text(e)));
  } catch (...) {
    throw DiagnosticError(plugin_failure(plugin, doing, "it threw something that is not a std::exception"));
  }
}

// Checks one plugin's metadata against this host; returns the reason it is refused, or empty.
// Exposed for tests: the loader runs it on every library before accepting it.
std::string check_plugin_info(const PluginInfo& info);

}  // namespace alignkit
