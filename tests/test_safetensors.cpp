// safetensors: round trips, files written by Hugging Face's own library, and hostile files that
// must be refused with a precise message.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include <alignkit/safetensors.hpp>

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::TempDir;
namespace st = safetensors;

const std::filesystem::path kOracle = testing::source_dir() / "tests/fixtures/oracle";

// A file image from a header (as JSON text) and a data section.
std::string image(const std::string& header, std::size_t data_bytes, char fill = 0) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + std::string(data_bytes, fill);
}

std::string refusal(const std::string& bytes) {
  try {
    st::parse_header(std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()),
                     "x.safetensors");
  } catch (const DiagnosticError& e) {
    return e.diagnostics().at(0).message;
  }
  return "(accepted)";
}

TEST(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f64", torch::randn({2}, torch::kFloat64)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"f16", torch::randn({2, 2}).to(torch::kFloat16)},
      {"i64", torch::arange(6).reshape({2, 3})},
      {"i32", torch::arange(3, torch::kInt32)},
      {"u8", torch::tensor({1, 2, 255}, torch::kUInt8)},
      {"bool", torch::tensor({true, false})},
      {"empty", torch::zeros({0, 7})},
      {"strided", torch::randn({4, 3}).t()},  // non-contiguous input is written contiguous
  };
  st::save(path, tensors, {{"format", "pt"}});
  const auto file = st::File::open(path);
  EXPECT_EQ(file.header().metadata.at("format"), "pt");
  EXPECT_EQ(file.header().tensors.size(), tensors.size());
  EXPECT_EQ(file.header().data_offset % 8, 0u);  // data aligned as the reference writer does
  for (const auto& [name, expected] : tensors) {
    const auto got = file.tensor(name);
    EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
    EXPECT_EQ(got.sizes(), expected.sizes()) << name;
    EXPECT_TRUE(torch::equal(got, expected)) << name;
  }
}

TEST(Safetensors, TensorsViewTheMappingAndOutliveTheFileObject) {
  TempDir dir;
  const auto path = dir.path() / "t.safetensors";
  st::save(path, {{"w", torch::full({1000}, 2.5)}});
  torch::Tensor w;
  {
    const auto file = st::File::open(path);
    w = file.tensor("w");
  }
  EXPECT_EQ(w.sum().item<double>(), 2500.0);
  w.mul_(2);  // private mapping: allowed, and the file stays as written
  EXPECT_EQ(st::File::open(path).tensor("w").sum().item<double>(), 2500.0);
}

TEST(Safetensors, ReadsFilesWrittenByHuggingFace) {
  // tests/fixtures/oracle/llama was saved by transformers' save_pretrained (safetensors library).
  const auto model = st::File::open(kOracle / "llama/model.safetensors");
  const auto embed = model.tensor("model.embed_tokens.weight");
  EXPECT_EQ(embed.sizes(), (std::vector<std::int64_t>{300, 64}));
  EXPECT_EQ(embed.scalar_type(), torch::kFloat32);
  ASSERT_NE(model.find("lm_head.weight"), nullptr);
  EXPECT_EQ(st::File::open(kOracle / "llama_tied/model.safetensors").find("lm_head.weight"), nullptr);
  // The fixture's inputs are documented: row 1 is left-padded with 5 pad ids, then bos (1).
  const auto logits = st::File::open(kOracle / "llama/logits.safetensors");
  const auto ids = logits.tensor("input_ids");
  const auto mask = logits.tensor("attention_mask");
  EXPECT_EQ(ids.sizes(), (std::vector<std::int64_t>{2, 17}));
  EXPECT_EQ(ids[0][0].item<std::int64_t>(), 1);
  EXPECT_EQ(ids[1].slice(0, 0, 5).sum().item<std::int64_t>(), 0);
  EXPECT_EQ(ids[1][5].item<std::int64_t>(), 1);
  EXPECT_EQ(mask[1].slice(0, 0, 5).sum().item<std::int64_t>(), 0);
  EXPECT_EQ(mask[1].slice(0, 5).sum().item<std::int64_t>(), 12);
}

