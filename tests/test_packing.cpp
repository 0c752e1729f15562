// Padding-free packing. A packed row's segments (segment ids in the attention mask) attend as
// separate rows would; score_completions with packing gives the padded path's scores, losses,
// metrics and gradients for DPO (paired), KTO (unpaired, with KL completions) and ORPO (NLL over
// the prompt), fully fine-tuned and with LoRA, with and without gradient checkpointing; and
// `alignkit train` with [training] packing logs the padded run's metrics.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/logprobs.hpp>
#include <alignkit/lora.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kOracle = testing::source_dir() / "tests/fixtures/oracle";

// Packed and padded compute the same fp32 values through matmuls and reductions of different
// shapes, so BLAS sums them in different orders: each differs by a few ulp (fp32 epsilon 1.2e-7)
// per reduction of up to a few hundred terms, compounded over 2 layers, the log-softmax and the
// loss. 1e-5 of the tensor's scale (at least 1) bounds that ~100-ulp drift; a wrong mask, position
// or un-packing index moves values by 1e-2 or more.
constexpr double kReorderingTolerance = 1e-5;

void expect_close(const torch::Tensor& packed, const torch::Tensor& padded, const std::string& what) {
  ASSERT_EQ(packed.defined(), padded.defined()) << what;
  if (!padded.defined()) return;
  ASSERT_EQ(packed.sizes(), padded.sizes()) << what;
  const auto scale = std::max(1.0, padded.abs().max().item<double>());
  EXPECT_LE((packed - padded).abs().max().item<double>(), kReorderingTolerance * scale) << what;
}

// --- the model side -------------------------------------------------------------------------

// Three sequences of 5, 3 and 6 tokens: row 0 packs the first two and ends in two pad tokens,
// row 1 holds the third alone with segment id 1.
const std::vector<std::vector<std::int64_t>> kSequences = {{1, 45, 67, 89, 90}, {1, 33, 34}, {1, 99, 98, 97, 96, 95}};

struct PackedRows {
  torch::Tensor ids = torch::tensor({{1, 45, 67, 89, 90, 1, 33, 34, 0, 0}, {1, 99, 98, 97, 96, 95, 0, 0, 0, 0}});
  torch::Tensor segments = torch::tensor({{1, 1, 1, 1, 1, 2, 2, 2, 0, 0}, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}});
  torch::Tensor positions = torch::tensor({{0, 1, 2, 3, 4, 0, 1, 2, 0, 0}, {0, 1, 2, 3, 4, 5, 0, 0, 0, 0}});
  // (row, start) of each sequence of kSequences
  std::vector<std::pair<std::int64_t, std::int64_t>> places = {{0, 0}, {0, 5}, {1, 0}};
};

void expect_segments_attend_alone(CausalLM& model, const std::string& name) {
  torch::NoGradGuard no_grad;
  const PackedRows p;
  const auto packed = model.hidden_states(p.ids, p.segments, p.positions);
  for (std::size_t i = 0; i < kSequences.size(); ++i) {
    const auto ids = torch::tensor(kSequences[i]).unsqueeze(0);
    const auto alone = model.hidden_states(ids, torch::ones_like(ids), torch::Tensor())[0];
    const auto [row, start] = p.places[i];
    expect_close(packed[row].slice(0, start, start + ids.size(1)), alone, fmt::format("{} sequence {}", name, i));
  }
  // Undefined position_ids: the model restarts them in each segment itself.
  EXPECT_TRUE(torch::equal(model.hidden_states(p.ids, p.segments, torch::Tensor()), packed)) << name;
  // The incremental path applies the rule through one dense mask instead of a loop over
  // segments: the same states at every real position.
  KVCache cache;
  cache.capacity = p.ids.size(1);
  const auto dense = model.hidden_states_cached(p.ids, p.segments, p.positions, cache);
  const auto real = p.segments.ne(0).unsqueeze(-1);
  expect_close(dense.masked_select(real), packed.masked_select(real), name + " dense rule");
}

