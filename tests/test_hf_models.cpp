// The hf model loader against logits computed by transformers itself (tests/fixtures/oracle:
// transformers 4.51.3, eager attention, fp32), for every supported architecture.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/function.h>

#include <alignkit/attention.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/safetensors.hpp>
#include <alignkit/value_head.hpp>

#include "host/recipe_validator.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::copy_model;
using testing::edit_config;
using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kOracle = testing::source_dir() / "tests/fixtures/oracle";
// The task's bound for fp32 logits against transformers.
constexpr double kLogitTolerance = 1e-4;

using Loader = testing::HfLoader;

Loader& loader() {
  static Loader instance;
  return instance;
}

// Max |a - b| over the positions where mask == 1 ([B, T] mask, [B, T, V] tensors).
double max_error_on_real_tokens(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  const auto keep = mask.to(torch::kBool).unsqueeze(-1).expand_as(a);
  return (a - b).abs().masked_select(keep).max().item<double>();
}

class OracleLogits : public ::testing::TestWithParam<const char*> {};

TEST_P(OracleLogits, MatchTransformers) {
  const fs::path dir = kOracle / GetParam();
  auto model = loader().loader->load(dir, LoadOptions{});
  const auto golden = safetensors::File::open(dir / "logits.safetensors");
  const auto ids = golden.tensor("input_ids"), mask = golden.tensor("attention_mask");
  torch::NoGradGuard no_grad;
  // transformers' default positions (0..T-1 for every row).
  const auto logits = model->forward(ids, mask, torch::Tensor());
  EXPECT_LE(max_error_on_real_tokens(logits, golden.tensor("logits"), mask), kLogitTolerance);
  // TRL's positions (counting from the first real token of each row).
  const auto shifted = model->forward(ids, mask, golden.tensor("position_ids_from_mask"));
  EXPECT_LE(max_error_on_real_tokens(shifted, golden.tensor("logits_pos_from_mask"), mask), kLogitTolerance);
}

INSTANTIATE_TEST_SUITE_P(EveryArchitecture, OracleLogits,
                         ::testing::Values("llama", "llama3_rope", "llama_tied", "mistral", "qwen2", "qwen3"),
                         [](const auto& info) { return std::string(info.param); });

