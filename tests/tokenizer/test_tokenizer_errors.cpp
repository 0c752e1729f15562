// Malformed tokenizer.json files are refused with the file, the JSON path and what was expected.
#include <gtest/gtest.h>

#include <functional>

#include <nlohmann/json.hpp>

#include <alignkit/diagnostic.hpp>
#include <alignkit/tokenizer.hpp>

using alignkit::DiagnosticError;
using alignkit::Tokenizer;
using Json = nlohmann::json;

namespace {

// A tiny valid byte-level BPE: enough for every field the cases below break.
Json valid_tokenizer() {
  return Json::parse(R"({
    "version": "1.0",
    "added_tokens": [{"id": 5, "content": "<|end|>", "special": true, "lstrip": false, "rstrip": false,
                      "normalized": false, "single_word": false}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\p{L}+|\\s+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "post_processor": {"type": "ByteLevel"},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4},
              "merges": ["a b", "ab c"]}
  })");
}

// The message of the error loading `json` raises (fails the test when it loads).
std::string load_error(const Json& json) {
  try {
    Tokenizer::from_json(json.dump(), "broken/tokenizer.json");
  } catch (const DiagnosticError& e) {
    return e.format();
  }
  ADD_FAILURE() << "the tokenizer loaded: " << json.dump();
  return {};
}

void expect_refused(const std::function<void(Json&)>& breaking, std::vector<std::string> expected_parts) {
  Json json = valid_tokenizer();
  breaking(json);
  const std::string message = load_error(json);
  expected_parts.push_back("broken/tokenizer.json");
  for (const auto& part : expected_parts) EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in:\n" << message;
}

}  // namespace

