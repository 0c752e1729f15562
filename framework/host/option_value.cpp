#include "option_value.hpp"

#include <cmath>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <alignkit/did_you_mean.hpp>

namespace alignkit {

namespace {

// Shortest text that reads back to the same double, always with a '.' or an exponent so TOML
// reads it as a float (toml++'s own writer prints 17 digits: 0.10000000000000001).
std::string float_text(double v) {
  std::string text = fmt::format("{}", v);
  if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
  return text;
}

std::string string_text(const std::string& v) {
  std::ostringstream out;
  out << toml::toml_formatter(toml::value<std::string>(v));
  return out.str();
}

}  // namespace

namespace {

std::vector<std::string> split_choices(const char* choices) {
  std::vector<std::string> out;
  if (!choices) return out;
  std::stringstream in(choices);
  for (std::string item; std::getline(in, item, '|');) out.push_back(item);
  return out;
}

std::string format_bound(double v) { return fmt::format("{}", v); }

std::string range_text(const OptionSpec& spec) {
  const bool has_min = std::isfinite(spec.min), has_max = std::isfinite(spec.max);
  if (has_min && has_max)
    return fmt::format("in {}{}, {}{}", spec.min_exclusive ? "(" : "[", format_bound(spec.min),
                       format_bound(spec.max), spec.max_exclusive ? ")" : "]");
  if (has_min) return fmt::format("{} {}", spec.min_exclusive ? ">" : ">=", format_bound(spec.min));
  if (has_max) return fmt::format("{} {}", spec.max_exclusive ? "<" : "<=", format_bound(spec.max));
  return {};
}

bool in_range(double v, const OptionSpec& spec) {
  if (std::isnan(v)) return false;
  if (spec.min_exclusive ? !(v > spec.min) : !(v >= spec.min)) return false;
  if (spec.max_exclusive ? !(v < spec.max) : !(v <= spec.max)) return false;
  return true;
}

bool is_list(OptionType type) {
  return type == OptionType::float_list || type == OptionType::int_list ||
         type == OptionType::string_list || type == OptionType::path_list;
}

OptionType element_type(OptionType type) {
  switch (type) {
    case OptionType::float_list: return OptionType::floating;
    case OptionType::int_list: return OptionType::integer;
    case OptionType::string_list: return OptionType::string;
    case OptionType::path_list: return OptionType::path;
    default: return type;
  }
}

// Converts one scalar; `what` names it in messages ("value" or "element 3").
ConvertedValue convert_scalar(const toml::node& node, const OptionSpec& spec, OptionType type,
                              const std::string& what) {
  ConvertedValue out;
  auto mismatch = [&](std::string expected) {
    out.problem = fmt::format("expected {}, found {}", expected, describe_found(node));
    if (node.is_string() && type != OptionType::string && type != OptionType::path)
      out.help = "remove the quotes: TOML strings are never converted to numbers or booleans";
    if (node.is_floating_point() && type == OptionType::integer)
      out.help = "write a whole number without a decimal point";
    return out;
  };
  switch (type) {
    case OptionType::boolean:
      if (!node.is_boolean()) return mismatch("a boolean (true or false)");
      out.value = node.as_boolean()->get();
      return out;
    case OptionType::integer: {
      if (!node.is_integer()) return mismatch("an integer");
      const std::int64_t v = node.as_integer()->get();
      if (!in_range(static_cast<double>(v), spec))
        out.problem = fmt::format("{} {} is out of range: expected an integer {}", what, v, range_text(spec));
      out.value = v;
      return out;
    }
    case OptionType::floating: {
      double v = 0;
      if (node.is_floating_point()) v = node.as_floating_point()->get();
      else if (node.is_integer()) v = static_cast<double>(node.as_integer()->get());
      else return mismatch("a number");
      if (!std::isfinite(v))
        out.problem = fmt::format("{} {} is not a finite number", what, v);
      else if (!in_range(v, spec))
        out.problem = fmt::format("{} {} is out of range: expected a number {}", what, v, range_text(spec));
      out.value = v;
      return out;
    }
    case OptionType::string:
    case OptionType::path: {
      if (!node.is_string()) return mismatch(type == OptionType::path ? "a path (a string)" : "a string");
      const std::string v = node.as_string()->get();
      const auto choices = split_choices(spec.choices);
      if (!choices.empty() && std::find(choices.begin(), choices.end(), v) == choices.end()) {
        out.problem = fmt::format("'{}' is not one of: {}", v, fmt::join(choices, ", "));
        out.help = did_you_mean(v, choices);
      }
      if (type == OptionType::path && v.empty()) out.problem = "expected a path, found an empty string";
      out.value = v;
      return out;
    }
    default:
      out.problem = "internal: not a scalar type";
      return out;
  }
}

}  // namespace

std::string describe_found(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return fmt::format("string \"{}\"", node.as_string()->get());
    case toml::node_type::integer: return fmt::format("integer {}", node.as_integer()->get());
    case toml::node_type::floating_point: return fmt::format("float {}", float_text(node.as_floating_point()->get()));
    case toml::node_type::boolean: return fmt::format("boolean {}", node.as_boolean()->get());
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::string describe_expected(const OptionSpec& spec) {
  const auto choices = split_choices(spec.choices);
  if (!choices.empty()) return fmt::format("one of: {}", fmt::join(choices, ", "));
  std::string base;
  switch (spec.type) {
    case OptionType::boolean: return "true or false";
    case OptionType::integer: base = "an integer"; break;
    case OptionType::floating: base = "a number"; break;
    case OptionType::string: return "a string";
    case OptionType::path: return "a path, relative to the recipe file that sets it";
    case OptionType::float_list: base = "a list of numbers"; break;
    case OptionType::int_list: base = "a list of integers"; break;
    case OptionType::string_list: return "a list of strings";
    case OptionType::path_list: return "a list of paths, relative to the recipe file that sets them";
  }
  const auto range = range_text(spec);
  if (range.empty()) return base;
  return fmt::format("{}{} {}", base, is_list(spec.type) ? ", each" : "", range);
}

ConvertedValue convert_option_value(const toml::node& node, const OptionSpec& spec) {
  if (!is_list(spec.type)) return convert_scalar(node, spec, spec.type, "value");
  ConvertedValue out;
  const auto* array = node.as_array();
  if (!array) {
    out.problem = fmt::format("expected {}, found {}", describe_expected(spec), describe_found(node));
    out.help = "write a TOML array, e.g. [1, 2]";
    return out;
  }
  std::vector<double> floats;
  std::vector<std::int64_t> ints;
  std::vector<std::string> strings;
  for (std::size_t i = 0; i < array->size(); ++i) {
    auto element = convert_scalar(*array->get(i), spec, element_type(spec.type), "value");
    if (!element.problem.empty()) {
      element.problem = fmt::format("element {}: {}", i, element.problem);
      return element;
    }
    if (auto* d = std::get_if<double>(&element.value)) floats.push_back(*d);
    if (auto* n = std::get_if<std::int64_t>(&element.value)) ints.push_back(*n);
    if (auto* s = std::get_if<std::string>(&element.value)) strings.push_back(*s);
  }
  switch (spec.type) {
    case OptionType::float_list: out.value = floats; break;
    case OptionType::int_list: out.value = ints; break;
    default: out.value = strings; break;
  }
  return out;
}

ConvertedValue parse_default(const OptionSpec& spec) {
  ConvertedValue out;
  if (!spec.default_value) return out;
  try {
    auto parsed = toml::parse(std::string("v = ") + spec.default_value);
    if (parsed.size() != 1) {
      out.problem = fmt::format("default '{}' holds more than one value", spec.default_value);
      return out;
    }
    out = convert_option_value(*parsed.get("v"), spec);
  } catch (const toml::parse_error& e) {
    out.problem = fmt::format("default '{}' is not a TOML value: {}", spec.default_value, e.description());
  }
  return out;
}


std::string to_toml_text(const detail::OptionValue& value) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return "(unset)";
        } else if constexpr (std::is_same_v<T, bool>) {
          return v ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          return std::to_string(v);
        } else if constexpr (std::is_same_v<T, double>) {
          return float_text(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          return string_text(v);
        } else {
          std::vector<std::string> parts;
          for (const auto& element : v) parts.push_back(to_toml_text(detail::OptionValue(element)));
          return fmt::format("[{}]", fmt::join(parts, ", "));
        }
      },
      value);
}

}  // namespace alignkit