// Whether the autograd graph behind `t` holds the fused attention's node (sdk/attention.cpp).
bool went_through_fused_attention(const torch::Tensor& t) {
  std::vector<torch::autograd::Node*> stack = {t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (!node || !seen.insert(node).second) continue;
    if (node->name().find("CausalAttention") != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return false;
}

// The fused attention (the default for fp32 on the CPU) against the eager formulation
// (LoadOptions::eager_attention, `[model] attention = "eager"`) on the same weights: hidden states
// at every position, padding included, and every parameter's gradient, for right- and
// left-padded rows, a row that is all padding, packed rows with segment ids, and a sliding window.
TEST(HfModel, FusedAttentionEqualsEagerInValuesAndGradients) {
  TempDir dir;
  const auto windowed = copy_model(dir, "mistral");
  edit_config(windowed, [](nlohmann::json& c) { c["sliding_window"] = 5; });
  const std::vector<std::pair<std::string, fs::path>> models = {
      {"llama", kOracle / "llama"}, {"qwen2", kOracle / "qwen2"}, {"qwen3", kOracle / "qwen3"},
      {"mistral, sliding window 5", windowed}};
  for (const auto& [name, path] : models) {
    SCOPED_TRACE(name);
    const auto description = loader().loader->describe(path);
    ASSERT_TRUE(fused_attention_supports(torch::kFloat32, torch::kCPU, description.head_dim));
    LoadOptions eager_options;
    eager_options.eager_attention = true;
    auto fused = loader().loader->load(path, LoadOptions{});
    auto eager = loader().loader->load(path, eager_options);
    torch::manual_seed(3);
    const auto ids = torch::randint(3, description.vocab_size, {4, 12});
    const auto padded = torch::tensor({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   //
                                       1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0,   //
                                       0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1,   //
                                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, torch::kInt64).view({4, 12});
    const auto packed = torch::tensor({1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3}, torch::kInt64).view({1, 12});
    const auto packed_positions = torch::tensor({0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3}, torch::kInt64).view({1, 12});
    struct Input {
      const char* what;
      torch::Tensor ids, mask, positions;
    };
    for (const auto& in : {Input{"padded rows", ids, padded, {}},
                           Input{"packed row", ids.slice(0, 0, 1), packed, packed_positions}}) {
      SCOPED_TRACE(in.what);
      fused->train(), eager->train();
      fused->zero_grad(), eager->zero_grad();
      const auto h_fused = fused->hidden_states(in.ids, in.mask, in.positions);
      const auto h_eager = eager->hidden_states(in.ids, in.mask, in.positions);
      ASSERT_TRUE(went_through_fused_attention(h_fused));
      ASSERT_FALSE(went_through_fused_attention(h_eager));
      // Same fp32 operations grouped differently: rounding, as the kernel's own test bounds it.
      EXPECT_LE((h_fused - h_eager).abs().max().item<double>(), 1e-5);
      const auto upstream = torch::randn(h_fused.sizes());
      (h_fused * upstream).sum().backward();
      (h_eager * upstream).sum().backward();
      const auto eager_params = eager->named_parameters();
      for (const auto& p : fused->named_parameters()) {
        const auto& g = p.value().grad();
        const auto& want = eager_params[p.key()].grad();
        ASSERT_EQ(g.defined(), want.defined()) << p.key();
        if (!g.defined()) continue;  // the output head: hidden_states stops before it
        EXPECT_LE((g - want).abs().max().item<double>(), 1e-5 * std::max(1.0, want.abs().max().item<double>())) << p.key();
      }
    }
  }
}

TEST(HfModel, SequenceClassificationScoresMatchTransformers) {
  const fs::path dir = kOracle / "llama_seqcls";
  auto model = loader().loader->load(dir, LoadOptions{});
  const auto golden = safetensors::File::open(dir / "logits.safetensors");
  const auto ids = golden.tensor("input_ids"), mask = golden.tensor("attention_mask");
  torch::NoGradGuard no_grad;
  const auto token_scores = model->forward(ids, mask, torch::Tensor());
  EXPECT_LE(max_error_on_real_tokens(token_scores, golden.tensor("token_scores"), mask), kLogitTolerance);
  // transformers pools at the rightmost token that is not the pad id (0 here).
  const auto last = (torch::arange(ids.size(1)) * (ids != 0)).argmax(-1);
  const auto pooled = token_scores.index({torch::arange(ids.size(0)), last});
  EXPECT_LE((pooled - golden.tensor("scores")).abs().max().item<double>(), kLogitTolerance);
  // The SDK's pooling (by attention mask) finds the same positions.
  EXPECT_LE((sequence_scores(*model, ids, mask) - golden.tensor("scores")).abs().max().item<double>(), kLogitTolerance);
}

TEST(ValueHead, OneValuePerPositionSavedUnderTrlNames) {
  auto model = loader().loader->load(kOracle / "llama", LoadOptions{});
  torch::manual_seed(3);
  ValueHead head(model->description().hidden_size, 0.0);
  const auto ids = torch::randint(3, 200, {2, 6});
  const auto mask = torch::ones({2, 6}, torch::kInt64);
  torch::NoGradGuard no_grad;
  const auto hidden = model->hidden_states(ids, mask, torch::Tensor());
  const auto values = head->forward(hidden);
  ASSERT_EQ(values.sizes(), (torch::IntArrayRef{2, 6}));
  const auto expected = torch::matmul(hidden, head->summary->weight.t()).squeeze(-1) + head->summary->bias;
  EXPECT_LE((values - expected).abs().max().item<double>(), 1e-6);

  testing::TempDir dir;
  head->save(dir.path() / "v_head.safetensors");
  const auto file = safetensors::File::open(dir.path() / "v_head.safetensors");
  EXPECT_TRUE(file.find("v_head.summary.weight") && file.find("v_head.summary.bias"));
  ValueHead again(model->description().hidden_size, 0.0);
  again->load(dir.path() / "v_head.safetensors");
  EXPECT_TRUE(torch::equal(again->forward(hidden), values));
  ValueHead wrong(8, 0.0);
  EXPECT_THROW(wrong->load(dir.path() / "v_head.safetensors"), DiagnosticError);
}

TEST(HfModel, ModelOutlivesTheRegistryThatLoadedIt) {
  // Run alone (ctest runs each test in its own process), so nothing else holds the plugin loaded.
  std::shared_ptr<CausalLM> model;
  {
    Loader local;
    model = PluginRegistry::keep_loaded(*local.fixture.recipe.plugins.at("model"),
                                        local.loader->load(kOracle / "llama", LoadOptions{}));
  }
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(torch::tensor({{1, 5, 7}}), {}, {}).size(2), 300);  // the plugin's code still runs
}

TEST(HfModel, DescribeCountsParametersFromTheConfigAlone) {
  std::ifstream in(kOracle / "manifest.json");
  const auto manifest = nlohmann::json::parse(in);
  for (const auto& [name, entry] : manifest["models"].items()) {
    const auto d = loader().loader->describe(kOracle / name);
    EXPECT_EQ(d.parameters, entry["n_params"].get<std::int64_t>()) << name;
    // And the loaded model agrees.
    auto model = loader().loader->load(kOracle / name, LoadOptions{});
    std::int64_t counted = 0;
    for (const auto& p : model->parameters()) counted += p.numel();
    EXPECT_EQ(counted, d.parameters) << name;
  }
}

TEST(HfModel, SavedModelReloadsToTheSameLogits) {
  TempDir dir;
  auto model = loader().loader->load(kOracle / "qwen3", LoadOptions{});
  loader().loader->save(*model, dir.path() / "copy");
  auto again = loader().loader->load(dir.path() / "copy", LoadOptions{});
  const auto ids = torch::randint(0, 300, {2, 9});
  const auto mask = torch::ones({2, 9}, torch::kInt64);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(ids, mask, {}), again->forward(ids, mask, {})));

  // Saved in bf16, the config says so (transformers reads torch_dtype to pick the load dtype).
  auto bf16 = loader().loader->load(kOracle / "qwen3", LoadOptions{torch::kCPU, torch::kBFloat16});
  loader().loader->save(*bf16, dir.path() / "bf16");
  std::ifstream in(dir.path() / "bf16/config.json");
  const auto config = nlohmann::json::parse(in);
  EXPECT_EQ(config.at("torch_dtype"), "bfloat16");
  EXPECT_EQ(config.at("architectures"), nlohmann::json::array({"Qwen3ForCausalLM"}));
  EXPECT_EQ(safetensors::File::open(dir.path() / "bf16/model.safetensors").header().tensors.at(0).dtype, safetensors::DType::BF16);
}

