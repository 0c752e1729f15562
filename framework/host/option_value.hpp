// Converting recipe values to declared option types, shared by the recipe validator and the
// check of a plugin's declared defaults, so both apply exactly the same rules.
#pragma once

#include <optional>
#include <string>

#include <toml++/toml.h>

#include <alignkit/options.hpp>

#include "../sdk/section_data.hpp"

namespace alignkit {

struct ConvertedValue {
  detail::OptionValue value;
  std::string problem;  // empty when the value is acceptable
  std::string help;
};

// Converts `node` to the option's type and checks bounds and choices.
ConvertedValue convert_option_value(const toml::node& node, const OptionSpec& spec);

// The declared default, parsed and checked; monostate when there is none. Throws nothing; a bad
// default is reported in `problem`.
ConvertedValue parse_default(const OptionSpec& spec);

// What the option accepts, for messages and the reference: "a float > 0", "one of: a, b".
std::string describe_expected(const OptionSpec& spec);

// The TOML type name of a node as a user would say it: "string", "integer", "array", ...
std::string describe_found(const toml::node& node);

// The value as TOML text, for the effective recipe and messages.
std::string to_toml_text(const detail::OptionValue& value);

}  // namespace alignkit
