// Option declarations: the recipe keys a plugin (or the host) accepts.
//
// One declaration serves three readers: the validator (type, range, choices), the plugin at run
// time (defaults come from here, never repeated in code), and the generated recipe reference
// (`alignkit recipe keys`, docs/recipe-reference.md). The struct has a plain C layout because it
// crosses the plugin boundary before any C++ object does.
#pragma once

#include <cstdint>
#include <limits>

namespace alignkit {

enum class OptionType : std::uint32_t {
  boolean = 1,
  integer = 2,
  floating = 3,     // accepts integer literals too: `beta = 1` means 1.0
  string = 4,
  path = 5,         // a string resolved against the directory of the recipe file that set it
  float_list = 6,
  int_list = 7,
  string_list = 8,
  path_list = 9,    // strings resolved like `path`
};

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();

struct OptionSpec {
  const char* key = nullptr;
  OptionType type = OptionType::string;
  // The default as a TOML literal ("0.5", "\"cosine\"", "[0.9, 0.999]", "true"); nullptr: none,
  // and then the key is either `required` or optional-and-unset (check RecipeSection::has).
  const char* default_value = nullptr;
  const char* doc = "";  // one or more sentences for the recipe reference
  // Inclusive numeric bounds for integer and float options (per element for lists), unless the
  // matching *_exclusive flag is set.
  double min = -kUnbounded;
  double max = kUnbounded;
  bool min_exclusive = false;
  bool max_exclusive = false;
  bool required = false;
  // For string options: the allowed values separated by '|', e.g. "linear|cosine|1-sqrt".
  const char* choices = nullptr;
};

// "boolean", "integer", "float", "string", "path", "list of floats", ...
const char* to_string(OptionType type);

}  // namespace alignkit
