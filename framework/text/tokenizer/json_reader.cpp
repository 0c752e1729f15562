#include "json_reader.hpp"

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>

namespace alignkit::tokenizer {

std::string json_type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "an array";
    case Json::value_t::string: return fmt::format("the string {}", value.dump().substr(0, 60));
    case Json::value_t::boolean: return value.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return fmt::format("the number {}", value.dump());
    default: return "an unsupported JSON value";
  }
}

void JsonNode::fail(const std::string& message, std::string help) const {
  const std::string where = path_.empty() ? "the top level" : fmt::format("`{}`", path_);
  throw_file_error(*file_, fmt::format("{}: {}", where, message), std::move(help));
}

void JsonNode::fail_expected(std::string_view expected) const {
  fail(fmt::format("expected {}, found {}", expected, json_type_name(*value_)));
}

void JsonNode::expect_object() const {
  if (!value_->is_object()) fail_expected("an object");
}

void JsonNode::expect_array() const {
  if (!value_->is_array()) fail_expected("an array");
}

void JsonNode::expect_sequence_depth(std::string_view steps_key) const {
  const std::string step = fmt::format(".{}[", steps_key);
  int depth = 1;
  for (auto at = path_.find(step); at != std::string::npos; at = path_.find(step, at + step.size())) ++depth;
  if (depth > kMaxSequenceDepth)
    fail(fmt::format("Sequence nested more than {} levels deep", kMaxSequenceDepth),
         "alignkit refuses deeper Sequences (docs/robustness.md); real tokenizer files nest one or two");
}

bool JsonNode::has(std::string_view key) const {
  return value_->is_object() && value_->find(key) != value_->end();
}

JsonNode JsonNode::at(std::string_view key) const {
  expect_object();
  const auto it = value_->find(key);
  const std::string child = path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
  if (it == value_->end()) {
    const std::string where = path_.empty() ? "the top level" : fmt::format("`{}`", path_);
    throw_file_error(*file_, fmt::format("{}: missing key `{}`", where, key));
  }
  return JsonNode(*it, *file_, child);
}

std::optional<JsonNode> JsonNode::find(std::string_view key) const {
  expect_object();
  const auto it = value_->find(key);
  if (it == value_->end() || it->is_null()) return std::nullopt;
  return JsonNode(*it, *file_, path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key));
}

JsonNode JsonNode::at(std::size_t index) const {
  expect_array();
  return JsonNode((*value_)[index], *file_, fmt::format("{}[{}]", path_, index));
}

std::size_t JsonNode::size() const {
  expect_array();
  return value_->size();
}

std::string JsonNode::as_string() const {
  if (!value_->is_string()) fail_expected("a string");
  return value_->get<std::string>();
}

std::int64_t JsonNode::as_int() const {
  if (!value_->is_number_integer()) fail_expected("an integer");
  return value_->get<std::int64_t>();
}

bool JsonNode::as_bool() const {
  if (!value_->is_boolean()) fail_expected("true or false");
  return value_->get<bool>();
}

std::string JsonNode::string_or(std::string_view key, std::string fallback) const {
  const auto node = find(key);
  return node ? node->as_string() : std::move(fallback);
}

bool JsonNode::bool_or(std::string_view key, bool fallback) const {
  const auto node = find(key);
  return node ? node->as_bool() : fallback;
}

std::optional<std::string> JsonNode::optional_string(std::string_view key) const {
  const auto node = find(key);
  if (!node) return std::nullopt;
  return node->as_string();
}

}  // namespace alignkit::tokenizer