TEST(PackedAttention, SegmentsAttendAsSeparateRowsWould) {
  testing::HfLoader m;
  for (const char* name : {"llama", "llama3_rope", "llama_tied", "mistral", "qwen2", "qwen3"})
    expect_segments_attend_alone(*m.loader->load(kOracle / name, LoadOptions{}), name);
}

TEST(PackedAttention, SlidingWindowCountsFromEachSegmentsStart) {
  // A window of 3 is shorter than the sequences, so a mask that measured it across segments, or
  // from the packed row's start, would differ from the rows alone.
  TempDir dir;
  const auto mistral = testing::copy_model(dir, "mistral");
  testing::edit_config(mistral, [](auto& c) { c["sliding_window"] = 3; });
  testing::HfLoader m;
  expect_segments_attend_alone(*m.loader->load(mistral, LoadOptions{}), "mistral, window 3");
}

// --- scores, losses and gradients -----------------------------------------------------------

// Three examples whose prompts and completions differ much in length, so the padded batch is
// mostly padding.
const std::vector<std::vector<std::int64_t>> kPrompts = {{1, 45, 67, 89, 90, 91, 92, 93, 94, 95}, {1, 33}, {1, 99, 98, 97}};
const std::vector<std::vector<std::int64_t>> kChosen = {{12, 13, 14}, {50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60}, {100}};
const std::vector<std::vector<std::int64_t>> kRejected = {{200, 201, 202, 203, 204, 205}, {250}, {7, 8, 9}};

struct Outcome {
  std::vector<std::pair<std::string, torch::Tensor>> scores;  // every CompletionScores field
  LossResult result;
  std::map<std::string, torch::Tensor> gradients;
};

