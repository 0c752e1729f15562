// The fused causal attention (sdk/attention.cpp) against the eager formulation it replaces,
// computed in float64 here: scores + an additive mask at fp32's lowest value, softmax, probs @ v,
// with key/value heads repeated for grouped-query attention. Outputs and the gradients of q, k
// and v under an arbitrary upstream gradient, for every mask the decoder builds.
#include <gtest/gtest.h>

#include <limits>

#include <alignkit/attention.hpp>

namespace alignkit {
namespace {

struct Case {
  const char* name;
  std::int64_t B, H, Hk, T, D;
  torch::Tensor key_ids;  // [B, T] or undefined
  std::optional<std::int64_t> window;
};

// transformers' eager attention in float64, mask as decoder.cpp builds it.
torch::Tensor eager(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const Case& c, double scale) {
  const auto T = c.T;
  auto query = torch::arange(T).view({-1, 1}), key = torch::arange(T).view({1, -1});
  auto visible = (key <= query).view({1, 1, T, T});
  if (c.window) visible = visible.logical_and((query - key < *c.window).view({1, 1, T, T}));
  if (c.key_ids.defined()) {
    const auto ids = c.key_ids.to(torch::kInt64);
    visible = visible.logical_and(ids.view({c.B, 1, 1, T}) != 0)
                  .logical_and(ids.view({c.B, 1, 1, T}) == ids.view({c.B, 1, T, 1}));
  }
  const auto mask = torch::zeros({c.B, 1, T, T}, torch::kFloat64)
                        .masked_fill(visible.logical_not(), static_cast<double>(std::numeric_limits<float>::lowest()));
  const auto kk = k.repeat_interleave(c.H / c.Hk, 1), vv = v.repeat_interleave(c.H / c.Hk, 1);
  return torch::matmul(torch::softmax(torch::matmul(q, kk.transpose(2, 3)) * scale + mask, -1), vv);
}

void expect_matches_eager(const Case& c) {
  SCOPED_TRACE(c.name);
  torch::manual_seed(11);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.D));
  // q as the decoder hands it over: a [B, H, T, D] view of [B, T, H, D] memory.
  auto q = (torch::randn({c.B, c.T, c.H, c.D}) * 2).transpose(1, 2).detach().requires_grad_();
  auto k = (torch::randn({c.B, c.Hk, c.T, c.D}) * 2).detach().requires_grad_();
  auto v = torch::randn({c.B, c.Hk, c.T, c.D}).requires_grad_();
  const auto upstream = torch::randn({c.B, c.H, c.T, c.D});
  auto out = causal_attention(q, k, v, {c.key_ids, c.window}, scale);
  ASSERT_EQ(out.sizes(), q.sizes());
  (out * upstream).sum().backward();

  auto q64 = q.detach().to(torch::kFloat64).requires_grad_(), k64 = k.detach().to(torch::kFloat64).requires_grad_(),
       v64 = v.detach().to(torch::kFloat64).requires_grad_();
  auto expected = eager(q64, k64, v64, c, scale);
  (expected * upstream.to(torch::kFloat64)).sum().backward();

  // fp32 against float64: scores of |q.k| * scale up to ~30 here, so a few fp32 ulps of them
  // (~1e-5) move probabilities by as much; outputs and gradients are O(1) to O(10).
  auto error = [](const torch::Tensor& got, const torch::Tensor& want) {
    return (got.to(torch::kFloat64) - want).abs().max().item<double>() / std::max(1.0, want.abs().max().item<double>());
  };
  EXPECT_LE(error(out.detach(), expected.detach()), 2e-6);
  EXPECT_LE(error(q.grad(), q64.grad()), 2e-6);
  EXPECT_LE(error(k.grad(), k64.grad()), 2e-6);
  EXPECT_LE(error(v.grad(), v64.grad()), 2e-6);
}

TEST(CausalAttention, EqualsEagerWithoutAMask) {
  expect_matches_eager({"MHA, T not a multiple of 16", 2, 4, 4, 37, 16, {}, {}});
  expect_matches_eager({"GQA 4:2, D 32", 2, 4, 2, 40, 32, {}, {}});
  expect_matches_eager({"GQA 6:1, one position", 1, 6, 1, 1, 16, {}, {}});
}

TEST(CausalAttention, EqualsEagerWithPaddingMasks) {
  // Right padding (TRL's layout), left padding (generation's), a hole, and a row that is all
  // padding: its queries see no key, where eager's softmax is uniform over the whole row.
  const auto ids = torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0,   //
                                  0, 0, 0, 1, 1, 1, 1, 1, 1, 1,   //
                                  1, 1, 0, 1, 1, 0, 1, 1, 1, 1,   //
                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
                                 torch::kInt64)
                       .view({4, 10});
  expect_matches_eager({"0/1 masks", 4, 4, 2, 10, 16, ids, {}});
}

TEST(CausalAttention, EqualsEagerWithSegmentIdsAndASlidingWindow) {
  // Packed rows: each token sees only earlier tokens of its own segment; 0 is padding.
  const auto segments = torch::tensor({1, 1, 1, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0}, torch::kInt64).view({1, 20});
  expect_matches_eager({"segments", 1, 2, 1, 20, 16, segments, {}});
  expect_matches_eager({"sliding window 5", 2, 2, 2, 33, 16, {}, 5});
  expect_matches_eager({"segments and window 3", 1, 2, 2, 20, 16, segments, 3});
}

TEST(CausalAttention, RefusesWhatItDoesNotCompute) {
  EXPECT_TRUE(fused_attention_supports(torch::kFloat32, torch::kCPU, 64));
  EXPECT_FALSE(fused_attention_supports(torch::kBFloat16, torch::kCPU, 64));
  EXPECT_FALSE(fused_attention_supports(torch::kFloat32, torch::kCPU, 24));
  EXPECT_FALSE(fused_attention_supports(torch::kFloat32, torch::Device(torch::kCUDA, 0), 64));
  const auto x = torch::randn({1, 2, 4, 16});
  EXPECT_THROW(causal_attention(x.to(torch::kBFloat16), x, x, {}, 0.25), std::invalid_argument);
  EXPECT_THROW(causal_attention(x, torch::randn({1, 3, 4, 16}), torch::randn({1, 3, 4, 16}), {}, 0.25), std::invalid_argument);
  EXPECT_THROW(causal_attention(x, x, x, {torch::ones({1, 5}, torch::kInt64), {}}, 0.25), std::invalid_argument);
}

}  // namespace
}  // namespace alignkit