std::string load_error(const fs::path& dir) {
  try {
    loader().loader->load(dir, LoadOptions{});
  } catch (const DiagnosticError& e) {
    return e.format();
  }
  return "(loaded)";
}

TEST(HfModel, BadModelDirectoriesAreRefusedWithTheFileAndReason) {
  TempDir dir;
  EXPECT_NE(load_error(dir.path() / "absent").find("the model directory does not exist"), std::string::npos);

  auto m = copy_model(dir, "llama");
  edit_config(m, [](auto& c) { c["architectures"] = {"GPT2LMHeadModel"}; });
  EXPECT_NE(load_error(m).find("'GPT2LMHeadModel' is not supported"), std::string::npos) << load_error(m);

  m = copy_model(dir, "mistral");
  edit_config(m, [](auto& c) { c["intermediate_size"] = 96; });
  EXPECT_NE(load_error(m).find("has shape 128x64, the config implies 96x64"), std::string::npos) << load_error(m);

  m = copy_model(dir, "qwen2");
  edit_config(m, [](auto& c) { c.erase("hidden_size"); });
  EXPECT_NE(load_error(m).find("config.json key 'hidden_size': is missing"), std::string::npos) << load_error(m);

  m = copy_model(dir, "llama_tied");
  edit_config(m, [](auto& c) { c["tie_word_embeddings"] = false; });  // now it needs lm_head.weight
  EXPECT_NE(load_error(m).find("no tensor 'lm_head.weight'"), std::string::npos) << load_error(m);

  m = copy_model(dir, "qwen3");
  edit_config(m, [](auto& c) { c["architectures"] = {"LlamaForCausalLM"}; });  // q_norm/k_norm unused
  EXPECT_NE(load_error(m).find("has no place in the model"), std::string::npos) << load_error(m);

  m = copy_model(dir, "qwen3");
  edit_config(m, [](auto& c) { c["use_sliding_window"] = true; c["sliding_window"] = 4; });
  EXPECT_NE(load_error(m).find("sliding-window attention for Qwen models is not supported"), std::string::npos)
      << load_error(m);

  m = copy_model(dir, "llama_seqcls");
  edit_config(m, [](auto& c) { c["model_type"] = 5; });
  EXPECT_NE(load_error(m).find("config.json has a field of the wrong type"), std::string::npos) << load_error(m);

  m = copy_model(dir, "llama3_rope");
  fs::remove(m / "model.safetensors");
  EXPECT_NE(load_error(m).find("has no model.safetensors"), std::string::npos) << load_error(m);
}

