// Completion log-probabilities: the chunked computation against the plain one, and `alignkit
// score` against TRL's concatenated_forward (tests/fixtures/oracle/dpo_e2e.json, TRL 0.19.1).
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/logprobs.hpp>
#include <alignkit/safetensors.hpp>
#include <alignkit/tokenizer.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::read_jsonl;
using testing::TempDir;
namespace fs = std::filesystem;

TEST(TokenLogProbs, ChunkedEqualsTheFullLogSoftmax) {
  torch::manual_seed(7);
  const auto hidden = torch::randn({23, 16});
  const auto weight = torch::randn({50, 16});
  const auto labels = torch::randint(0, 50, {23});
  const auto logits = torch::matmul(hidden, weight.t());
  const auto expected = torch::log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1);
  for (std::int64_t chunk : {0, 1, 5, 23, 100}) {
    const auto got = token_logprobs(hidden, weight, labels, chunk);
    // Same float32 operations in a different grouping: equal to rounding.
    EXPECT_LE((got.logps - expected).abs().max().item<double>(), 1e-5) << "chunk " << chunk;
    EXPECT_LE((got.logit_sums - logits.sum(-1)).abs().max().item<double>(), 1e-4) << "chunk " << chunk;
  }
}

TEST(TokenLogProbs, GradientsMatchTheFullLogSoftmax) {
  // The chunked function recomputes each chunk's logits in backward (custom autograd); its
  // gradients for the hidden states and the output matrix must equal plain autograd through a
  // full log-softmax, for an arbitrary upstream gradient and chunk sizes that do and do not
  // divide the positions. Same fp32 operations grouped differently: 1e-5.
  torch::manual_seed(3);
  const auto hidden = torch::randn({9, 8}, torch::requires_grad());
  const auto weight = torch::randn({20, 8}, torch::requires_grad());
  const auto labels = torch::randint(0, 20, {9});
  const auto upstream = torch::randn({9});
  torch::log_softmax(torch::matmul(hidden, weight.t()), -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
      .backward(upstream);
  const auto expected_hidden = hidden.grad().clone(), expected_weight = weight.grad().clone();
  for (std::int64_t chunk : {1, 4, 9, 0}) {
    hidden.grad().zero_();
    weight.grad().zero_();
    token_logprobs(hidden, weight, labels, chunk).logps.backward(upstream);
    EXPECT_LE((hidden.grad() - expected_hidden).abs().max().item<double>(), 1e-5) << "chunk " << chunk;
    EXPECT_LE((weight.grad() - expected_weight).abs().max().item<double>(), 1e-5) << "chunk " << chunk;
  }
}

TEST(TokenLogProbs, FrozenOutputMatrixGetsNoGradient) {
  // LoRA training freezes lm_head: backward must not compute (or allocate) its [V, H] gradient.
  torch::manual_seed(4);
  const auto hidden = torch::randn({5, 8}, torch::requires_grad());
  const auto weight = torch::randn({20, 8});
  token_logprobs(hidden, weight, torch::randint(0, 20, {5}), 2).logps.sum().backward();
  EXPECT_TRUE(hidden.grad().defined());
  EXPECT_FALSE(weight.grad().defined());
}

TEST(CompletionBatch, LaysOutPromptThenCompletionFromColumnZero) {
  const auto b = make_completion_batch({{5, 6}, {7}}, {{8}, {9, 10, 11}}, 0);
  EXPECT_TRUE(torch::equal(b.input_ids, torch::tensor({{5, 6, 8, 0}, {7, 9, 10, 11}})));
  EXPECT_TRUE(torch::equal(b.attention_mask, torch::tensor({{1, 1, 1, 0}, {1, 1, 1, 1}})));
  EXPECT_TRUE(torch::equal(b.completion_mask, torch::tensor({{0, 0, 1, 0}, {0, 1, 1, 1}})));
  EXPECT_THROW(make_completion_batch({{1}}, {{}}), std::invalid_argument);
}

// The dpo_e2e batch as score input: TRL's padded tensors with the padding removed.
fs::path write_e2e_batch(const TempDir& dir, const nlohmann::json& batch) {
  auto unpad = [](const nlohmann::json& ids, const nlohmann::json& mask) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (mask[i] == 1) out.push_back(ids[i]);
    return out;
  };
  std::string text;
  for (std::size_t i = 0; i < batch["prompt_input_ids"].size(); ++i)
    text += nlohmann::json{{"id", i},
                           {"prompt_ids", unpad(batch["prompt_input_ids"][i], batch["prompt_attention_mask"][i])},
                           {"chosen_ids", unpad(batch["chosen_input_ids"][i], batch["chosen_attention_mask"][i])},
                           {"rejected_ids", unpad(batch["rejected_input_ids"][i], batch["rejected_attention_mask"][i])}}
                .dump() +
            "\n";
  return dir.write("batch.jsonl", text);
}

