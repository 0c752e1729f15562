// Hostile files and values a user can be handed (a downloaded model folder, a dataset, a command
// line): each gets a located error and its exit code, never a signal or a LibTorch backtrace
// (docs/robustness.md). Each test is one probe of issue 20.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include <alignkit/error_text.hpp>
#include <alignkit/json_file.hpp>

#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::run_alignkit;
using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kLlama = testing::source_dir() / "tests/fixtures/oracle/llama";

std::string repeat(const std::string& text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  return out;
}

// `depth` arrays, one inside the other.
std::string nested_arrays(int depth) { return std::string(static_cast<std::size_t>(depth), '[') + std::string(static_cast<std::size_t>(depth), ']'); }

// A tokenizer folder (init-model's byte-level one, with a chat template) under dir/name.
fs::path tokenizer_dir(const TempDir& dir, const std::string& name = "tok") {
  const auto out = dir.path() / name;
  const auto r = run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return out;
}

// `component` of tokenizer.json replaced by a Sequence of Sequences `depth` deep around `leaf`,
// written as text (a JSON library would recurse building it).
void nest_component(const fs::path& dir, const std::string& component, const std::string& steps_key, int depth,
                    const std::string& leaf) {
  std::ifstream in(dir / "tokenizer.json");
  auto json = nlohmann::json::parse(in);
  json[component] = "@NESTED@";
  std::string text = json.dump();
  std::string nested;
  for (int i = 0; i < depth; ++i) nested += "{\"type\":\"Sequence\",\"" + steps_key + "\":[";
  nested += leaf;
  for (int i = 0; i < depth; ++i) nested += "]}";
  text.replace(text.find("\"@NESTED@\""), 10, nested);
  std::ofstream(dir / "tokenizer.json") << text;
}

void expect_refused(const testing::CommandResult& r, int code, const std::vector<std::string>& parts) {
  EXPECT_EQ(r.exit_code, code) << r.output;
  for (const auto& part : parts) EXPECT_NE(r.output.find(part), std::string::npos) << "missing '" << part << "' in:\n" << r.output;
  EXPECT_EQ(r.output.find("frame #"), std::string::npos) << r.output;  // no LibTorch backtrace
}

struct Component {
  const char* name;
  const char* steps_key;
  const char* leaf;
};
const Component kComponents[] = {{"normalizer", "normalizers", "{\"type\":\"Lowercase\"}"},
                                 {"pre_tokenizer", "pretokenizers", "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}"},
                                 {"decoder", "decoders", "{\"type\":\"ByteLevel\"}"},
                                 {"post_processor", "processors", "{\"type\":\"ByteLevel\"}"}};

TEST(Robustness, TokenizerSequencesNested20000DeepAreRefusedAsDeepJson) {
  TempDir dir;
  for (const auto& c : kComponents) {
    const auto tok = tokenizer_dir(dir, c.name);
    nest_component(tok, c.name, c.steps_key, 20000, c.leaf);
    const auto r = run_alignkit({"tokenize", "--tokenizer", tok.string(), "--text", "hi"});
    expect_refused(r, 1, {(tok / "tokenizer.json").string() + ":1:", "error: JSON nested more than 1000 levels deep",
                          "help: alignkit refuses deeper arrays and objects"});
  }
}

TEST(Robustness, TokenizerSequencesPastTheirLimitNameThePath) {
  TempDir dir;
  for (const auto& c : kComponents) {
    const auto tok = tokenizer_dir(dir, c.name);
    nest_component(tok, c.name, c.steps_key, 101, c.leaf);  // 202 JSON levels: within JSON's limit
    const auto r = run_alignkit({"tokenize", "--tokenizer", tok.string(), "--text", "hi"});
    std::string path = c.name;
    for (int i = 0; i < 100; ++i) path += std::string(".") + c.steps_key + "[0]";
    expect_refused(r, 1, {(tok / "tokenizer.json").string() + ": error: `" + path + "`: Sequence nested more than 100 levels deep"});
    // 100 deep is allowed, and still encodes.
    const auto ok = tokenizer_dir(dir, std::string(c.name) + "-100");
    nest_component(ok, c.name, c.steps_key, 100, c.leaf);
    const auto fine = run_alignkit({"tokenize", "--tokenizer", ok.string(), "--text", "hi"});
    EXPECT_EQ(fine.exit_code, 0) << c.name << ": " << fine.output;
  }
}

TEST(Robustness, DeepTokenizerConfigIsRefused) {
  TempDir dir;
  const auto tok = tokenizer_dir(dir);
  std::ofstream(tok / "tokenizer_config.json") << "{\"x\": " << nested_arrays(5000) << "}";
  expect_refused(run_alignkit({"tokenize", "--tokenizer", tok.string(), "--text", "hi"}), 1,
                 {(tok / "tokenizer_config.json").string() + ":1:1006: error: JSON nested more than 1000 levels deep"});
}

