// Generation: the KV-cached decoder against full recomputation, greedy tokens against the Python
// reference (tests/reference/llama_reference.py, which recomputes everything each step), and the
// sampling knobs against transformers' logits-warper semantics.
#include <gtest/gtest.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include <alignkit/generation.hpp>
#include <alignkit/safetensors.hpp>
#include <alignkit/tokenizer.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kOracle = testing::source_dir() / "tests/fixtures/oracle";
const char* const kArchitectures[] = {"llama", "llama3_rope", "llama_tied", "mistral", "qwen2", "qwen3"};

const std::vector<std::vector<std::int64_t>> kPrompts = {{5, 17, 99, 3, 41}, {7, 8, 9, 10, 11, 12, 13, 14, 200}, {42, 1}};

GenerationConfig greedy(std::int64_t tokens) {
  GenerationConfig config;
  config.max_new_tokens = tokens;
  return config;
}

TEST(Generation, CachedDecodingEqualsRecomputingTheWholeSequence) {
  // Prefill a left-padded batch, then feed 6 tokens one at a time through the cache; each step's
  // hidden states must equal a full forward over everything so far at the same positions. Same
  // fp32 arithmetic over fewer or more rows: 1e-5.
  testing::HfLoader m;
  for (const char* arch : kArchitectures) {
    auto model = m.loader->load(kOracle / arch, LoadOptions{});
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    const std::int64_t b = 3, prompt = 7, steps = 6, total = prompt + steps;
    auto ids = torch::randint(3, 300, {b, total});
    auto mask = torch::ones({b, total}, torch::kInt64);
    mask[1].slice(0, 0, 3).zero_();
    mask[2].slice(0, 0, 6).zero_();
    const auto positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1);
    const auto full = model->hidden_states(ids, mask, positions);

    KVCache cache;
    cache.capacity = total;
    auto got = model->hidden_states_cached(ids.slice(1, 0, prompt), mask.slice(1, 0, prompt),
                                           positions.slice(1, 0, prompt), cache);
    // Padding positions attend to nothing real and hold garbage in both; compare real ones.
    const auto real = mask.slice(1, 0, prompt).to(torch::kBool).unsqueeze(-1);
    EXPECT_LE((got - full.slice(1, 0, prompt)).masked_select(real).abs().max().item<double>(), 1e-5)
        << arch << " prefill";
    for (std::int64_t t = prompt; t < total; ++t) {
      got = model->hidden_states_cached(ids.slice(1, t, t + 1), mask.slice(1, 0, t + 1), positions.slice(1, t, t + 1),
                                        cache);
      EXPECT_LE((got - full.slice(1, t, t + 1)).abs().max().item<double>(), 1e-5) << arch << " step " << t;
    }
    EXPECT_EQ(cache.length, total);
    const auto longer = torch::ones({b, total + 1}, torch::kInt64);
    EXPECT_THROW(model->hidden_states_cached(ids.slice(1, 0, 1), longer, positions.slice(1, 0, 1), cache),
                 std::out_of_range);
  }
}

