// The fused causal attention (alignkit/attention.hpp) against the eager formulation it replaces
// in the decoder (matmul, scale, additive mask, fp32 softmax, matmul; key/value heads repeated),
// on one attention layer's inputs: forward without gradients (a reference model's) and forward +
// backward (the policy's).
//
//   attention_throughput [B=4] [HEADS=4] [KV_HEADS=2] [T=512] [HEAD_DIM=16] [ITERATIONS=10]
//
// The defaults are the tiny DPO bench's layer (2 pairs x 512 tokens, init-model's tiny). Prints
// one JSON object: the best of ITERATIONS seconds of each, and the ratios.
#include <iostream>
#include <limits>
#include <string>

#include <fmt/format.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <alignkit/attention.hpp>

#include "best_seconds.hpp"
#include "host/runtime_setup.hpp"

using alignkit::bench::best_seconds;

int main(int argc, char** argv) {
  auto arg = [&](int i, std::int64_t fallback) { return argc > i ? std::stoll(argv[i]) : fallback; };
  const std::int64_t B = arg(1, 4), H = arg(2, 4), Hk = arg(3, 2), T = arg(4, 512), D = arg(5, 16);
  const int iterations = static_cast<int>(arg(6, 10));
  alignkit::configure_runtime(0);
  torch::manual_seed(0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto q = torch::randn({B, T, H, D}).transpose(1, 2).requires_grad_();
  auto k = torch::randn({B, Hk, T, D}).requires_grad_();
  auto v = torch::randn({B, Hk, T, D}).requires_grad_();
  const auto upstream = torch::randn({B, H, T, D});
  const auto mask = torch::zeros({B, 1, T, T}).masked_fill(torch::ones({T, T}, torch::kBool).triu(1),
                                                           std::numeric_limits<float>::lowest());
  auto eager = [&] {
    const auto kk = k.repeat_interleave(H / Hk, 1), vv = v.repeat_interleave(H / Hk, 1);
    return torch::matmul(torch::softmax(torch::matmul(q, kk.transpose(2, 3)) * scale + mask, -1, torch::kFloat32), vv);
  };
  auto fused = [&] { return alignkit::causal_attention(q, k, v, {}, scale); };
  auto forward = [&](auto&& attend) {
    return best_seconds(iterations, [&] {
      torch::NoGradGuard no_grad;
      (void)attend();
    });
  };
  auto train = [&](auto&& attend) {
    return best_seconds(iterations, [&] { (attend() * upstream).sum().backward(); });
  };
  const double eager_fwd = forward(eager), fused_fwd = forward(fused);
  const double eager_train = train(eager), fused_train = train(fused);
  std::cout << fmt::format(
      "{{\"shape\": [{}, {}, {}, {}, {}], \"threads\": {}, \"eager_forward_ms\": {:.2f}, \"fused_forward_ms\": {:.2f}, "
      "\"forward_speedup\": {:.2f}, \"eager_forward_backward_ms\": {:.2f}, \"fused_forward_backward_ms\": {:.2f}, "
      "\"forward_backward_speedup\": {:.2f}}}\n",
      B, H, Hk, T, D, at::get_num_threads(), eager_fwd * 1e3, fused_fwd * 1e3, eager_fwd / fused_fwd, eager_train * 1e3,
      fused_train * 1e3, eager_train / fused_train);
  return 0;
}