TEST(Robustness, ChatFormatRefusesAMessagesFileNested100000Deep) {
  TempDir dir;
  const auto tok = tokenizer_dir(dir);
  const auto messages = dir.write("deep.json", nested_arrays(100000));
  expect_refused(run_alignkit({"chat-format", "--tokenizer", tok.string(), "--messages", messages.string()}), 1,
                 {messages.string() + ":1:1001: error: JSON nested more than 1000 levels deep"});
  // A syntax error is located at its line and column, with the line shown.
  const auto broken = dir.write("broken.json", "[\n  {\"role\": \"user\", \"content\": tru}\n]\n");
  expect_refused(run_alignkit({"chat-format", "--tokenizer", tok.string(), "--messages", broken.string()}), 1,
                 {broken.string() + ":2:34: error: not valid JSON: syntax error while parsing value",
                  " 2 |   {\"role\": \"user\", \"content\": tru}"});
}

TEST(Robustness, ChatTemplatesRefuseDeepNestingRunawayMacrosAndHugeRanges) {
  TempDir dir;
  const auto messages = dir.write("m.json", R"([{"role": "user", "content": "hi"}])");
  const struct {
    std::string source;
    std::string expected;
  } probes[] = {
      {repeat("{% if true %}", 300), "levels deep"},
      {"{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nested more than"},
      {"{% for i in range(100000000000) %}{{ i }}{% endfor %}", "a list of more than"},
      {"{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}", "nested more than"},
  };
  int n = 0;
  for (const auto& probe : probes) {
    const auto tok = tokenizer_dir(dir, "tok" + std::to_string(++n));
    std::ifstream in(tok / "tokenizer_config.json");
    auto config = nlohmann::json::parse(in);
    config["chat_template"] = probe.source;
    std::ofstream(tok / "tokenizer_config.json") << config.dump();
    expect_refused(run_alignkit({"chat-format", "--tokenizer", tok.string(), "--messages", messages.string()}), 1,
                   {"tokenizer_config.json: chat_template:1:", probe.expected});
  }
}

TEST(Robustness, DeepJsonlRowIsRefusedAtItsLine) {
  TempDir dir;
  const auto data = dir.write("deep.jsonl", "{\"prompt_ids\": [1], \"chosen_ids\": [2], \"rejected_ids\": [3]}\n"
                                            "{\"prompt_ids\": " + nested_arrays(2000) + "}\n");
  expect_refused(run_alignkit({"score", "--model", kLlama.string(), "--data", data.string(), "--out",
                               (dir.path() / "out.jsonl").string()}),
                 1, {data.string() + ":2:1015: error: JSON nested more than 1000 levels deep"});
}

TEST(Robustness, DeepConfigJsonIsRefused) {
  TempDir dir;
  const auto model = testing::copy_model(dir, "llama");
  std::ofstream(model / "config.json") << "{\"architectures\": [\"LlamaForCausalLM\"],\n \"x\": " << nested_arrays(100000) << "}";
  expect_refused(run_alignkit({"generate", "--model", model.string(), "--prompt-ids", "1,2"}), 1,
                 {(model / "config.json").string() + ":2:1006: error: JSON nested more than 1000 levels deep"});
}

TEST(Robustness, HiddenSize2To40IsRefusedBeforeAnyAllocation) {
  TempDir dir;
  const auto model = testing::copy_model(dir, "llama");
  testing::edit_config(model, [](nlohmann::json& c) {
    c["hidden_size"] = std::int64_t{1} << 40;
    c.erase("head_dim");
  });
  expect_refused(run_alignkit({"generate", "--model", model.string(), "--prompt-ids", "1,2"}), 1,
                 {(model / "config.json").string() + ": error: config.json's sizes", "hidden_size 1099511627776",
                  "more than the 1.13e+15 alignkit holds"});
  EXPECT_EQ(run_alignkit({"generate", "--model", model.string(), "--prompt-ids", "1,2"}).output.find("alloc_cpu"),
            std::string::npos);
}

TEST(Robustness, AModelBiggerThanTheMachineIsRefusedWithBothFigures) {
  TempDir dir;
  const auto model = testing::copy_model(dir, "llama");
  testing::edit_config(model, [](nlohmann::json& c) {  // 2^21 wide: 5.3e13 parameters, some 192 TiB in fp32
    c["hidden_size"] = std::int64_t{1} << 21;
    c["intermediate_size"] = std::int64_t{1} << 21;
    c["head_dim"] = std::int64_t{1} << 19;
  });
  expect_refused(run_alignkit({"generate", "--model", model.string(), "--prompt-ids", "1,2"}), 1,
                 {(model / "config.json").string() + ": error: building the model's 5.28e+13 float32 parameters needs",
                  "GiB, and this machine has", "GiB available (MemAvailable in /proc/meminfo)"});
}

