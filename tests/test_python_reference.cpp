// alignkit against the Python reference forward (tests/reference/llama_reference.py, Debian's
// python3-torch), which first proves itself against transformers' own logits and then covers
// what those fixtures do not: LoRA adapters, new shapes with left padding, bf16.
#include <gtest/gtest.h>

#include <alignkit/lora.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/safetensors.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kOracle = testing::source_dir() / "tests/fixtures/oracle";
const std::string kReference = (testing::source_dir() / "tests/reference/llama_reference.py").string();
const std::string kPython = "/usr/bin/python3";  // Debian's, which has python3-torch
constexpr double kFp32Tolerance = 1e-4;          // the task's bound for fp32 logits

const char* const kArchitectures[] = {"llama", "llama3_rope", "llama_tied", "mistral", "qwen2", "qwen3"};

testing::CommandResult reference(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kPython, kReference};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::run_command(argv);
}

TEST(PythonReference, ReproducesTransformersOwnLogits) {
  for (const char* arch : kArchitectures) {
    const auto file = (kOracle / arch / "logits.safetensors").string();
    auto r = reference({"--model", (kOracle / arch).string(), "--inputs", file, "--expect", file, "--tolerance", "1e-4"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
}

using Models = testing::HfLoader;

// A batch the fixtures do not have: 3 rows of 13 with 0, 4 and 9 left pads.
std::pair<torch::Tensor, torch::Tensor> random_batch() {
  torch::manual_seed(2024);
  auto ids = torch::randint(3, 300, {3, 13});
  auto mask = torch::ones({3, 13}, torch::kInt64);
  mask[1].slice(0, 0, 4).zero_();
  mask[2].slice(0, 0, 9).zero_();
  ids.masked_fill_(mask == 0, 0);
  return {ids, mask};
}

// Writes the batch and alignkit's logits, then asks the reference to compare.
testing::CommandResult compare(const TempDir& dir, CausalLM& model, const fs::path& model_dir, double tolerance,
                               const std::string& dtype, const fs::path& adapter = {},
                               const std::string& quantize = {}) {
  const auto [ids, mask] = random_batch();
  // The reference uses positions 0..T-1 for every row, as transformers does without position_ids.
  torch::NoGradGuard no_grad;
  const auto logits = model.forward(ids, mask, {}).to(torch::kFloat32);
  safetensors::save(dir.path() / "inputs.safetensors", {{"input_ids", ids}, {"attention_mask", mask}});
  safetensors::save(dir.path() / "expected.safetensors", {{"logits", logits}});
  std::vector<std::string> args = {"--model", model_dir.string(), "--inputs", (dir.path() / "inputs.safetensors").string(),
                                    "--expect", (dir.path() / "expected.safetensors").string(), "--tolerance",
                                    std::to_string(tolerance), "--dtype", dtype};
  if (!adapter.empty()) args.insert(args.end(), {"--adapter", adapter.string()});
  if (!quantize.empty()) args.insert(args.end(), {"--quantize", quantize});
  return reference(args);
}

TEST(PythonReference, NewShapesWithLeftPaddingMatch) {
  Models m;
  for (const char* arch : kArchitectures) {
    TempDir dir;
    auto model = m.loader->load(kOracle / arch, LoadOptions{});
    auto r = compare(dir, *model, kOracle / arch, kFp32Tolerance, "float32");
    EXPECT_EQ(r.exit_code, 0) << arch << ": " << r.output;
  }
}

TEST(PythonReference, LoraForwardMatchesPeftSemantics) {
  Models m;
  for (const char* arch : {"llama", "qwen2", "qwen3"}) {
    TempDir dir;
    auto model = m.loader->load(kOracle / arch, LoadOptions{});
    LoraConfig config;
    config.r = 4;
    config.alpha = 16;
    config.use_rslora = std::string(arch) == "qwen3";  // both scalings
    config.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
    apply_lora(*model, config);
    testing::perturb_adapters(*model, 9);
    save_peft_adapter(*model, config, dir.path() / "adapter", arch);
    auto r = compare(dir, *model, kOracle / arch, kFp32Tolerance, "float32", dir.path() / "adapter");
    EXPECT_EQ(r.exit_code, 0) << arch << ": " << r.output;
  }
}

TEST(PythonReference, QuantizedBaseWithLoraMatchesAnIndependentQuantizer) {
  // QLoRA: NF4 (or int8) projections dequantized on the fly, fp32 adapters on top. The reference
  // quantizes with its own code (nearest code value by argmin rather than our bucketize over
  // midpoints), so equal logits mean equal codes; the compute is fp32 on the same dequantized
  // weights, hence the fp32 bound.
  Models m;
  for (const auto& [arch, kind, name] : {std::tuple{"llama", BaseQuantization::nf4, "nf4"},
                                         std::tuple{"qwen3", BaseQuantization::nf4, "nf4"},
                                         std::tuple{"qwen2", BaseQuantization::int8, "int8"}}) {
    TempDir dir;
    auto model = m.loader->load(kOracle / arch, LoadOptions{torch::kCPU, torch::kFloat32, kind});
    LoraConfig config;
    config.r = 4;
    config.alpha = 8;
    config.target_modules = {"q_proj", "v_proj", "up_proj"};
    apply_lora(*model, config);
    testing::perturb_adapters(*model, 10);
    save_peft_adapter(*model, config, dir.path() / "adapter", arch);
    auto r = compare(dir, *model, kOracle / arch, kFp32Tolerance, "float32", dir.path() / "adapter", name);
    EXPECT_EQ(r.exit_code, 0) << arch << " " << name << ": " << r.output;
  }
}

TEST(PythonReference, Bf16LogitsMatchTheBf16Reference) {
  // bf16 keeps 8 bits of mantissa (relative step 2^-8 ~ 0.4%); both sides round at the same
  // points (weights, RMSNorm output, attention probabilities, each projection), so they agree far
  // more closely than either agrees with fp32. The bound is one bf16 step at the largest logit
  // magnitude (about 4 here: 4 * 2^-8), rounded up to 0.02, so a BLAS that sums in another order
  // may flip a last bit; on this machine the two agree exactly.
  Models m;
  for (const char* arch : kArchitectures) {
    TempDir dir;
    auto model = m.loader->load(kOracle / arch, LoadOptions{torch::kCPU, torch::kBFloat16});
    auto r = compare(dir, *model, kOracle / arch, 0.02, "bfloat16");
    EXPECT_EQ(r.exit_code, 0) << arch << ": " << r.output;
  }
}

}  // namespace
}  // namespace alignkit
