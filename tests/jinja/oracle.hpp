// Runs @huggingface/jinja (through tests/js/render_chat_template.mjs and Node.js) on a batch of
// cases and compares its renders with ours.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace alignkit::jinja_test {

struct OracleCase {
  std::string name;
  std::string template_source;
  nlohmann::ordered_json context;
};

struct OracleRender {
  std::optional<std::string> output;  // set when @huggingface/jinja rendered
  std::string error;                  // its message otherwise
};

// Renders every case with @huggingface/jinja in one node run. Records a gtest failure (and
// returns an empty vector) if node or the package is missing.
std::vector<OracleRender> render_with_oracle(const std::vector<OracleCase>& cases);

// Renders every case with ours and checks it against the oracle: identical text where the oracle
// rendered, an error where it failed. Returns how many renders were compared identical.
std::size_t expect_same_as_oracle(const std::vector<OracleCase>& cases);

// "first difference at byte N" with a window of both texts, for failure messages.
std::string describe_difference(const std::string& ours, const std::string& theirs);

// Reads a file of the source tree (path relative to the repository root).
std::string read_source_file(const std::string& relative_path);

}  // namespace alignkit::jinja_test