TEST(Robustness, MaxNewTokensPastTheContextIsAUsageError) {
  const auto r = run_alignkit({"generate", "--model", kLlama.string(), "--prompt-ids", "1,2,3", "--max-new-tokens", "999999999999"});
  expect_refused(r, 2, {"error: --max-new-tokens 999999999999: the longest prompt (3 tokens) and the new tokens exceed "
                        "the model's context of 256 positions (max_position_embeddings in",
                        "at most 253 new tokens fit"});
  const auto ok = run_alignkit({"generate", "--model", kLlama.string(), "--prompt-ids", "1,2,3", "--max-new-tokens", "253"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST(Robustness, Llama3RopeWithFactorZeroIsRefusedAtItsKey) {
  TempDir dir;
  const auto model = testing::copy_model(dir, "llama3_rope");
  testing::edit_config(model, [](nlohmann::json& c) { c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 0}}; });
  expect_refused(run_alignkit({"generate", "--model", model.string(), "--prompt-ids", "1,2"}), 1,
                 {(model / "config.json").string() + ": error: config.json key 'rope_scaling.original_max_position_embeddings': is missing"});
  testing::edit_config(model, [](nlohmann::json& c) {
    c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 64}};
  });
  expect_refused(run_alignkit({"generate", "--model", model.string(), "--prompt-ids", "1,2"}), 1,
                 {"config.json key 'rope_scaling.factor': expected a number >= 1, found 0"});
}

TEST(Robustness, LibTorchErrorsLoseTheirBacktraceUnlessAsked) {
  try {
    TORCH_CHECK(false, "the shapes do not match");
  } catch (const c10::Error& e) {
    ASSERT_NE(std::string(e.what()).find("Exception raised from"), std::string::npos) << "LibTorch no longer appends frames";
    const auto text = error_text(e);
    EXPECT_NE(text.find("the shapes do not match"), std::string::npos) << text;
    EXPECT_EQ(text.find("Exception raised from"), std::string::npos) << text;
    ::setenv("ALIGNKIT_BACKTRACE", "1", 1);
    EXPECT_NE(error_text(e).find("Exception raised from"), std::string::npos);
    ::unsetenv("ALIGNKIT_BACKTRACE");
  }
  // The command guard prints the message alone.
  ::testing::internal::CaptureStderr();
  const int code = cli::guarded([]() -> int { TORCH_CHECK(false, "the shapes do not match"); });
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(code, 1);
  EXPECT_EQ(printed.rfind("error: the shapes do not match", 0), 0u) << printed;
  EXPECT_EQ(printed.find("Exception raised from"), std::string::npos) << printed;
}

TEST(Robustness, ParseJsonLocatesErrorsInRowsAndRefusesDepthPastTheLimit) {
  EXPECT_NO_THROW(parse_json(nested_arrays(kMaxJsonDepth), {"f.json"}));
  try {
    parse_json(nested_arrays(kMaxJsonDepth + 1), {"f.jsonl", 7});
    ADD_FAILURE() << "accepted";
  } catch (const DiagnosticError& e) {
    EXPECT_EQ(e.diagnostics().front().where.line, 7);
    EXPECT_EQ(e.diagnostics().front().where.column, kMaxJsonDepth + 1);
  }
  try {
    parse_json("[\"[[[\", 1,\n 2 x]", {"f.json"});  // brackets inside strings do not count
    ADD_FAILURE() << "accepted";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("f.json:2:4: error: not valid JSON"), std::string::npos) << e.format();
  }
}

TEST(Progress, InALogWholeLinesAtABoundedRateAndTheLast) {
  using namespace std::chrono_literals;
  std::ostringstream log;
  cli::ProgressLine progress(log, /*terminal=*/false, 10s);
  const auto t0 = cli::ProgressLine::Clock::now();
  progress.update("eval: 1/5 prompts", false, t0);
  progress.update("eval: 2/5 prompts", false, t0 + 3s);   // within 10 s of the last line: skipped
  progress.update("eval: 3/5 prompts", false, t0 + 11s);
  progress.update("eval: 4/5 prompts", false, t0 + 12s);  // skipped
  progress.update("eval: 5/5 prompts", true, t0 + 13s);   // the last: always
  EXPECT_EQ(log.str(), "eval: 1/5 prompts\neval: 3/5 prompts\neval: 5/5 prompts\n");

  std::ostringstream terminal;
  cli::ProgressLine live(terminal, /*terminal=*/true, 10s);
  live.update("eval: 1/2 prompts", false, t0);
  live.update("eval: 2/2 prompts", true, t0);
  EXPECT_EQ(terminal.str(), "\reval: 1/2 prompts\reval: 2/2 prompts\n");
}

TEST(Progress, EvalIntoALogWritesLinesWithoutCarriageReturns) {
  TempDir dir;
  ASSERT_EQ(run_alignkit({"init-model", "--preset", "tiny", "--out", (dir.path() / "m").string()}).exit_code, 0);
  const auto recipe = dir.write(
      "r.toml", "[model]\npath = \"m\"\n\n[judge]\nname = \"task_api\"\ncount = 6\nmax_new_tokens = 2\nbatch_size = 2\n");
  const auto r = run_alignkit({"eval", recipe.string()});  // stderr is a file here, not a terminal
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find('\r'), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("eval: 2/6 prompts\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("eval: 6/6 prompts\n"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace alignkit