std::vector<std::vector<std::int64_t>> concat(std::vector<std::vector<std::int64_t>> a,
                                              const std::vector<std::vector<std::int64_t>>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The batch the training loop builds for `loss` (trainer.cpp's forward), scored with or without
// packing, then the loss and its gradients.
Outcome run(Loss& loss, CausalLM& policy, CausalLM* reference, bool packing) {
  const auto needs = loss.requirements();
  const ScoreOptions options{.reduction = needs.reduction, .nll_over_prompt = needs.nll_over_prompt, .packing = packing};
  auto score = [&](CausalLM& model, const auto& prompts, const auto& completions) {
    return score_completions(model, make_completion_batch(prompts, completions), options);
  };
  auto reference_score = [&](const auto& prompts, const auto& completions) {
    torch::NoGradGuard no_grad;
    return score(*reference, prompts, completions);
  };
  auto split = [](const CompletionScores& s, std::int64_t n) {
    auto cut = [&](const torch::Tensor& t, std::int64_t from) { return t.defined() ? t.slice(0, from, from + n) : t; };
    auto half = [&](std::int64_t from) {
      return CompletionScores{cut(s.logps, from), cut(s.token_counts, from), cut(s.mean_logits, from), cut(s.nll, from),
                              cut(s.nll_token_counts, from)};
    };
    return std::pair{half(0), half(n)};
  };
  policy.zero_grad();
  LossBatch batch;
  const auto n = static_cast<std::int64_t>(kPrompts.size());
  if (needs.examples == ExampleLayout::paired) {
    // Chosen and rejected rows in one forward, as the loop does.
    std::tie(batch.chosen, batch.rejected) = split(score(policy, concat(kPrompts, kPrompts), concat(kChosen, kRejected)), n);
    if (needs.reference_model)
      std::tie(batch.reference_chosen, batch.reference_rejected) =
          split(reference_score(concat(kPrompts, kPrompts), concat(kChosen, kRejected)), n);
  } else {
    // Unpaired: the chosen completions desirable, and each prompt's KL completion the next
    // example's.
    const std::vector<std::vector<std::int64_t>> kl = {kChosen[1], kChosen[2], kChosen[0]};
    batch.completions = score(policy, kPrompts, kChosen);
    batch.desirable = torch::tensor({true, false, true});
    batch.reference_completions = reference_score(kPrompts, kChosen);
    {
      torch::NoGradGuard no_grad;
      batch.kl = score(policy, kPrompts, kl);
    }
    batch.reference_kl = reference_score(kPrompts, kl);
  }
  Outcome out;
  for (const auto& [side, s] :
       {std::pair{"chosen", &batch.chosen}, std::pair{"rejected", &batch.rejected},
        std::pair{"reference_chosen", &batch.reference_chosen}, std::pair{"reference_rejected", &batch.reference_rejected},
        std::pair{"completions", &batch.completions}, std::pair{"reference_completions", &batch.reference_completions},
        std::pair{"kl", &batch.kl}, std::pair{"reference_kl", &batch.reference_kl}})
    for (const auto& [field, t] : {std::pair{"logps", s->logps}, std::pair{"token_counts", s->token_counts},
                                   std::pair{"mean_logits", s->mean_logits}, std::pair{"nll", s->nll},
                                   std::pair{"nll_token_counts", s->nll_token_counts}})
      out.scores.emplace_back(fmt::format("{}.{}", side, field), t.defined() ? t.detach() : t);
  out.result = loss.compute(batch);
  out.result.loss.backward();
  for (const auto& item : policy.named_parameters())
    if (item.value().grad().defined()) out.gradients[item.key()] = item.value().grad().clone();
  return out;
}

struct LoadedLoss {
  testing::RecipeFixture fixture;
  std::shared_ptr<Loss> loss;
  explicit LoadedLoss(const std::string& name) : fixture("[method]\nname = \"" + name + "\"\n") {
    loss = fixture.registry.create<Loss>(*fixture.recipe.plugins.at("method"), fixture.recipe.section("method"));
  }
};

void expect_packing_changes_nothing(const std::string& model_name, bool lora, bool checkpointing) {
  testing::HfLoader m;
  auto policy = m.loader->load(kOracle / model_name, LoadOptions{});
  auto reference = m.loader->load(kOracle / model_name, LoadOptions{});
  reference->eval();
  if (lora) {
    LoraConfig config;
    config.r = 4;
    config.alpha = 8;
    config.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj"};
    apply_lora(*policy, config);
    testing::perturb_adapters(*policy, 11);
  } else {
    // The policy a few steps away from the reference, so rewards and margins are not zero.
    torch::manual_seed(11);
    torch::NoGradGuard no_grad;
    for (auto& p : policy->parameters()) p.add_(torch::randn_like(p) * 0.02);
  }
  policy->train();
  policy->set_gradient_checkpointing(checkpointing);
  for (const char* method : {"dpo", "kto", "orpo"}) {
    const auto what = fmt::format("{} {}{}{}", method, model_name, lora ? " lora" : "", checkpointing ? " checkpointed" : "");
    LoadedLoss loss(method);
    const auto padded = run(*loss.loss, *policy, reference.get(), false);
    const auto packed = run(*loss.loss, *policy, reference.get(), true);
    ASSERT_EQ(packed.scores.size(), padded.scores.size());
    for (std::size_t i = 0; i < padded.scores.size(); ++i)
      expect_close(packed.scores[i].second, padded.scores[i].second, what + " " + padded.scores[i].first);
    expect_close(packed.result.loss.detach(), padded.result.loss.detach(), what + " loss");
    ASSERT_EQ(packed.result.metrics.size(), padded.result.metrics.size()) << what;
    for (std::size_t i = 0; i < padded.result.metrics.size(); ++i) {
      ASSERT_EQ(packed.result.metrics[i].first, padded.result.metrics[i].first) << what;
      expect_close(packed.result.metrics[i].second, padded.result.metrics[i].second,
                   what + " " + padded.result.metrics[i].first);
    }
    ASSERT_FALSE(padded.gradients.empty()) << what;
    ASSERT_EQ(packed.gradients.size(), padded.gradients.size()) << what;
    for (const auto& [name, grad] : padded.gradients) {
      EXPECT_GT(grad.abs().max().item<double>(), 0.0) << what << " " << name;
      expect_close(packed.gradients.at(name), grad, what + " gradient of " + name);
    }
  }
}

TEST(PackedScores, EqualThePaddedPathForDpoKtoAndOrpo) {
  for (const char* model : {"llama", "qwen2", "qwen3"}) expect_packing_changes_nothing(model, false, false);
}

TEST(PackedScores, EqualThePaddedPathWithLora) {
  for (const char* model : {"llama", "qwen2", "qwen3"}) expect_packing_changes_nothing(model, true, false);
}

TEST(PackedScores, EqualThePaddedPathUnderGradientCheckpointing) {
  expect_packing_changes_nothing("qwen3", false, true);
  expect_packing_changes_nothing("llama", true, true);
}

TEST(PackedScores, RefuseAPredictingPositionThatIsPadding) {
  // Packing drops pad tokens: a completion token right after padding has no state to predict it.
  testing::HfLoader m;
  auto model = m.loader->load(kOracle / "llama", LoadOptions{});
  auto batch = make_completion_batch({{1, 45}}, {{12, 13}});
  batch.attention_mask[0][1] = 0;
  EXPECT_THROW(score_completions(*model, batch, ScoreOptions{.packing = true}), std::invalid_argument);
}

// --- end to end -----------------------------------------------------------------------------

TEST(PackedTraining, TrainLogsThePaddedRunsMetrics) {
  TempDir dir;
  // The oracle model folders carry no tokenizer; init-model's byte-level one has the same EOS (2) and pad (0).
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "tok").string()})
                .exit_code,
            0);
  dir.write("pairs.jsonl",
            "{\"prompt_ids\": [1, 45, 67, 89, 90, 91, 92, 93], \"chosen_ids\": [12, 13, 14], \"rejected_ids\": [200]}\n"
            "{\"prompt_ids\": [1, 33], \"chosen_ids\": [50, 51, 52, 53, 54, 55, 56], \"rejected_ids\": [250, 251]}\n"
            "{\"prompt_ids\": [1, 99], \"chosen_ids\": [100], \"rejected_ids\": [7, 8, 9, 10, 11, 12]}\n"
            "{\"prompt_ids\": [1, 120, 121, 122], \"chosen_ids\": [130, 2], \"rejected_ids\": [140, 141, 142]}\n");
  for (const char* method : {"dpo", "kto", "orpo"}) {
    const auto recipe = dir.write(
        fmt::format("{}.toml", method),
        fmt::format("[training]\nmax_steps = 3\nper_device_train_batch_size = 4\nlogging_steps = 1\n"
                    "[optimizer]\nlearning_rate = 1e-3\n[method]\nname = \"{}\"\n[model]\npath = \"{}\"\n"
                    "tokenizer = \"tok\"\n[data]\nformat = \"jsonl\"\npath = \"pairs.jsonl\"\n[output]\nsave_model = false\n",
                    method, (kOracle / "llama").string()));
    std::vector<std::vector<nlohmann::json>> runs;
    for (const char* packing : {"false", "true"}) {
      const auto out = dir.path() / fmt::format("{}-{}", method, packing);
      const auto r = testing::run_alignkit(
          {"train", recipe.string(), "--output", out.string(), "--set", fmt::format("training.packing={}", packing)});
      ASSERT_EQ(r.exit_code, 0) << r.output;
      runs.push_back(testing::read_jsonl(out / "metrics.jsonl"));
    }
    const auto &padded = runs[0], &packed = runs[1];
    ASSERT_EQ(padded.size(), 3u) << method;
    ASSERT_EQ(packed.size(), 3u) << method;
    for (std::size_t step = 0; step < 3; ++step) {
      // Each step's rounding (kReorderingTolerance) moves the weights AdamW updates by a
      // normalised step, so later steps carry it forward: as the TRL oracle test, 1e-5 relative on
      // the loss and 1e-4 on the gradient norm (a wrong mask is off by far more).
      for (const auto& [key, tolerance] : {std::pair{"loss", 1e-5}, std::pair{"grad_norm", 1e-4}}) {
        const double expected = padded[step].at(key), got = packed[step].at(key);
        EXPECT_NEAR(got, expected, tolerance * std::abs(expected) + 1e-7) << method << " step " << step + 1 << " " << key;
      }
    }
  }
}

}  // namespace
}  // namespace alignkit
