#include <alignkit/recipe_section.hpp>

#include <stdexcept>

#include <fmt/format.h>

#include "section_data.hpp"

namespace alignkit {

namespace {

const detail::SectionEntry& entry(const detail::SectionData& data, std::string_view key) {
  auto it = data.entries.find(key);
  if (it == data.entries.end())
    throw std::logic_error(fmt::format("[{}] has no declared option '{}'; declare it in the plugin's "
                                       "OptionSpec list before reading it",
                                       data.name, key));
  return it->second;
}

template <typename T>
const T& value_as(const detail::SectionData& data, std::string_view key, OptionType expected) {
  const auto& e = entry(data, key);
  if (e.spec.type != expected)
    throw std::logic_error(fmt::format("[{}] option '{}' is declared as {}, read as {}", data.name,
                                       key, to_string(e.spec.type), to_string(expected)));
  if (std::holds_alternative<std::monostate>(e.value))
    throw std::logic_error(fmt::format("[{}] option '{}' is unset and has no default; check has() "
                                       "before reading it",
                                       data.name, key));
  return std::get<T>(e.value);
}

}  // namespace

RecipeSection::RecipeSection(const detail::SectionData& data) : data_(&data) {}

const std::string& RecipeSection::name() const { return data_->name; }

bool RecipeSection::has(std::string_view key) const { return entry(*data_, key).set_in_recipe; }

bool RecipeSection::get_bool(std::string_view key) const {
  return value_as<bool>(*data_, key, OptionType::boolean);
}
std::int64_t RecipeSection::get_int(std::string_view key) const {
  return value_as<std::int64_t>(*data_, key, OptionType::integer);
}
double RecipeSection::get_float(std::string_view key) const {
  return value_as<double>(*data_, key, OptionType::floating);
}
std::string RecipeSection::get_string(std::string_view key) const {
  return value_as<std::string>(*data_, key, OptionType::string);
}
std::filesystem::path RecipeSection::get_path(std::string_view key) const {
  return value_as<std::string>(*data_, key, OptionType::path);
}
std::vector<double> RecipeSection::get_float_list(std::string_view key) const {
  return value_as<std::vector<double>>(*data_, key, OptionType::float_list);
}
std::vector<std::int64_t> RecipeSection::get_int_list(std::string_view key) const {
  return value_as<std::vector<std::int64_t>>(*data_, key, OptionType::int_list);
}
std::vector<std::string> RecipeSection::get_string_list(std::string_view key) const {
  return value_as<std::vector<std::string>>(*data_, key, OptionType::string_list);
}

std::vector<std::filesystem::path> RecipeSection::get_path_list(std::string_view key) const {
  const auto& strings = value_as<std::vector<std::string>>(*data_, key, OptionType::path_list);
  return {strings.begin(), strings.end()};
}

SourceLocation RecipeSection::where(std::string_view key) const {
  const auto& e = entry(*data_, key);
  return e.set_in_recipe ? e.where : data_->header;
}

Diagnostic RecipeSection::error(std::string_view key, std::string message, std::string help) const {
  const auto& e = entry(*data_, key);
  Diagnostic d;
  d.message = fmt::format("[{}] {}: {}", data_->name, key, message);
  d.help = std::move(help);
  if (e.set_in_recipe) {
    d.where = e.where;
    d.source_line = e.source_line;
  } else {
    d.where = data_->header;
    d.source_line = data_->header_line;
    d.notes.push_back(e.spec.default_value
                          ? fmt::format("'{}' has its default value {}", key, e.spec.default_value)
                          : fmt::format("'{}' is not set", key));
  }
  return d;
}

}  // namespace alignkit
