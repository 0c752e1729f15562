// RecipeSection: a plugin's typed, validated view of its own recipe section.
//
// By the time a plugin sees a section, the host has checked every key against the plugin's
// OptionSpec declarations (unknown keys, types, ranges, choices) and filled in defaults. The plugin
// reads values by key and reports its own cross-field errors with `error`, which points at the
// file, line and column where the key was set, exactly like the host's own messages.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <alignkit/diagnostic.hpp>

namespace alignkit {

namespace detail {
struct SectionData;  // host-owned storage; see framework/sdk/section_data.hpp
}

class RecipeSection {
 public:
  explicit RecipeSection(const detail::SectionData& data);

  // The section's name in the recipe, e.g. "scheduler".
  const std::string& name() const;

  // True when the recipe (or an include, or --set) gave the key a value; false when the value is
  // the declared default or the key is optional and unset.
  bool has(std::string_view key) const;

  // Typed getters. Asking for a key the plugin did not declare, with the wrong type, or for an
  // optional key that is unset is a programming error (std::logic_error), not a recipe error.
  bool get_bool(std::string_view key) const;
  std::int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  std::filesystem::path get_path(std::string_view key) const;
  std::vector<double> get_float_list(std::string_view key) const;
  std::vector<std::int64_t> get_int_list(std::string_view key) const;
  std::vector<std::string> get_string_list(std::string_view key) const;
  std::vector<std::filesystem::path> get_path_list(std::string_view key) const;

  // Where the key's value came from (or the section header, for a default).
  SourceLocation where(std::string_view key) const;

  // A diagnostic located at `key`, to throw now (`throw DiagnosticError(section.error(...))`) or
  // keep until the host supplies more context.
  Diagnostic error(std::string_view key, std::string message, std::string help = {}) const;

 private:
  const detail::SectionData* data_;
};

}  // namespace alignkit