TEST(Safetensors, HostileHeadersAreRefusedPrecisely) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  EXPECT_EQ(refusal(image(ok, 8)), "(accepted)");
  EXPECT_EQ(refusal("abc"), "not a valid safetensors file: the file is 3 bytes, shorter than the 8-byte header length");
  std::string huge(8, '\xff');
  EXPECT_NE(refusal(huge + "{}").find("exceeds the limit"), std::string::npos);
  std::string past = image(ok, 8);
  past[0] = static_cast<char>(200);  // header length beyond the file
  EXPECT_NE(refusal(past).find("header length 200 runs past the end"), std::string::npos);
  EXPECT_NE(refusal(image("{nope", 0)).find("the header is not JSON"), std::string::npos);
  EXPECT_NE(refusal(image("[1,2]", 0)).find("not a JSON object"), std::string::npos);
  EXPECT_EQ(refusal(image(R"({"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", 16)),
            "not a valid safetensors file: tensor 'a': unknown dtype 'F128'");
  EXPECT_EQ(refusal(image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8)),
            "not a valid safetensors file: tensor 'a': 8 bytes at data_offsets [0, 8], but shape [3] of F32 needs 12");
  EXPECT_NE(refusal(image(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)).find("non-negative"),
            std::string::npos);
  EXPECT_NE(refusal(image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", 8))
                .find("shape overflows"),
            std::string::npos);
  EXPECT_NE(refusal(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)).find("end before they begin"),
            std::string::npos);
  EXPECT_NE(refusal(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4)).find("run past the 4-byte data section"),
            std::string::npos);
  EXPECT_EQ(refusal(image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}})", 6)),
            "not a valid safetensors file: tensor 'b' at [2, 6] overlaps the tensor before it, which ends at 4");
  EXPECT_EQ(refusal(image(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})", 4)),
            "not a valid safetensors file: 2 bytes of the data section before tensor 'a' belong to no tensor");
  EXPECT_EQ(refusal(image(ok, 12)), "not a valid safetensors file: the data section is 12 bytes but its tensors cover 8");
  EXPECT_NE(refusal(image(R"({"a":{"dtype":"F32","shape":[2]}})", 8)).find("needs dtype, shape and data_offsets"),
            std::string::npos);
  EXPECT_NE(refusal(image(R"({"__metadata__":{"k":1}})", 0)).find("is not a string"), std::string::npos);
}

TEST(Safetensors, TruncatedAndMissingFilesNameThePath) {
  TempDir dir;
  const auto path = dir.path() / "m.safetensors";
  st::save(path, {{"w", torch::ones({64})}});
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 10);
  try {
    st::File::open(path);
    FAIL();
  } catch (const DiagnosticError& e) {
    EXPECT_EQ(e.diagnostics().at(0).where.file, path.string());
    EXPECT_NE(e.diagnostics().at(0).message.find("run past"), std::string::npos) << e.format();
  }
  EXPECT_THROW(st::File::open(dir.path() / "absent.safetensors"), DiagnosticError);
  EXPECT_THROW(st::File::open(dir.path()), DiagnosticError);
  const auto file = st::File::open(kOracle / "llama/model.safetensors");
  EXPECT_THROW(file.tensor("no.such.tensor"), DiagnosticError);
}

TEST(Safetensors, SeedCorpusBehavesAsNamed) {
  // The fuzzer's seed files: valid_* parse, the others are refused.
  for (const auto& entry : std::filesystem::directory_iterator(testing::source_dir() / "tests/fuzz/corpus/safetensors")) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const bool valid = entry.path().filename().string().rfind("valid", 0) == 0;
    EXPECT_EQ(refusal(bytes) == "(accepted)", valid) << entry.path() << ": " << refusal(bytes);
  }
}

}  // namespace
}  // namespace alignkit
