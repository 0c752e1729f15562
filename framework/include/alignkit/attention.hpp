// Causal scaled-dot-product attention, fused: the seam the decoder's attention goes through.
//
// The eager formulation (transformers' "eager": scores = q k^T * scale + an additive mask at the
// dtype's lowest value, fp32 softmax, probs @ v) writes several [B, H, T, S] tensors per layer
// and spends most of a small model's step in their element-wise passes. causal_attention()
// computes the same values a query row at a time: only the keys the row may see are scored, the
// scores never leave a thread's buffer, and backward recomputes them from the saved log-sum-exp
// (FlashAttention's scheme) instead of keeping the probabilities. Grouped-query heads read their
// shared key/value head directly, with no repeat_kv copy.
//
// Its CPU form is the reference a fused CUDA kernel is tested against later; where it does not
// apply (fused_attention_supports false) the decoder keeps the eager formulation.
#pragma once

#include <cstdint>
#include <optional>

#include <torch/types.h>

namespace alignkit {

// Which keys a query sees: key j is visible to query i when j <= i, i - j < sliding_window (when
// set), and, when key_ids is defined, key_ids[b, j] != 0 and key_ids[b, j] == key_ids[b, i] (a
// 0/1 attention mask, or packed rows' segment ids: the decoder's two mask conventions).
struct CausalMask {
  torch::Tensor key_ids;  // [B, T] integer, or undefined: every earlier key is visible
  std::optional<std::int64_t> sliding_window;
};

// Whether causal_attention takes inputs of this dtype, device and head size: fp32 on the CPU,
// head_dim a multiple of 16. The memory planner asks the same question (attention_is_fused).
bool fused_attention_supports(torch::ScalarType dtype, torch::Device device, std::int64_t head_dim);

// q: [B, H, T, D]; k, v: [B, Hkv, T, D] with H a multiple of Hkv (query head h reads key/value
// head h / (H / Hkv)). Any strides with a unit stride on D (a transposed [B, T, H, D] view reads
// in place). Returns [B, H, T, D] whose memory is laid out [B, T, H, D], so the caller's
// transpose(1, 2).reshape({B, T, H * D}) is a view. Differentiable in q, k and v.
//
// Equal to the eager formulation up to fp32 rounding, including a query that sees no key (a
// padding position): eager's scores there all round to the dtype's lowest value, so its softmax is
// uniform over all T keys, and so is this one's. Throws std::invalid_argument for inputs
// fused_attention_supports rejects or shapes that disagree.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const CausalMask& mask, double scale);

}  // namespace alignkit
