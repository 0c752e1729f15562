// LoRA on the hf decoder: equivalence with the merged model, adapter on/off, PEFT's file format.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include <alignkit/lora.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/safetensors.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kLlama = testing::source_dir() / "tests/fixtures/oracle/llama";
// Merged (x (W + sBA)^T) and unmerged (x W^T + s (x A^T) B^T) forms are algebraically equal and
// differ by fp32 rounding, amplified through two layers (seen up to 1.3e-5 at logits of ~4, and
// OpenBLAS may split sums differently under load): the task's fp32 logit bound, 1e-4.
constexpr double kTolerance = 1e-4;

struct Models : testing::HfLoader {
  std::shared_ptr<CausalLM> load() { return loader->load(kLlama, LoadOptions{}); }
};

LoraConfig config() {
  LoraConfig c;
  c.r = 4;
  c.alpha = 8;
  c.target_modules = {"q_proj", "v_proj", "down_proj"};
  return c;
}


torch::Tensor logits(CausalLM& model, const torch::Tensor& ids) {
  torch::NoGradGuard no_grad;
  return model.forward(ids, torch::ones_like(ids), {});
}

TEST(Lora, TargetRuleIsTheWholeNameOrADottedSuffix) {
  const std::string q = "model.layers.0.self_attn.q_proj";
  EXPECT_TRUE(is_lora_target(q, {"q_proj"}));
  EXPECT_TRUE(is_lora_target(q, {"v_proj", "self_attn.q_proj"}));
  EXPECT_TRUE(is_lora_target(q, {q}));
  EXPECT_FALSE(is_lora_target(q, {"proj"}));            // a suffix, but not at a dot
  EXPECT_FALSE(is_lora_target(q, {"self_attn"}));       // an ancestor is not a target
  EXPECT_FALSE(is_lora_target("q_proj", {"self_attn.q_proj"}));
  EXPECT_FALSE(is_lora_target(q, {}));
  EXPECT_FALSE(is_lora_target("model.layers.10.mlp.up_proj", {"layers.1.mlp.up_proj"}));
}

TEST(Lora, FreshAdapterLeavesTheModelUnchangedAndOnlyAdaptersTrain) {
  Models m;
  auto model = m.load();
  const auto ids = torch::randint(0, 300, {2, 11});
  const auto before = logits(*model, ids);
  const auto adapted = apply_lora(*model, config());
  EXPECT_EQ(adapted.size(), 6u);  // 3 targets x 2 layers
  EXPECT_TRUE(torch::equal(logits(*model, ids), before));  // B starts at zero
  std::int64_t trainable = 0;
  for (const auto& item : model->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    EXPECT_NE(item.key().find(".lora_"), std::string::npos) << item.key();
    trainable += item.value().numel();
  }
  // Per layer: q (64 -> 64), v (64 -> 32), down (128 -> 64), each r * (in + out).
  EXPECT_EQ(trainable, 2 * 4 * ((64 + 64) + (64 + 32) + (128 + 64)));
}

TEST(Lora, LayerComputesTheLowRankUpdate) {
  torch::manual_seed(5);
  AdaptableLinear layer(6, 3, true);
  {
    torch::NoGradGuard no_grad;
    layer->weight.normal_();
    layer->bias.normal_();
  }
  layer->attach_lora(2, 1.5, 0.0);
  {
    torch::NoGradGuard no_grad;
    layer->lora_B->weight.normal_();
  }
  const auto x = torch::randn({4, 6});
  const auto expected = torch::matmul(x, layer->weight.t()) + layer->bias +
                        1.5 * torch::matmul(torch::matmul(x, layer->lora_A->weight.t()), layer->lora_B->weight.t());
  // The same products in the same order: equal up to a few fp32 roundings of values near 10.
  EXPECT_LE((layer->forward(x) - expected).abs().max().item<double>(), 1e-5);
  layer->set_adapter_enabled(false);
  EXPECT_LE((layer->forward(x) - (torch::matmul(x, layer->weight.t()) + layer->bias)).abs().max().item<double>(), 1e-6);
}

TEST(Lora, DisabledAdapterIsTheBaseModelAndMergedEqualsAdapted) {
  Models m;
  auto model = m.load();
  const auto ids = torch::randint(0, 300, {2, 9});
  const auto base = logits(*model, ids);
  apply_lora(*model, config());
  testing::perturb_adapters(*model, 11);
  const auto adapted = logits(*model, ids);
  EXPECT_GT((adapted - base).abs().max().item<double>(), 1e-3);  // the adapter does something
  set_adapters_enabled(*model, false);
  EXPECT_TRUE(torch::equal(logits(*model, ids), base));  // "adapter off" is exactly the base
  set_adapters_enabled(*model, true);
  merge_lora(*model);
  EXPECT_LE((logits(*model, ids) - adapted).abs().max().item<double>(), kTolerance);
  for (const auto& item : model->named_parameters()) EXPECT_EQ(item.key().find("lora"), std::string::npos);
}

