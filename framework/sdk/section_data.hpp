// Storage behind RecipeSection: validated values of one recipe section, with where each came from.
// Private to alignkit (the host fills it, the SDK reads it); plugins only see RecipeSection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <alignkit/diagnostic.hpp>
#include <alignkit/options.hpp>

namespace alignkit::detail {

// monostate: an optional key with no default that the recipe left unset.
using OptionValue = std::variant<std::monostate, bool, std::int64_t, double, std::string,
                                 std::vector<double>, std::vector<std::int64_t>,
                                 std::vector<std::string>>;

struct SectionEntry {
  OptionSpec spec;
  OptionValue value;
  bool set_in_recipe = false;
  SourceLocation where;
  std::string source_line;
};

struct SectionData {
  std::string name;
  SourceLocation header;  // the [section] line, or the recipe file when the section is implicit
  std::string header_line;
  std::map<std::string, SectionEntry, std::less<>> entries;
};

}  // namespace alignkit::detail