TEST(ScoreCommand, MatchesTrlConcatenatedForward) {
  std::ifstream in(testing::source_dir() / "tests/fixtures/oracle/dpo_e2e.json");
  const auto e2e = nlohmann::json::parse(in);
  const auto& sigmoid = e2e["cases"][0];  // the forward outputs do not depend on the loss settings
  ASSERT_EQ(sigmoid["params"]["loss_type"], "sigmoid");
  TempDir dir;
  const auto data = write_e2e_batch(dir, e2e["batch"]);
  // The policy is `llama`, the reference `llama_tied`, as in the fixture.
  for (const auto& [model, expected] : {std::pair{"llama", sigmoid["policy_forward"]},
                                        std::pair{"llama_tied", sigmoid["reference_forward"]}}) {
    const auto out = dir.path() / (std::string(model) + ".jsonl");
    auto r = testing::run_alignkit({"score", "--model", (testing::source_dir() / "tests/fixtures/oracle" / model).string(),
                                    "--data", data.string(), "--out", out.string(), "--batch-size", "2"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto rows = read_jsonl(out);
    ASSERT_EQ(rows.size(), 3u);
    double chosen_logit_sum = 0, chosen_tokens = 0, rejected_logit_sum = 0, rejected_tokens = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      EXPECT_EQ(rows[i]["id"], i);
      // The task's bound for log-probs against TRL.
      EXPECT_NEAR(rows[i]["chosen_logps"].get<double>(), expected["chosen_logps"][i].get<double>(), 1e-4) << model;
      EXPECT_NEAR(rows[i]["rejected_logps"].get<double>(), expected["rejected_logps"][i].get<double>(), 1e-4) << model;
      chosen_logit_sum += rows[i]["chosen_mean_logits"].get<double>() * rows[i]["chosen_tokens"].get<double>();
      chosen_tokens += rows[i]["chosen_tokens"].get<double>();
      rejected_logit_sum += rows[i]["rejected_mean_logits"].get<double>() * rows[i]["rejected_tokens"].get<double>();
      rejected_tokens += rows[i]["rejected_tokens"].get<double>();
    }
    // TRL's logits/* metric is the mean over every completion position of the batch.
    EXPECT_NEAR(chosen_logit_sum / chosen_tokens, expected["mean_chosen_logits"].get<double>(), 1e-5) << model;
    EXPECT_NEAR(rejected_logit_sum / rejected_tokens, expected["mean_rejected_logits"].get<double>(), 1e-5) << model;
  }
}

TEST(ScoreCommand, BadInputNamesTheFileAndLine) {
  TempDir dir;
  const auto model = (testing::source_dir() / "tests/fixtures/oracle/llama").string();
  const auto data = dir.write("bad.jsonl", "{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n"
                                           "{\"prompt_ids\": [1], \"chosen_ids\": \"oops\", \"rejected_ids\": [3]}\n");
  auto r = testing::run_alignkit({"score", "--model", model, "--data", data.string(), "--out", (dir.path() / "o").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(data.string() + ":2: error: 'chosen_ids' must be a list of token ids"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "o"));  // nothing half-written
  r = testing::run_alignkit({"score", "--model", (dir.path() / "nope").string(), "--data", data.string(), "--out",
                             (dir.path() / "o").string()});
  EXPECT_NE(r.output.find("the model directory does not exist"), std::string::npos) << r.output;
  const auto big = dir.write("big.jsonl", "{\"prompt_ids\": [1], \"chosen_ids\": [300], \"rejected_ids\": [3]}\n");
  r = testing::run_alignkit({"score", "--model", model, "--data", big.string(), "--out", (dir.path() / "o").string()});
  EXPECT_NE(r.output.find(big.string() + ":1: error: token id 300 is outside the model's vocabulary of 300"),
            std::string::npos)
      << r.output;
  const auto empty = dir.write("empty.jsonl", "{\"prompt_ids\": [], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n");
  r = testing::run_alignkit({"score", "--model", model, "--data", empty.string(), "--out", (dir.path() / "o").string()});
  EXPECT_NE(r.output.find("must not be empty"), std::string::npos) << r.output;
  r = testing::run_alignkit({"score", "--model", model, "--data", data.string(), "--out", (dir.path() / "no/such/o").string()});
  EXPECT_NE(r.output.find("the folder for --out does not exist"), std::string::npos) << r.output;
}

// A one-output classifier is a reward model: `score` reports its reward of prompt + chosen and
// prompt + rejected, equal to transformers' pooled score of the same tokens (the fixture's two
// rows, each split into a prompt and a completion; row 1 is left-padded there, so its score is
// the one computed with positions from the mask).
TEST(ScoreCommand, RewardModelGivesTransformersPooledScores) {
  TempDir dir;
  const auto model = testing::source_dir() / "tests/fixtures/oracle/llama_seqcls";
  const auto golden = safetensors::File::open(model / "logits.safetensors");
  const auto ids = golden.tensor("input_ids"), mask = golden.tensor("attention_mask");
  const auto real = [&](std::int64_t row) {
    std::vector<std::int64_t> out;
    for (std::int64_t t = 0; t < ids.size(1); ++t)
      if (mask[row][t].item<std::int64_t>() == 1) out.push_back(ids[row][t].item<std::int64_t>());
    return out;
  };
  const auto chosen = real(0), rejected = real(1);
  const std::vector<std::int64_t> prompt(chosen.begin(), chosen.begin() + 5);
  const std::vector<std::int64_t> chosen_rest(chosen.begin() + 5, chosen.end());
  // One line per fixture row (row 1 split after 3 tokens); chosen and rejected are the same
  // completion, so both sides must give that row's score.
  const std::vector<std::int64_t> prompt1(rejected.begin(), rejected.begin() + 3), rest1(rejected.begin() + 3, rejected.end());
  const auto data = dir.write("pairs.jsonl", fmt::format("{{\"prompt_ids\": {}, \"chosen_ids\": {}, \"rejected_ids\": {}}}\n"
                                                         "{{\"prompt_ids\": {}, \"chosen_ids\": {}, \"rejected_ids\": {}}}\n",
                                                         nlohmann::json(prompt).dump(), nlohmann::json(chosen_rest).dump(),
                                                         nlohmann::json(chosen_rest).dump(), nlohmann::json(prompt1).dump(),
                                                         nlohmann::json(rest1).dump(), nlohmann::json(rest1).dump()));
  const auto r = testing::run_alignkit({"score", "--model", model.string(), "--data", data.string(), "--out",
                                        (dir.path() / "o.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lines = testing::read_jsonl(dir.path() / "o.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  const auto want = golden.tensor("scores_pos_from_mask");
  for (std::int64_t row = 0; row < 2; ++row) {
    const double expected = want[row][0].item<double>();
    // Golden-fixture logits tolerance (HfModel tests): 1e-4 absolute.
    EXPECT_NEAR(lines[static_cast<std::size_t>(row)]["chosen_reward"].get<double>(), expected, 1e-4) << row;
    EXPECT_NEAR(lines[static_cast<std::size_t>(row)]["rejected_reward"].get<double>(), expected, 1e-4) << row;
  }
  EXPECT_EQ(lines[0]["chosen_tokens"], static_cast<std::int64_t>(chosen.size()));  // the whole row
  EXPECT_FALSE(lines[0].contains("chosen_logps"));
}

}  // namespace
}  // namespace alignkit

namespace alignkit {
namespace {

TEST(ScoreCommand, TextFieldsAreTokenizedAsTrlDoes) {
  // Text is tokenized like TRL's tokenize_row for a decoder-only model: prompt without special
  // tokens, EOS after each completion; the same example given as those ids scores identically.
  testing::TempDir dir;
  const auto model = dir.path() / "tiny";
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--out", model.string()}).exit_code, 0);
  const auto tokenizer = Tokenizer::from_directory(model);
  auto ids = [&](const std::string& text, bool eos) {
    auto v = tokenizer.encode(text, false);
    if (eos) v.push_back(*tokenizer.eos_token_id());
    return nlohmann::json(v);
  };
  const nlohmann::json text = {{"prompt", "The capital of France is"}, {"chosen", " Paris."}, {"rejected", " Rome, of course."}};
  const nlohmann::json tokens = {{"prompt_ids", ids("The capital of France is", false)},
                                 {"chosen_ids", ids(" Paris.", true)},
                                 {"rejected_ids", ids(" Rome, of course.", true)}};
  const auto data = dir.write("data.jsonl", text.dump() + "\n" + tokens.dump() + "\n");
  auto r = testing::run_alignkit({"score", "--model", model.string(), "--data", data.string(), "--out",
                                  (dir.path() / "out.jsonl").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto rows = read_jsonl(dir.path() / "out.jsonl");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0]["chosen_tokens"], tokens["chosen_ids"].size());
  EXPECT_EQ(rows[0]["chosen_logps"], rows[1]["chosen_logps"]);
  EXPECT_EQ(rows[0]["rejected_logps"], rows[1]["rejected_logps"]);

  // The oracle model directories carry no tokenizer: text there is refused with the line.
  r = testing::run_alignkit({"score", "--model", (testing::source_dir() / "tests/fixtures/oracle/llama").string(), "--data",
                             data.string(), "--out", (dir.path() / "o.jsonl").string()});
  EXPECT_NE(r.output.find(data.string() + ":1: error: text fields (prompt, chosen, rejected) need a tokenizer"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace alignkit