TEST(Generation, GreedyTokensEqualThePythonReference) {
  // 32 greedy tokens for three left-padded prompts of different lengths, token for token (fp32).
  // The reference recomputes the whole sequence each step without a cache.
  testing::HfLoader m;
  for (const char* arch : kArchitectures) {
    auto model = m.loader->load(kOracle / arch, LoadOptions{});
    const auto generation = generate(*model, kPrompts, greedy(32));

    TempDir dir;
    const std::int64_t longest = 9;
    auto ids = torch::zeros({3, longest}, torch::kInt64);
    auto mask = torch::zeros({3, longest}, torch::kInt64);
    for (std::int64_t i = 0; i < 3; ++i) {
      const auto n = static_cast<std::int64_t>(kPrompts[i].size());
      ids[i].slice(0, longest - n).copy_(torch::tensor(kPrompts[i]));
      mask[i].slice(0, longest - n).fill_(1);
    }
    safetensors::save(dir.path() / "inputs.safetensors", {{"input_ids", ids}, {"attention_mask", mask}});
    const auto r = testing::run_command({"/usr/bin/python3", (testing::source_dir() / "tests/reference/llama_reference.py").string(),
                                         "--model", (kOracle / arch).string(), "--inputs",
                                         (dir.path() / "inputs.safetensors").string(), "--generate", "32"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::istringstream lines(r.stdout_text);
    for (std::size_t i = 0; i < kPrompts.size(); ++i) {
      std::string line;
      ASSERT_TRUE(std::getline(lines, line)) << r.output;
      EXPECT_EQ(generation.tokens[i], nlohmann::json::parse(line).get<std::vector<std::int64_t>>())
          << arch << " row " << i;
      EXPECT_EQ(generation.finish_reasons[i], FinishReason::length);
    }
  }
}

TEST(Generation, EosFinishesARowWhileTheOthersGoOn) {
  testing::HfLoader m;
  auto model = m.loader->load(kOracle / "llama", LoadOptions{});
  const auto free_run = generate(*model, kPrompts, greedy(12));
  auto config = greedy(12);
  config.eos_token_ids = {free_run.tokens[0][2]};  // row 0's third token
  const auto stopped = generate(*model, kPrompts, config);
  ASSERT_EQ(stopped.tokens[0].size(), 3u);
  EXPECT_EQ(stopped.finish_reasons[0], FinishReason::eos);
  for (std::size_t i = 1; i < kPrompts.size(); ++i) {
    // A row that never meets the EOS is unaffected by another row finishing.
    const auto& expected = free_run.tokens[i];
    const auto eos = std::find(expected.begin(), expected.end(), config.eos_token_ids[0]);
    const std::vector<std::int64_t> prefix(expected.begin(), eos == expected.end() ? eos : eos + 1);
    EXPECT_EQ(stopped.tokens[i], prefix) << "row " << i;
  }
}

TEST(Generation, StopStringsEndARowOnceItsTextContainsThem) {
  testing::HfLoader m;
  auto model = m.loader->load(kOracle / "llama", LoadOptions{});
  const auto free_run = generate(*model, {kPrompts[0]}, greedy(10));
  // A detokenizer that writes each id as "<id>": the stop string is the fourth token's text.
  auto text = [](const std::vector<std::int64_t>& ids) {
    std::string s;
    for (auto id : ids) s += "<" + std::to_string(id) + ">";
    return s;
  };
  auto config = greedy(10);
  config.stop_strings = {"<" + std::to_string(free_run.tokens[0][3]) + ">"};
  const auto stopped = generate(*model, {kPrompts[0]}, config, text);
  const auto first = std::find(free_run.tokens[0].begin(), free_run.tokens[0].end(), free_run.tokens[0][3]);
  EXPECT_EQ(stopped.tokens[0], std::vector<std::int64_t>(free_run.tokens[0].begin(), first + 1));
  EXPECT_EQ(stopped.finish_reasons[0], FinishReason::stop_string);
  EXPECT_THROW(generate(*model, {kPrompts[0]}, config), std::invalid_argument);  // no detokenizer
}

TEST(Generation, SamplingIsSeededAndTopKOfOneIsGreedy) {
  testing::HfLoader m;
  auto model = m.loader->load(kOracle / "qwen2", LoadOptions{});
  auto config = greedy(16);
  config.do_sample = true;
  config.top_k = 0;
  config.temperature = 1.5;
  config.seed = 11;
  const auto a = generate(*model, kPrompts, config);
  const auto b = generate(*model, kPrompts, config);
  EXPECT_EQ(a.tokens, b.tokens);
  config.seed = 12;
  EXPECT_NE(generate(*model, kPrompts, config).tokens, a.tokens);
  config.top_k = 1;
  EXPECT_EQ(generate(*model, kPrompts, config).tokens, generate(*model, kPrompts, greedy(16)).tokens);
}

TEST(Generation, WarpersFollowTransformersOrderAndCutoffs) {
  const double inf = std::numeric_limits<double>::infinity();
  GenerationConfig config;
  config.top_k = 2;
  config.top_p = 1.0;
  auto kept = warp_logits(torch::tensor({{1.0f, 3.0f, 2.0f, 0.0f}}), config);
  EXPECT_TRUE(torch::equal(kept, torch::tensor({{-inf, 3.0, 2.0, -inf}}, torch::kFloat32)));

  // top_p = 0.8 over probabilities 0.5, 0.3, 0.15, 0.05: the ascending cumulative sums are
  // 0.05, 0.2, 0.5, 1.0, and entries whose sum is <= 1 - 0.8 go; 0.5 and 0.3 stay.
  config.top_k = 0;
  config.top_p = 0.8;
  const auto logits = torch::tensor({{0.5f, 0.3f, 0.15f, 0.05f}}).log();
  kept = warp_logits(logits, config);
  EXPECT_TRUE(torch::isfinite(kept).equal(torch::tensor({{true, true, false, false}})));
  // A tiny top_p still keeps the most likely token.
  config.top_p = 1e-9;
  EXPECT_TRUE(torch::isfinite(warp_logits(logits, config)).equal(torch::tensor({{true, false, false, false}})));
  // Temperature divides before the cutoffs.
  config.top_p = 1.0;
  config.temperature = 2.0;
  EXPECT_TRUE(torch::allclose(warp_logits(logits, config), logits / 2.0));

  config.temperature = 0;
  EXPECT_THROW(config.check(), std::invalid_argument);
}

}  // namespace
}  // namespace alignkit

