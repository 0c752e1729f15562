// Reading tokenizer.json with errors that name the file, the JSON path (e.g.
// `pre_tokenizer.pretokenizers[1].pattern.Regex`) and what was expected there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace alignkit::tokenizer {

using Json = nlohmann::json;

// `Sequence` components (normalizers, pre-tokenizers, decoders, post-processors) nested deeper
// than this are refused: each level is a recursive call when loading, encoding and freeing, and
// real files nest one or two.
inline constexpr int kMaxSequenceDepth = 100;

// A JSON value and where it sits, for error messages.
class JsonNode {
 public:
  JsonNode(const Json& value, const std::string& file, std::string path)
      : value_(&value), file_(&file), path_(std::move(path)) {}

  const Json& value() const { return *value_; }
  const std::string& file() const { return *file_; }
  const std::string& path() const { return path_; }
  bool is_null() const { return value_->is_null(); }

  bool has(std::string_view key) const;
  // The member `key` (which must be present; null counts as present).
  JsonNode at(std::string_view key) const;
  // The member `key`, or nothing when it is absent or null.
  std::optional<JsonNode> find(std::string_view key) const;
  JsonNode at(std::size_t index) const;
  std::size_t size() const;  // of an array (checked)

  std::string as_string() const;
  std::int64_t as_int() const;
  bool as_bool() const;
  void expect_object() const;
  void expect_array() const;
  // Refuses this node, a `Sequence` whose steps sit under `steps_key`, when it lies inside
  // kMaxSequenceDepth Sequences of its kind already (counted from its path).
  void expect_sequence_depth(std::string_view steps_key) const;

  // Optional members with defaults (a null counts as absent, as in the Rust and JS loaders).
  std::string string_or(std::string_view key, std::string fallback) const;
  bool bool_or(std::string_view key, bool fallback) const;
  std::optional<std::string> optional_string(std::string_view key) const;

  // Throws the DiagnosticError: "<file>: error: `path`: message".
  [[noreturn]] void fail(const std::string& message, std::string help = {}) const;
  [[noreturn]] void fail_expected(std::string_view expected) const;

 private:
  const Json* value_;
  const std::string* file_;
  std::string path_;
};

// The JSON type name used in messages ("a string", "an array", ...).
std::string json_type_name(const Json& value);

}  // namespace alignkit::tokenizer