TEST(TokenizerErrors, TheValidBaseLoadsAndEncodes) {
  const auto tokenizer = Tokenizer::from_json(valid_tokenizer().dump(), "ok/tokenizer.json");
  EXPECT_EQ(tokenizer.encode("abc"), (std::vector<int64_t>{4}));
  EXPECT_EQ(tokenizer.encode("ab<|end|>"), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(tokenizer.vocab_size(), 6);
}

TEST(TokenizerErrors, MissingModel) {
  expect_refused([](Json& j) { j.erase("model"); }, {"missing key `model`"});
}

TEST(TokenizerErrors, UnknownModelType) {
  expect_refused([](Json& j) { j["model"]["type"] = "Unigram"; }, {"`model.type`", "unsupported model type `Unigram`"});
}

TEST(TokenizerErrors, UnknownNormalizerType) {
  expect_refused([](Json& j) { j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFX"}}}}}; },
                 {"`normalizer.normalizers[0].type`", "unknown normalizer type `NFX`"});
}

TEST(TokenizerErrors, UnknownPreTokenizerType) {
  expect_refused([](Json& j) { j["pre_tokenizer"]["pretokenizers"][1]["type"] = "ByteLvl"; },
                 {"`pre_tokenizer.pretokenizers[1].type`", "unknown pre-tokenizer type `ByteLvl`", "supported:"});
}

TEST(TokenizerErrors, BadRegex) {
  expect_refused([](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(\\p{L}+"; },
                 {"`pre_tokenizer.pretokenizers[0].pattern.Regex`", "invalid regular expression"});
  expect_refused([](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "[a-"; },
                 {"`pre_tokenizer.pretokenizers[0].pattern.Regex`", "not closed"});
  expect_refused([](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{NotAProperty}"; },
                 {"`pre_tokenizer.pretokenizers[0].pattern.Regex`", "PCRE2 refuses"});
}

TEST(TokenizerErrors, PatternWithoutStringOrRegex) {
  expect_refused([](Json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"Rgx", "a"}}; },
                 {"`pre_tokenizer.pretokenizers[0].pattern`", "`String` or a `Regex`"});
}

TEST(TokenizerErrors, MergeOfUnknownTokens) {
  expect_refused([](Json& j) { j["model"]["merges"][1] = "ab zz"; }, {"`model.merges[1]`", "`zz`", "not in `model.vocab`"});
  expect_refused([](Json& j) { j["model"]["merges"][0] = "b c"; }, {"`model.merges[0]`", "result `bc`"});
  expect_refused([](Json& j) { j["model"]["merges"][0] = "abc"; }, {"`model.merges[0]`", "separated by one space"});
  expect_refused([](Json& j) { j["model"]["merges"][0] = Json::array({"a"}); }, {"`model.merges[0]`", "expected a merge"});
}

TEST(TokenizerErrors, WrongJsonTypes) {
  expect_refused([](Json& j) { j["model"]["vocab"] = Json::array(); }, {"`model.vocab`", "expected an object, found an array"});
  expect_refused([](Json& j) { j["model"]["vocab"]["a"] = "zero"; }, {"`model.vocab[\"a\"]`", "expected a token id"});
  expect_refused([](Json& j) { j["added_tokens"][0]["id"] = "5"; }, {"`added_tokens[0].id`", "expected an integer"});
  expect_refused([](Json& j) { j["added_tokens"][0]["special"] = 1; }, {"`added_tokens[0].special`", "expected true or false"});
  expect_refused([](Json& j) { j["model"]["merges"] = "a b"; }, {"`model.merges`", "expected an array"});
  expect_refused([](Json& j) { j["decoder"] = {{"type", 3}}; }, {"`decoder.type`", "expected a string"});
}

TEST(TokenizerErrors, PostProcessorNamesUnknownToken) {
  expect_refused(
      [](Json& j) {
        j["post_processor"] = Json::parse(R"({"type": "TemplateProcessing",
          "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]})");
      },
      {"`post_processor.single[0].SpecialToken.id`", "`<bos>`"});
}

TEST(TokenizerErrors, NotJson) {
  try {
    Tokenizer::from_json("{\"model\": ", "broken/tokenizer.json");
    FAIL() << "loaded";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("broken/tokenizer.json"), std::string::npos);
    EXPECT_NE(e.format().find("not valid JSON"), std::string::npos);
  }
}

TEST(TokenizerErrors, MissingDirectory) {
  try {
    Tokenizer::from_directory("/nonexistent/model");
    FAIL() << "loaded";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("/nonexistent/model/tokenizer.json"), std::string::npos) << e.format();
  }
}

TEST(TokenizerErrors, SequencesNestedPastTheLimitAreRefusedWithTheirPath) {
  const auto nest = [](Json leaf, const char* key, int depth) {
    for (int i = 0; i < depth; ++i) leaf = Json{{"type", "Sequence"}, {key, Json::array({leaf})}};
    return leaf;
  };
  std::string path = "normalizer";
  for (int i = 0; i < 100; ++i) path += ".normalizers[0]";
  expect_refused([&](Json& j) { j["normalizer"] = nest({{"type", "Lowercase"}}, "normalizers", 101); },
                 {"`" + path + "`: Sequence nested more than 100 levels deep"});
  expect_refused([&](Json& j) { j["decoder"] = nest({{"type", "Fuse"}}, "decoders", 150); }, {"Sequence nested more than 100"});
  Json within = valid_tokenizer();
  within["normalizer"] = nest({{"type", "Lowercase"}}, "normalizers", 100);
  EXPECT_EQ(Tokenizer::from_json(within.dump(), "t.json").encode("ab").size(), 1u);
}

TEST(TokenizerErrors, JsonNestedPastTheLimitIsRefusedAtItsColumn) {
  try {
    Tokenizer::from_json("{\"model\": " + std::string(20000, '[') + std::string(20000, ']') + "}", "deep/tokenizer.json");
    FAIL() << "loaded";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("deep/tokenizer.json:1:1010: error: JSON nested more than 1000 levels deep"), std::string::npos)
        << e.format();
  }
}
