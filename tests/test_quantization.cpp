// NF4 and int8 weight quantization: the code book against QLoRA's construction, round-trip error
// within the code spacing, and storage equal to the published bits per parameter.
#include <gtest/gtest.h>

#include <cmath>

#include <alignkit/logprobs.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/quantization.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

double normal_ppf(double p) { return std::sqrt(2.0) * torch::erfinv(torch::tensor(2 * p - 1, torch::kFloat64)).item<double>(); }

TEST(Nf4, CodebookIsQloraConstruction) {
  // QLoRA (appendix E) / bitsandbytes create_normal_map(offset = 0.9677083): 8 positive normal
  // quantiles, 7 negative ones, and an exact zero, scaled so the largest is 1.
  const double offset = 0.9677083;
  std::vector<double> values = {0.0};
  for (int i = 0; i < 8; ++i) values.push_back(normal_ppf(offset + (0.5 - offset) * i / 8.0));
  for (int i = 0; i < 7; ++i) values.push_back(-normal_ppf(offset + (0.5 - offset) * i / 7.0));
  std::sort(values.begin(), values.end());
  const double top = values.back();
  const auto& book = nf4_codebook();
  ASSERT_EQ(values.size(), book.size());
  for (std::size_t i = 0; i < book.size(); ++i) EXPECT_NEAR(book[i], values[i] / top, 1e-6) << i;  // float32 table
  EXPECT_EQ(book.front(), -1.0f);
  EXPECT_EQ(book.back(), 1.0f);
  EXPECT_EQ(book[7], 0.0f);
}

TEST(Nf4, RoundTripPicksTheNearestCodeInEveryBlock) {
  torch::manual_seed(1);
  const auto w = torch::randn({300, 130});  // 39000 elements: the last block is partial
  for (bool double_quantize : {false, true}) {
    const auto q = quantize_nf4(w, double_quantize);
    const auto back = dequantize(q);
    ASSERT_EQ(back.sizes(), w.sizes());
    // Reference: per 64-block absmax, nearest code by brute force.
    const auto flat = w.reshape({-1});
    const auto pad = (64 - flat.numel() % 64) % 64;
    const auto blocks = torch::cat({flat, torch::zeros({pad})}).view({-1, 64});
    const auto absmax = blocks.abs().amax(1, true);
    const auto book = torch::tensor(std::vector<float>(nf4_codebook().begin(), nf4_codebook().end()));
    const auto nearest = (blocks / absmax).unsqueeze(-1).sub(book).abs().argmin(-1);
    const auto expected = (book.index_select(0, nearest.reshape({-1})).view({-1, 64}) * absmax).reshape({-1}).slice(0, 0, flat.numel());
    // Without double quantization the only difference is float rounding; with it, the absmax
    // constants carry int8 error (at most half a step of their own scale).
    const double tolerance = double_quantize ? 0.02 : 1e-6;
    EXPECT_LE((back.reshape({-1}) - expected).abs().max().item<double>(), tolerance) << double_quantize;
    // And the error against the original stays within half the widest code gap times the block max.
    double widest_gap = 0;
    for (std::size_t i = 1; i < nf4_codebook().size(); ++i)
      widest_gap = std::max<double>(widest_gap, nf4_codebook()[i] - nf4_codebook()[i - 1]);  // -1 to -0.696
    const double widest_half_gap = widest_gap / 2;
    const auto bound = (absmax * widest_half_gap).expand({-1, 64}).reshape({-1}).slice(0, 0, flat.numel());
    EXPECT_TRUE(((back.reshape({-1}) - flat).abs() <= bound + tolerance).all().item<bool>()) << double_quantize;
  }
}

TEST(Nf4, StorageIsThePublishedBitsPerParameter) {
  const auto w = torch::randn({64 * 256 * 4});
  const double plain = 8.0 * static_cast<double>(quantize_nf4(w, false).storage_bytes()) / static_cast<double>(w.numel());
  const double doubled = 8.0 * static_cast<double>(quantize_nf4(w, true).storage_bytes()) / static_cast<double>(w.numel());
  EXPECT_NEAR(plain, 4.5, 1e-9);     // 4 bits + 32 / 64
  EXPECT_NEAR(doubled, 4.127, 1e-3);  // 4 + 8 / 64 + 32 / (64 * 256)
}

