#include "plugin_registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include <dlfcn.h>

#define BOOST_DLL_USE_STD_FS
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "option_value.hpp"
#include "recipe_schema.hpp"
#include <alignkit/did_you_mean.hpp>

namespace alignkit {

namespace fs = std::filesystem;

namespace {

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
         });
}

bool valid_key(std::string_view key) {
  return !key.empty() && key.size() <= 64 && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// One line of valid UTF-8 without control characters or '|' (which would break the tables that
// `alignkit plugins` and the recipe reference print).
bool printable_line(const char* text) {
  for (const auto* p = reinterpret_cast<const unsigned char*>(text); *p;) {
    if (*p < 0x20 || *p == 0x7f || *p == '|') return false;
    int extra = *p < 0x80 ? 0 : (*p >> 5) == 0x6 ? 1 : (*p >> 4) == 0xe ? 2 : (*p >> 3) == 0x1e ? 3 : -1;
    if (extra < 0) return false;
    ++p;
    for (; extra > 0; --extra, ++p)
      if ((*p & 0xc0) != 0x80) return false;
  }
  return true;
}

bool known_option_type(OptionType type) {
  return static_cast<std::uint32_t>(type) >= 1 && static_cast<std::uint32_t>(type) <= 9;
}

std::string check_options(const PluginInfo& info, const SectionSchema* section) {
  if (info.option_count > 0 && !info.options) return "declares options but gives no option table";
  if (info.option_count > 256) return fmt::format("declares {} options; at most 256", info.option_count);
  std::set<std::string> seen;
  for (std::size_t i = 0; i < info.option_count; ++i) {
    const OptionSpec& spec = info.options[i];
    if (!spec.key || !valid_key(spec.key))
      return fmt::format("option {} has an invalid key{}: keys are lowercase letters, digits and '_'",
                         i, spec.key ? fmt::format(" '{}'", spec.key) : std::string{});
    const std::string key = spec.key;
    if (!seen.insert(key).second) return fmt::format("option '{}' is declared twice", key);
    if (section) {
      for (const auto& host : section->host_options)
        if (key == host.key)
          return fmt::format("option '{}' is reserved: the host owns [{}] {}", key, section->name, key);
    }
    if (!known_option_type(spec.type))
      return fmt::format("option '{}' has unknown type {}", key, static_cast<std::uint32_t>(spec.type));
    if (!spec.doc) return fmt::format("option '{}' has no doc string", key);
    if (!printable_line(spec.doc)) return fmt::format("option '{}' has a doc string that is not one printable line", key);
    if (std::isnan(spec.min) || std::isnan(spec.max)) return fmt::format("option '{}' has a NaN bound", key);
    if (spec.min > spec.max) return fmt::format("option '{}' has min {} above max {}", key, spec.min, spec.max);
    if (spec.min == spec.max && (spec.min_exclusive || spec.max_exclusive))
      return fmt::format("option '{}' has an empty range", key);
    if (spec.choices && spec.type != OptionType::string)
      return fmt::format("option '{}' lists choices but is not a string option", key);
    if (spec.choices) {
      const std::string_view choices = spec.choices;
      if (choices.empty() || choices.front() == '|' || choices.back() == '|' ||
          choices.find("||") != std::string_view::npos)
        return fmt::format("option '{}' has an empty choice in '{}'", key, spec.choices);
    }
    if (spec.required && spec.default_value)
      return fmt::format("option '{}' is required and also has a default", key);
    auto parsed = parse_default(spec);
    if (!parsed.problem.empty())
      return fmt::format("option '{}' has a bad default {}: {}", key, spec.default_value, parsed.problem);
  }
  return {};
}

std::vector<fs::path> split_search_path(const char* value) {
  std::vector<fs::path> out;
  if (!value) return out;
  std::stringstream in(value);
  for (std::string item; std::getline(in, item, ':');)
    if (!item.empty()) out.emplace_back(item);
  return out;
}

bool looks_like_shared_library(const fs::path& path) {
  const std::string name = path.filename().string();
  return name.size() > 3 && (path.extension() == ".so" || name.find(".so.") != std::string::npos);
}

}  // namespace