TEST(Lora, RsLoraScalesByTheSquareRootOfTheRank) {
  LoraConfig c = config();
  c.r = 16;
  c.alpha = 8;
  EXPECT_DOUBLE_EQ(c.scaling(), 0.5);
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(c.scaling(), 2.0);
}

TEST(Lora, SavesPeftFormatAndLoadsItBack) {
  Models m;
  TempDir dir;
  auto model = m.load();
  apply_lora(*model, config());
  testing::perturb_adapters(*model, 11);
  save_peft_adapter(*model, config(), dir.path(), "tests/fixtures/oracle/llama");

  const auto file = safetensors::File::open(dir.path() / "adapter_model.safetensors");
  std::set<std::string> keys;
  for (const auto& t : file.header().tensors) keys.insert(t.name);
  EXPECT_EQ(keys.size(), 12u);
  EXPECT_TRUE(keys.count("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(keys.count("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
  EXPECT_EQ(file.tensor("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight").sizes(),
            (std::vector<std::int64_t>{32, 4}));
  std::ifstream in(dir.path() / "adapter_config.json");
  const auto json = nlohmann::json::parse(in);
  EXPECT_EQ(json["peft_type"], "LORA");
  EXPECT_EQ(json["task_type"], "CAUSAL_LM");
  EXPECT_EQ(json["r"], 4);
  EXPECT_EQ(json["lora_alpha"], 8.0);
  EXPECT_EQ(json["target_modules"], (std::vector<std::string>{"q_proj", "v_proj", "down_proj"}));
  EXPECT_EQ(json["bias"], "none");

  auto fresh = m.load();
  const auto loaded = load_peft_adapter(*fresh, dir.path());
  EXPECT_EQ(loaded.r, 4);
  const auto ids = torch::randint(0, 300, {1, 8});
  EXPECT_TRUE(torch::equal(logits(*fresh, ids), logits(*model, ids)));
}

TEST(Lora, MismatchedAdaptersAreRefusedWithTheFile) {
  Models m;
  TempDir dir;
  auto model = m.load();
  LoraConfig c = config();
  c.target_modules = {"nonexistent_proj"};
  try {
    apply_lora(*model, c);
    FAIL();
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("no module matches the LoRA target_modules [nonexistent_proj]"), std::string::npos);
    EXPECT_NE(e.format().find("q_proj"), std::string::npos) << e.format();  // lists what exists
  }
  apply_lora(*model, config());
  save_peft_adapter(*model, config(), dir.path(), "x");
  // A config claiming another rank no longer fits the saved tensors.
  nlohmann::json json;
  {
    std::ifstream in(dir.path() / "adapter_config.json");
    json = nlohmann::json::parse(in);
  }
  json["r"] = 8;
  std::ofstream(dir.path() / "adapter_config.json") << json.dump();
  try {
    load_peft_adapter(*m.load(), dir.path());
    FAIL();
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("has shape 4x64, the model needs 8x64"), std::string::npos) << e.format();
    EXPECT_NE(e.format().find("adapter_model.safetensors"), std::string::npos);
  }
}

TEST(Lora, MergeCommandWritesAModelEqualToTheAdaptedOne) {
  Models m;
  TempDir dir;
  auto model = m.load();
  apply_lora(*model, config());
  testing::perturb_adapters(*model, 11);
  save_peft_adapter(*model, config(), dir.path() / "adapter", kLlama.string());
  auto r = testing::run_alignkit({"merge", "--model", kLlama.string(), "--adapter", (dir.path() / "adapter").string(),
                                  "--out", (dir.path() / "merged").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto merged = m.loader->load(dir.path() / "merged", LoadOptions{});
  for (const auto& item : merged->named_parameters()) EXPECT_EQ(item.key().find("lora"), std::string::npos);
  const auto ids = torch::randint(0, 300, {2, 10});
  EXPECT_LE((logits(*merged, ids) - logits(*model, ids)).abs().max().item<double>(), kTolerance);
  // Same folder in and out is refused; the tokenizer files travel with the merged model.
  r = testing::run_alignkit({"merge", "--model", kLlama.string(), "--adapter", (dir.path() / "adapter").string(),
                             "--out", kLlama.string()});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  const fs::path with_tokenizer = dir.path() / "base";
  fs::create_directories(with_tokenizer);
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(kLlama / f, with_tokenizer / f);
  dir.write("base/tokenizer.json", "{\"model\": {}}\n");
  r = testing::run_alignkit({"merge", "--model", with_tokenizer.string(), "--adapter", (dir.path() / "adapter").string(),
                             "--out", (dir.path() / "merged2").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir.path() / "merged2/tokenizer.json"));
  // An adapted model cannot be saved as a plain one, and adapters do not stack.
  EXPECT_THROW(m.loader->save(*model, dir.path() / "bad"), DiagnosticError);
  EXPECT_THROW(apply_lora(*model, config()), DiagnosticError);
}

}  // namespace
}  // namespace alignkit
