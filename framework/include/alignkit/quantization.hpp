// Weight quantization for frozen base models: QLoRA's 4-bit NormalFloat (NF4) and 8-bit absmax.
//
// NF4 (Dettmers et al., 2023, https://arxiv.org/abs/2305.14314, section 3): weights are split into
// blocks of 64, each scaled by its absolute maximum into [-1, 1] and rounded to the nearest of 16
// code values placed at quantiles of a standard normal. The absmax constants are fp32 (4.5 bits
// per parameter in all), or, with double quantization, 8-bit per block with one fp32 scale per 256
// constants after subtracting their mean (4.127 bits per parameter, the paper's figure).
// Double quantization here is symmetric int8 on the constants: its storage equals QLoRA's, its
// values are not bit-identical to bitsandbytes' dynamic 8-bit map.
//
// Int8: per output row, scale = absmax / 127 and q = round(w / scale), error at most scale / 2.
//
// These are plain LibTorch ops (dequantize on the fly); a fused CUDA kernel can later replace
// dequantize() behind the same interface.
#pragma once

#include <array>
#include <cstdint>

#include <torch/types.h>

namespace alignkit {

// QLoRA's NF4 code book, as published (bitsandbytes' table), ascending.
const std::array<float, 16>& nf4_codebook();

struct Nf4Weight {
  std::vector<std::int64_t> shape;
  std::int64_t numel = 0;
  torch::Tensor codes;  // uint8, two 4-bit codes per byte, ceil(numel / 2) bytes
  // Without double quantization: fp32 absmax per 64-block.
  torch::Tensor absmax;
  // With double quantization: int8 per block, fp32 scale per 256 blocks, fp32 mean.
  torch::Tensor absmax_q, absmax_scale;
  double absmax_mean = 0;
  bool double_quantized = false;

  std::int64_t storage_bytes() const;
};

inline constexpr std::int64_t kNf4BlockSize = 64;
inline constexpr std::int64_t kNf4AbsmaxBlockSize = 256;

Nf4Weight quantize_nf4(const torch::Tensor& weight, bool double_quantize);
torch::Tensor dequantize(const Nf4Weight& weight, torch::ScalarType dtype = torch::kFloat32);

struct Int8Weight {
  torch::Tensor q;      // int8 [out, in]
  torch::Tensor scale;  // fp32 [out]: absmax / 127 per row
  std::int64_t storage_bytes() const;
};

Int8Weight quantize_int8(const torch::Tensor& weight);  // weight: [out, in]
torch::Tensor dequantize(const Int8Weight& weight, torch::ScalarType dtype = torch::kFloat32);

}  // namespace alignkit