namespace alignkit {
namespace {

TEST(GenerateCommand, CompletesTextPromptsWithTheModelsOwnTokenizer) {
  testing::TempDir dir;
  const auto model_dir = dir.path() / "tiny";
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--out", model_dir.string()}).exit_code, 0);
  // The byte-level tokenizer round-trips any UTF-8 text and adds BOS only when asked.
  const auto tokenizer = Tokenizer::from_directory(model_dir);
  for (const std::string text : {"Hello the world", "naïve café, 日本語 🙂", "  two  spaces\nand a line"}) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false)), text);
    EXPECT_EQ(tokenizer.encode(text, true).front(), *tokenizer.bos_token_id());
  }

  auto r = testing::run_alignkit({"generate", "--model", model_dir.string(), "--prompt", "Hello the world", "--prompt",
                                  "Hi", "--max-new-tokens", "6", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.stdout_text);
  testing::HfLoader m;
  auto model = m.loader->load(model_dir, LoadOptions{});
  GenerationConfig config = greedy(6);
  config.eos_token_ids = {2, 260};
  const auto expected = generate(*model, {tokenizer.encode("Hello the world", false), tokenizer.encode("Hi", false)}, config);
  for (std::size_t i = 0; i < 2; ++i) {
    std::string line;
    ASSERT_TRUE(std::getline(lines, line)) << r.output;
    const auto json = nlohmann::json::parse(line);
    EXPECT_EQ(json.at("completion_ids").get<std::vector<std::int64_t>>(), expected.tokens[i]);
    EXPECT_EQ(json.at("completion").get<std::string>(), tokenizer.decode(expected.tokens[i], true));
  }

  r = testing::run_alignkit({"generate", "--model", model_dir.string(), "--prompt", "Hi", "--top-p", "1.5", "--do-sample"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("top_p must be in (0, 1]"), std::string::npos) << r.output;
  r = testing::run_alignkit({"generate", "--model", model_dir.string(), "--prompt-ids", "1,2,x"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = testing::run_alignkit({"generate", "--model", model_dir.string(), "--prompt-ids", "1,999"});
  EXPECT_NE(r.output.find("outside the model's vocabulary of 300"), std::string::npos) << r.output;
  r = testing::run_alignkit({"generate", "--model", model_dir.string(), "--prompt-ids", "1,2", "--dtype", "bfloat61"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown dtype 'bfloat61'; did you mean 'bfloat16'?"), std::string::npos) << r.output;
}

TEST(GenerateCommand, Float16OnACpuWithoutHalfMatmulIsRefusedBeforeLoading) {
  // Debian's LibTorch 1.13 has no fp16 matrix product on the CPU; a 2.x build does, and then the
  // command runs. Either way it never dies inside a kernel.
  testing::TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--out", (dir.path() / "m").string()}).exit_code, 0);
  const auto r = testing::run_alignkit({"generate", "--model", (dir.path() / "m").string(), "--prompt-ids", "1,5",
                                        "--dtype", "float16", "--max-new-tokens", "2"});
  bool half_matmul = true;
  try {
    (void)torch::matmul(torch::ones({2, 2}, torch::kFloat16), torch::ones({2, 2}, torch::kFloat16));
  } catch (const std::exception&) {
    half_matmul = false;
  }
  if (half_matmul) {
    EXPECT_EQ(r.exit_code, 0) << r.output;
  } else {
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("float16 compute is not available on the CPU"), std::string::npos) << r.output;
  }
}

}  // namespace
}  // namespace alignkit
