#include <alignkit/quantization.hpp>

#include <stdexcept>

namespace alignkit {

const std::array<float, 16>& nf4_codebook() {
  static const std::array<float, 16> values = {
      -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
      -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
      0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
      0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f};
  return values;
}

namespace {

torch::Tensor codebook_tensor() {
  const auto& v = nf4_codebook();
  return torch::from_blob(const_cast<float*>(v.data()), {16}, torch::kFloat32).clone();
}

// Pads a flat fp32 tensor with zeros to a multiple of `block` and views it as [blocks, block].
torch::Tensor as_blocks(const torch::Tensor& flat, std::int64_t block) {
  const auto pad = (block - flat.numel() % block) % block;
  return torch::cat({flat, torch::zeros({pad}, flat.options())}).view({-1, block});
}

}  // namespace

Nf4Weight quantize_nf4(const torch::Tensor& weight, bool double_quantize) {
  torch::NoGradGuard no_grad;
  Nf4Weight out;
  out.shape = weight.sizes().vec();
  out.numel = weight.numel();
  const auto blocks = as_blocks(weight.detach().to(torch::kFloat32).reshape({-1}), kNf4BlockSize);
  auto absmax = blocks.abs().amax(1);
  const auto safe = torch::where(absmax > 0, absmax, torch::ones_like(absmax));
  const auto normalized = blocks / safe.unsqueeze(1);
  // Nearest code: the midpoints between neighbouring code values split [-1, 1] into 16 bins.
  const auto book = codebook_tensor();
  const auto midpoints = (book.slice(0, 1) + book.slice(0, 0, -1)) / 2;
  auto codes = torch::bucketize(normalized.reshape({-1}), midpoints).to(torch::kUInt8).slice(0, 0, out.numel);
  if (codes.numel() % 2) codes = torch::cat({codes, torch::zeros({1}, codes.options())});
  const auto pairs = codes.view({-1, 2});
  out.codes = (pairs.select(1, 0).bitwise_left_shift(4)).bitwise_or(pairs.select(1, 1));  // high nibble first
  if (!double_quantize) {
    out.absmax = absmax;
    return out;
  }
  out.double_quantized = true;
  out.absmax_mean = absmax.mean().item<double>();
  const auto centred = as_blocks(absmax - out.absmax_mean, kNf4AbsmaxBlockSize);
  auto scale = centred.abs().amax(1) / 127.0;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  out.absmax_scale = scale;
  out.absmax_q = torch::round(centred / scale.unsqueeze(1)).clamp(-127, 127).to(torch::kInt8).reshape({-1}).slice(
      0, 0, absmax.numel());
  return out;
}

torch::Tensor dequantize(const Nf4Weight& w, torch::ScalarType dtype) {
  torch::Tensor absmax = w.absmax;
  if (w.double_quantized) {
    const auto blocks = (w.numel + kNf4BlockSize - 1) / kNf4BlockSize;
    const auto padded = as_blocks(w.absmax_q.to(torch::kFloat32), kNf4AbsmaxBlockSize);
    absmax = (padded * w.absmax_scale.unsqueeze(1)).reshape({-1}).slice(0, 0, blocks) + w.absmax_mean;
  }
  const auto high = w.codes.bitwise_right_shift(4), low = w.codes.bitwise_and(15);
  const auto codes = torch::stack({high, low}, 1).reshape({-1}).slice(0, 0, w.numel).to(torch::kInt64);
  const auto values = as_blocks(codebook_tensor().index_select(0, codes), kNf4BlockSize) * absmax.unsqueeze(1);
  return values.reshape({-1}).slice(0, 0, w.numel).view(w.shape).to(dtype);
}

std::int64_t Nf4Weight::storage_bytes() const {
  if (!double_quantized) return codes.numel() + absmax.numel() * 4;
  return codes.numel() + absmax_q.numel() + absmax_scale.numel() * 4 + 4;
}

Int8Weight quantize_int8(const torch::Tensor& weight) {
  if (weight.dim() != 2) throw std::invalid_argument("quantize_int8: expected a [out, in] matrix");
  torch::NoGradGuard no_grad;
  const auto w = weight.detach().to(torch::kFloat32);
  auto scale = w.abs().amax(1) / 127.0;
  scale = torch::where(scale > 0, scale, torch::ones_like(scale));
  return {torch::round(w / scale.unsqueeze(1)).clamp(-127, 127).to(torch::kInt8), scale};
}

torch::Tensor dequantize(const Int8Weight& w, torch::ScalarType dtype) {
  return (w.q.to(torch::kFloat32) * w.scale.unsqueeze(1)).to(dtype);
}

std::int64_t Int8Weight::storage_bytes() const { return q.numel() + scale.numel() * 4; }

}  // namespace alignkit