TEST(HfModel, ShardedCheckpointsLoadThroughTheIndex) {
  TempDir dir;
  const fs::path m = copy_model(dir, "llama");
  // Re-shard: layers in one file, everything else in another, with an index as transformers writes.
  const auto whole = safetensors::File::open(m / "model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> layers, rest;
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& t : whole.header().tensors) {
    const bool layer = t.name.find(".layers.") != std::string::npos;
    (layer ? layers : rest).emplace_back(t.name, whole.tensor(t.name).clone());
    index["weight_map"][t.name] = layer ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  safetensors::save(m / "model-00001-of-00002.safetensors", layers);
  safetensors::save(m / "model-00002-of-00002.safetensors", rest);
  fs::remove(m / "model.safetensors");
  std::ofstream(m / "model.safetensors.index.json") << index.dump();
  auto sharded = loader().loader->load(m, LoadOptions{});
  auto original = loader().loader->load(kOracle / "llama", LoadOptions{});
  const auto ids = torch::randint(0, 300, {1, 7});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(sharded->forward(ids, {}, {}), original->forward(ids, {}, {})));
  // Saving over the sharded folder replaces the shards' index, so the saved weights are what loads.
  {
    torch::NoGradGuard guard;
    sharded->named_parameters()["model.norm.weight"].fill_(2.0);
  }
  loader().loader->save(*sharded, m);
  EXPECT_FALSE(fs::exists(m / "model.safetensors.index.json"));
  auto reloaded = loader().loader->load(m, LoadOptions{});
  EXPECT_TRUE(torch::equal(reloaded->forward(ids, {}, {}), sharded->forward(ids, {}, {})));
}

TEST(InitModel, TinyPresetLoadsAndLargePresetsDescribeLikeTheRealModels) {
  TempDir dir;
  auto r = testing::run_alignkit({"init-model", "--preset", "tiny", "--out", (dir.path() / "tiny").string(), "--seed", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto model = loader().loader->load(dir.path() / "tiny", LoadOptions{});
  std::int64_t counted = 0;
  for (const auto& p : model->parameters()) counted += p.numel();
  EXPECT_EQ(counted, model->description().parameters);
  // The planning presets write only config.json, and their sizes are the published ones:
  // Llama-3.1-8B has 8,030,261,248 parameters and Llama-3.1-70B 70,553,706,496.
  for (const auto& [preset, parameters] : {std::pair{"8b", 8030261248LL}, std::pair{"70b", 70553706496LL}}) {
    const auto out = dir.path() / preset;
    r = testing::run_alignkit({"init-model", "--preset", preset, "--out", out.string(), "--config-only"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_FALSE(fs::exists(out / "model.safetensors"));
    EXPECT_EQ(loader().loader->describe(out).parameters, parameters) << preset;
  }
  r = testing::run_alignkit({"init-model", "--preset", "huge", "--out", (dir.path() / "x").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown preset 'huge'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace alignkit
