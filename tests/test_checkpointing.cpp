// Gradient checkpointing: recomputing each decoder layer in backward must give the gradients that
// keeping its activations gives, for full fine-tuning and for LoRA over frozen weights (where the
// layer inputs need no gradient, the case the reentrant form gets wrong), with dropout drawing
// the same mask in the recomputation.
#include <gtest/gtest.h>

#include <optional>

#include <alignkit/activation_checkpoint.hpp>
#include <alignkit/logprobs.hpp>
#include <alignkit/lora.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

const auto kLlama = testing::source_dir() / "tests/fixtures/oracle/llama";

// Gradients of a completion log-prob loss, by parameter name.
std::map<std::string, torch::Tensor> gradients(CausalLM& model, bool checkpointing) {
  model.train();
  model.set_gradient_checkpointing(checkpointing);
  model.zero_grad();
  torch::manual_seed(77);  // the same dropout masks in both runs
  const auto batch = make_completion_batch({{3, 9, 27, 81}, {5, 25}}, {{7, 49, 11}, {13, 17, 19, 23}});
  score_completions(model, batch).logps.sum().backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& item : model.named_parameters())
    if (item.value().grad().defined()) grads[item.key()] = item.value().grad().clone();
  return grads;
}

void expect_same(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, grad] : a) {
    ASSERT_TRUE(b.count(name)) << name;
    // The recomputation repeats the same fp32 operations: equal to the last bit or nearly.
    EXPECT_LE((grad - b.at(name)).abs().max().item<double>(), 1e-6) << name;
  }
}

TEST(GradientCheckpointing, FullFineTuningGradientsAreUnchanged) {
  testing::HfLoader m;
  auto model = m.loader->load(kLlama, LoadOptions{});
  const auto kept = gradients(*model, false);
  const auto recomputed = gradients(*model, true);
  EXPECT_GT(kept.size(), 10u);
  expect_same(kept, recomputed);
}

TEST(GradientCheckpointing, LoraWithDropoutOverFrozenWeightsGetsTheSameGradients) {
  testing::HfLoader m;
  auto model = m.loader->load(kLlama, LoadOptions{});
  LoraConfig config;
  config.r = 4;
  config.alpha = 8;
  config.dropout = 0.1;
  config.target_modules = {"q_proj", "v_proj", "down_proj"};
  apply_lora(*model, config);
  testing::perturb_adapters(*model, 1);
  const auto kept = gradients(*model, false);
  const auto recomputed = gradients(*model, true);
  EXPECT_FALSE(kept.empty());
  for (const auto& [name, grad] : kept) EXPECT_NE(name.find("lora_"), std::string::npos) << name;
  expect_same(kept, recomputed);
}

TEST(GradientCheckpointing, BlockOutputIsNotKeptForBackward) {
  // checkpoint_activations() saves only its input: the block's intermediate tensor is freed after forward,
  // observed through a weak reference to its storage.
  auto w = torch::randn({4, 4}, torch::requires_grad());
  std::optional<c10::weak_intrusive_ptr<c10::StorageImpl>> intermediate;
  auto block = [&](const torch::Tensor& x) {
    auto h = torch::matmul(x, w).tanh();
    intermediate.emplace(h.storage().getWeakStorageImpl());
    return torch::matmul(h, w);
  };
  const auto x = torch::randn({2, 4});
  auto y = checkpoint_activations(block, x, {w});
  ASSERT_TRUE(intermediate.has_value());
  EXPECT_TRUE(intermediate->expired());
  y.sum().backward();
  const auto recomputed = w.grad().clone();
  w.grad().zero_();
  block(x).sum().backward();
  EXPECT_TRUE(torch::allclose(recomputed, w.grad()));
}

}  // namespace
}  // namespace alignkit