std::string check_plugin_info(const PluginInfo& info) {
  if (info.magic != kPluginMagic) return "its entry point does not return alignkit plugin metadata (bad magic number)";
  if (info.api_version != ALIGNKIT_PLUGIN_API_VERSION)
    return fmt::format("built for plugin API version {}, this host speaks version {}; rebuild it "
                       "against this alignkit SDK",
                       info.api_version, ALIGNKIT_PLUGIN_API_VERSION);
  if (info.struct_size != sizeof(PluginInfo))
    return fmt::format("metadata is {} bytes, expected {}", info.struct_size, sizeof(PluginInfo));
  if (!info.build_abi || std::string_view(info.build_abi) != ALIGNKIT_BUILD_ABI)
    return fmt::format("built for '{}', this host is '{}'; rebuild it against this alignkit SDK",
                       info.build_abi ? info.build_abi : "(none)", ALIGNKIT_BUILD_ABI);
  if (!to_string(info.kind))
    return fmt::format("unknown plugin kind {}", static_cast<std::uint32_t>(info.kind));
  if (!info.name || !valid_name(info.name))
    return fmt::format("invalid name{}: names are 1-64 lowercase letters, digits, '_' or '-'",
                       info.name ? fmt::format(" '{}'", info.name) : std::string{});
  if (!info.version || !*info.version) return "has no version string";
  if (!printable_line(info.version)) return "its version string is not one printable line";
  if (!info.description || !*info.description) return "has no description";
  if (!printable_line(info.description)) return "its description is not one printable line";
  if (!info.create) return "has no factory";
  return check_options(info, section_for_kind(info.kind));
}

PluginRegistry::PluginRegistry() = default;
PluginRegistry::~PluginRegistry() = default;
PluginRegistry::PluginRegistry(PluginRegistry&&) noexcept = default;
PluginRegistry& PluginRegistry::operator=(PluginRegistry&&) noexcept = default;

std::vector<fs::path> PluginRegistry::default_search_path() {
  std::vector<fs::path> out = split_search_path(std::getenv("ALIGNKIT_PLUGIN_PATH"));
  std::error_code ec;
  const fs::path exe = boost::dll::program_location(ec);
  if (!ec) {
    const fs::path installed = exe.parent_path().parent_path() / ALIGNKIT_PLUGIN_SUBDIR;
    // A binary copied away from its tree has no plugin folder beside it; that is not an error.
    if (fs::is_directory(installed, ec)) out.push_back(installed);
  }
  return out;
}

void PluginRegistry::load_default_search_path() {
  for (const auto& entry : default_search_path()) load(entry);
}

void PluginRegistry::load(const fs::path& file_or_folder) {
  std::error_code ec;
  if (fs::is_directory(file_or_folder, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(file_or_folder, ec))
      if (looks_like_shared_library(entry.path())) files.push_back(entry.path());
    std::sort(files.begin(), files.end());  // a stable order makes duplicate resolution stable
    for (const auto& f : files) load_file(f);
  } else {
    load_file(file_or_folder);
  }
}

void PluginRegistry::load_file(const fs::path& file) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(file, ec);
  if (ec) canonical = file;
  if (std::find(seen_.begin(), seen_.end(), canonical) != seen_.end()) return;
  seen_.push_back(canonical);

  auto refuse = [&](std::string reason, std::string name = {}) {
    refused_.push_back(RefusedPlugin{file, std::move(name), std::move(reason)});
  };
  if (!fs::exists(file, ec)) return refuse("no such file or folder");
  if (!fs::is_regular_file(file, ec)) return refuse("not a regular file");

  auto library = std::make_shared<boost::dll::shared_library>();
  boost::dll::fs::error_code load_error;
  // rtld_now: an unresolved symbol is reported here, with the path, not later as a crash.
  library->load(file, load_error, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  if (load_error || !library->is_loaded()) {
    // Boost.DLL keeps only an error code; the loader's own words ("invalid ELF header",
    // "undefined symbol: ...") are what a person needs, so ask the loader once more.
    std::string detail = load_error ? load_error.message() : "unknown error";
    dlerror();
    if (void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      dlclose(handle);
    } else if (const char* text = dlerror()) {
      detail = text;
    }
    return refuse(fmt::format("not a loadable shared library: {}", detail));
  }
  if (!library->has(ALIGNKIT_PLUGIN_ENTRY_NAME))
    return refuse(fmt::format("not an alignkit plugin: it does not export '{}' (define it with "
                              "ALIGNKIT_PLUGIN)",
                              ALIGNKIT_PLUGIN_ENTRY_NAME));

  const PluginInfo* info = nullptr;
  try {
    auto& entry = library->get<const PluginInfo*()>(ALIGNKIT_PLUGIN_ENTRY_NAME);
    info = entry();
  } catch (const std::exception& e) {
    return refuse(fmt::format("its metadata entry threw: {}", e.what()));
  } catch (...) {
    return refuse("its metadata entry threw a non-standard exception");
  }
  if (!info) return refuse("its metadata entry returned no metadata");
  // Only the first fields are read before the magic and version are known to be right.
  if (info->magic != kPluginMagic || info->api_version != ALIGNKIT_PLUGIN_API_VERSION)
    return refuse(check_plugin_info(*info));
  const std::string label =
      info->name && to_string(info->kind) ? fmt::format("{} '{}'", to_string(info->kind), info->name) : "";
  if (auto reason = check_plugin_info(*info); !reason.empty()) return refuse(reason, label);
  if (const auto* existing = find(info->kind, info->name))
    return refuse(fmt::format("duplicate {}: {} was found first and is used", label,
                              existing->path.string()),
                  label);

  PluginRecord record;
  record.path = file;
  record.kind = info->kind;
  record.name = info->name;
  record.version = info->version;
  record.description = info->description;
  record.api_version = info->api_version;
  record.options.assign(info->options, info->options + info->option_count);
  record.create = info->create;
  record.library = std::move(library);
  accepted_.push_back(std::move(record));
}

