#include "oracle.hpp"

#include <alignkit/chat_template.hpp>
#include <alignkit/diagnostic.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

namespace alignkit::jinja_test {

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Shows control characters so a difference in whitespace is visible.
std::string visible(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else out += c;
  }
  return out;
}

}  // namespace

std::string read_source_file(const std::string& relative_path) {
  const std::filesystem::path path = std::filesystem::path(ALIGNKIT_SOURCE_DIR) / relative_path;
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "missing test input " << path;
    return {};
  }
  return read_file(path);
}

std::vector<OracleRender> render_with_oracle(const std::vector<OracleCase>& cases) {
  const std::string node = NODE_EXECUTABLE;
  if (node.empty() || node.ends_with("-NOTFOUND") || !std::filesystem::exists(node)) {
    ADD_FAILURE() << "Node.js was not found (CMake's find_program(NODE_EXECUTABLE node) gave '" << node
                  << "'): the chat-template tests compare with @huggingface/jinja run by node. Install node "
                     "(Debian: apt-get install nodejs), run `npm ci` in tests/js, and re-run cmake.";
    return {};
  }
  const std::filesystem::path source_dir(ALIGNKIT_SOURCE_DIR);
  const std::filesystem::path script = source_dir / "tests/js/render_chat_template.mjs";
  if (!std::filesystem::exists(source_dir / "tests/js/node_modules/@huggingface/jinja")) {
    ADD_FAILURE() << "@huggingface/jinja is not installed: run `npm ci` in " << (source_dir / "tests/js");
    return {};
  }
  static std::atomic<int> batch{0};
  const std::filesystem::path scratch(JINJA_TEST_SCRATCH_DIR);
  std::filesystem::create_directories(scratch);
  const std::string stem = "batch_" + std::to_string(::getpid()) + "_" + std::to_string(batch++);
  const std::filesystem::path input = scratch / (stem + ".cases.json");
  const std::filesystem::path output = scratch / (stem + ".renders.json");
  const std::filesystem::path errors = scratch / (stem + ".stderr.txt");
  nlohmann::ordered_json json = nlohmann::ordered_json::array();
  for (const auto& c : cases)
    json.push_back({{"name", c.name}, {"template", c.template_source}, {"context", c.context}});
  std::ofstream(input, std::ios::binary) << json.dump();
  const std::string command = shell_quote(node) + " " + shell_quote(script.string()) + " " + shell_quote(input.string()) +
                              " " + shell_quote(output.string()) + " 2> " + shell_quote(errors.string());
  const int status = std::system(command.c_str());
  if (status != 0) {
    ADD_FAILURE() << "the oracle failed (" << command << ", status " << status << "):\n" << read_file(errors);
    return {};
  }
  const auto renders = nlohmann::json::parse(read_file(output));
  std::vector<OracleRender> results;
  for (const auto& r : renders) {
    OracleRender render;
    if (r.contains("output")) render.output = r["output"].get<std::string>();
    else render.error = r.value("error", "");
    results.push_back(std::move(render));
  }
  std::filesystem::remove(input);
  std::filesystem::remove(output);
  std::filesystem::remove(errors);
  return results;
}

std::string describe_difference(const std::string& ours, const std::string& theirs) {
  std::size_t at = 0;
  while (at < ours.size() && at < theirs.size() && ours[at] == theirs[at]) ++at;
  const std::size_t from = at > 40 ? at - 40 : 0;
  std::ostringstream out;
  out << "first difference at byte " << at << " (ours " << ours.size() << " bytes, @huggingface/jinja " << theirs.size()
      << " bytes)\n  ours:   ..." << visible(ours.substr(from, 100)) << "\n  theirs: ..." << visible(theirs.substr(from, 100));
  return out.str();
}

std::size_t expect_same_as_oracle(const std::vector<OracleCase>& cases) {
  const std::vector<OracleRender> expected = render_with_oracle(cases);
  if (expected.size() != cases.size()) {
    if (!expected.empty()) ADD_FAILURE() << "the oracle returned " << expected.size() << " renders for " << cases.size() << " cases";
    return 0;
  }
  std::map<std::string, std::shared_ptr<ChatTemplate>> compiled;
  std::map<std::string, std::string> parse_errors;
  std::size_t identical = 0;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const OracleCase& c = cases[i];
    const OracleRender& theirs = expected[i];
    std::optional<std::string> ours;
    std::string our_error;
    try {
      auto& slot = compiled[c.template_source];
      if (!slot) slot = std::make_shared<ChatTemplate>(c.template_source, c.name);
      ours = slot->render_ordered(c.context);
    } catch (const DiagnosticError& e) {
      our_error = e.format();
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << ": threw something other than a DiagnosticError: " << e.what();
      continue;
    }
    if (theirs.output) {
      if (!ours) {
        ADD_FAILURE() << c.name << ": @huggingface/jinja rendered but we failed:\n" << our_error;
      } else if (*ours != *theirs.output) {
        ADD_FAILURE() << c.name << ": render differs from @huggingface/jinja\n" << describe_difference(*ours, *theirs.output);
      } else {
        ++identical;
      }
    } else if (ours) {
      ADD_FAILURE() << c.name << ": @huggingface/jinja failed (" << theirs.error << ") but we rendered: " << visible(ours->substr(0, 200));
    } else {
      std::cout << "[oracle] " << c.name << ": both failed; upstream: " << theirs.error << "\n";
    }
  }
  return identical;
}

}  // namespace alignkit::jinja_test