TEST(Nf4, ZeroBlocksStayZero) {
  auto w = torch::zeros({128});
  w.slice(0, 64).normal_();
  const auto back = dequantize(quantize_nf4(w, true));
  EXPECT_FALSE(back.isnan().any().item<bool>());
  EXPECT_EQ(back.slice(0, 0, 64).abs().max().item<float>(), 0.0f);
}

TEST(Int8, ErrorIsAtMostHalfAStepPerRow) {
  torch::manual_seed(2);
  const auto w = torch::randn({17, 40}) * torch::linspace(0.1, 3, 17).unsqueeze(1);
  const auto q = quantize_int8(w);
  const auto back = dequantize(q);
  const auto bound = (q.scale / 2).unsqueeze(1) + 1e-7;
  EXPECT_TRUE(((back - w).abs() <= bound).all().item<bool>());
  EXPECT_EQ(q.storage_bytes(), 17 * 40 + 17 * 4);
  EXPECT_THROW(quantize_int8(torch::randn({3})), std::invalid_argument);
}

}  // namespace
}  // namespace alignkit

// QLoRA wiring: the hf loader quantizes the decoder's projections as they load.
namespace alignkit {
namespace {

TEST(QuantizedModel, ProjectionsAreStoredQuantizedAndOnlyAdaptersTrain) {
  testing::HfLoader m;
  const auto dir = testing::source_dir() / "tests/fixtures/oracle/llama";
  auto full = m.loader->load(dir, LoadOptions{});
  auto model = m.loader->load(dir, LoadOptions{torch::kCPU, torch::kFloat32, BaseQuantization::nf4_double_quant});
  std::int64_t params = 0, bytes = 0;
  for (const auto& item : model->named_modules())
    if (auto* linear = dynamic_cast<AdaptableLinearImpl*>(item.value().get())) {
      EXPECT_TRUE(linear->quantized()) << item.key();
      params += linear->in_features() * linear->out_features();
      bytes += linear->base_weight_bytes();
      // Dequantized on the fly, each weight equals the round trip of the full one.
      const auto* reference = dynamic_cast<AdaptableLinearImpl*>(full->named_modules()[item.key()].get());
      EXPECT_TRUE(torch::equal(linear->base_weight(torch::kFloat32),
                               dequantize(quantize_nf4(reference->weight, true), torch::kFloat32)))
          << item.key();
    }
  // The fixture's layers are small, so the per-tensor constants weigh a little more than 4.127
  // bits; the bound is the published figure plus one fp32 scale and mean per tensor.
  EXPECT_LT(8.0 * bytes / params, 4.127 + 8.0 * 8 * 7 * 2 / params);

  LoraConfig config;
  config.target_modules = {"q_proj", "v_proj"};
  apply_lora(*model, config);
  model->train();
  const auto batch = make_completion_batch({{3, 9, 27}}, {{7, 49}});
  score_completions(*model, batch).logps.sum().backward();
  for (const auto& item : model->named_parameters())
    EXPECT_EQ(item.value().grad().defined(), item.key().find("lora_") != std::string::npos) << item.key();

  // Saving a quantized model is refused; merging dequantizes into an ordinary layer.
  testing::TempDir out;
  EXPECT_THROW(m.loader->save(*model, out.path()), DiagnosticError);
  merge_lora(*model);
  for (const auto& item : model->named_modules())
    if (auto* linear = dynamic_cast<AdaptableLinearImpl*>(item.value().get()); linear && !linear->quantized())
      EXPECT_EQ(linear->weight.sizes(), (torch::IntArrayRef{linear->out_features(), linear->in_features()}));
}

}  // namespace
}  // namespace alignkit