const PluginRecord* PluginRegistry::find(PluginKind kind, std::string_view name) const {
  for (const auto& p : accepted_)
    if (p.kind == kind && p.name == name) return &p;
  return nullptr;
}

const PluginRecord* PluginRegistry::find(const std::vector<PluginKind>& kinds, std::string_view name) const {
  for (const auto kind : kinds)
    if (const auto* found = find(kind, name)) return found;
  return nullptr;
}

std::vector<std::string> PluginRegistry::names(PluginKind kind) const { return names(std::vector<PluginKind>{kind}); }

std::vector<std::string> PluginRegistry::names(const std::vector<PluginKind>& kinds) const {
  std::vector<std::string> out;
  for (const auto& p : accepted_)
    if (std::find(kinds.begin(), kinds.end(), p.kind) != kinds.end()) out.push_back(p.name);
  std::sort(out.begin(), out.end());
  return out;
}

const PluginRecord& PluginRegistry::require(const std::vector<PluginKind>& kinds, const std::string& noun,
                                            std::string_view name, const SourceLocation& where,
                                            const std::string& source_line) const {
  if (const auto* found = find(kinds, name)) return *found;
  Diagnostic d;
  d.where = where;
  d.source_line = source_line;
  d.message = fmt::format("no {} plugin named '{}'", noun, name);
  for (const auto kind : kinds) {
    const std::string label = fmt::format("{} '{}'", to_string(kind), name);
    for (const auto& r : refused_)
      if (r.name == label) d.notes.push_back(fmt::format("{} was refused: {}", r.path.string(), r.reason));
  }
  const auto installed = names(kinds);
  if (installed.empty()) {
    d.notes.push_back(fmt::format("no {} plugins are installed", noun));
  } else {
    d.notes.push_back(fmt::format("installed {} plugins: {}", noun, fmt::join(installed, ", ")));
    d.help = did_you_mean(name, installed);
  }
  if (d.help.empty())
    d.help = "`alignkit plugins` lists what was found and why anything was refused; a recipe can "
             "load more with [plugins] paths";
  throw DiagnosticError(std::move(d));
}

Diagnostic plugin_failure(const PluginRecord& plugin, const char* doing, const std::string& what) {
  return make_error(fmt::format("{} plugin '{}' ({}) failed {}: {}", to_string(plugin.kind), plugin.name,
                                plugin.path.string(), doing, what));
}

PluginObject* PluginRegistry::create_object(const PluginRecord& plugin, const RecipeSection& options) const {
  PluginObject* object = call_plugin(plugin, "to start", [&] { return plugin.create(options); });
  if (!object) throw DiagnosticError(plugin_failure(plugin, "to start", "the factory returned nothing"));
  return object;
}

void PluginRegistry::throw_wrong_type(const PluginRecord& plugin) const {
  throw DiagnosticError(make_error(fmt::format(
      "{} plugin '{}' ({}) created an object that does not implement the {} interface",
      to_string(plugin.kind), plugin.name, plugin.path.string(), to_string(plugin.kind))));
}

}  // namespace alignkit
