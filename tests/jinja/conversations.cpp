#include "conversations.hpp"

#include <random>
#include <string>

namespace alignkit::jinja_test {

namespace {

const std::vector<std::string> kTexts = {
    "Hello!",
    "What is the capital of France?",
    "  leading and trailing spaces  ",
    "\n\nnewlines around\n\n",
    "Tabs\tand\ttabs",
    "Quotes: \"double\" and 'single' and `back`",
    "A backslash \\ and an escaped newline \\n and C:\\path\\to\\file",
    "Emoji 👋🏽 and a family 👨‍👩‍👧 and flags 🇫🇷",
    "中文：你好，世界！这是一个测试。",
    "日本語のテキスト、カタカナとひらがな。",
    "العربية نص من اليمين إلى اليسار",
    "Ünïcödé àccents, ß and İ and ﬁ ligature",
    "Ideographic\u3000space and no-break\u00a0space",
    "Looks like a template: {{ messages }} {% if x %} {# c #}",
    "JSON-ish: {\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "<tool_response>not really</tool_response>",
    "Multi\nline\ncontent\n  with indentation\n",
    "",
    " ",
    "Numbers 3.14159 and 1e10 and -0",
    "Mixed: Γειά σου Κόσμε ΣΟΦΟΣ",
    "Zero\u200bwidth\u200djoiner and \u2028 line separator",
};

const std::vector<std::string> kSystems = {
    "You are a helpful assistant.",
    "You are a pirate. Answer in pirate speak 🏴‍☠️.",
    "  System prompt with spaces and\nnewlines\n",
    "系统提示：请用中文回答。",
    "Be concise. Use \"quotes\" and \\backslashes\\ freely.",
};

const std::vector<std::string> kThoughts = {
    "Let me think about this step by step.",
    "\nThe user greets me; I should reply politely.\n",
    "思考中……",
};

nlohmann::ordered_json tool_call(std::mt19937& rng, int i) {
  nlohmann::ordered_json arguments = {{"location", i % 2 ? "Paris, France" : "東京"}, {"unit", i % 3 ? "celsius" : "fahrenheit"}};
  nlohmann::ordered_json function = {{"name", i % 2 ? "get_current_weather" : "get_time"}};
  // Arguments come both as objects and as JSON text, which templates print differently.
  if (rng() % 3 == 0) function["arguments"] = arguments.dump();
  else function["arguments"] = arguments;
  if (rng() % 4 == 0) return function;  // a bare call, without the {"type", "function"} wrapper
  return {{"type", "function"}, {"function", function}};
}

}  // namespace

nlohmann::ordered_json sample_tools() {
  return nlohmann::ordered_json::parse(R"([
    {"type": "function", "function": {"name": "get_current_weather",
      "description": "Get the current weather in a given location — with “curly quotes”",
      "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 14, "default": 1},
        "threshold": {"type": "number", "default": 0.5}},
        "required": ["location"]}}},
    {"type": "function", "function": {"name": "get_time", "description": "Current time; no arguments",
      "parameters": {"type": "object", "properties": {}}}}
  ])");
}

std::vector<nlohmann::ordered_json> make_conversations(const ConversationShape& shape, int count, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const auto pick = [&](const std::vector<std::string>& pool) { return pool[rng() % pool.size()]; };
  std::vector<nlohmann::ordered_json> contexts;
  for (int n = 0; n < count; ++n) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    // Cycle the deciding choices through n so every combination appears.
    const bool with_system = shape.system && n % 2 == 0;
    const bool generation_prompt = (n / 2) % 2 == 0;
    const int exchanges = 1 + (n / 4) % 4;
    if (with_system) messages.push_back({{"role", "system"}, {"content", pick(kSystems)}});
    for (int e = 0; e < exchanges; ++e) {
      messages.push_back({{"role", "user"}, {"content", pick(kTexts)}});
      const bool last = e + 1 == exchanges;
      // End on a user turn when a generation prompt follows, else on an assistant turn.
      if (last && generation_prompt) break;
      nlohmann::ordered_json reply = {{"role", "assistant"}, {"content", pick(kTexts)}};
      if (shape.reasoning) {
        switch (rng() % 3) {
          case 0: reply["reasoning_content"] = pick(kThoughts); break;
          case 1: reply["content"] = "<think>" + pick(kThoughts) + "</think>\n\n" + reply["content"].get<std::string>(); break;
          default: break;
        }
      }
      if (shape.tools && rng() % 2 == 0) {
        nlohmann::ordered_json call = reply;
        call["content"] = rng() % 2 ? "" : "Let me check.";
        const int calls = 1 + static_cast<int>(rng() % 2);
        call["tool_calls"] = nlohmann::ordered_json::array();
        for (int c = 0; c < calls; ++c) call["tool_calls"].push_back(tool_call(rng, c + e));
        messages.push_back(call);
        for (int c = 0; c < calls; ++c)
          messages.push_back({{"role", "tool"}, {"content", c % 2 ? "{\"temperature\": 22, \"unit\": \"celsius\"}" : pick(kTexts)}});
      }
      messages.push_back(reply);
    }
    nlohmann::ordered_json context = {{"messages", messages}, {"add_generation_prompt", generation_prompt}};
    if (shape.tools && n % 3 != 2) context["tools"] = sample_tools();
    if (shape.reasoning && n % 5 == 1) context["enable_thinking"] = false;
    if (shape.reasoning && n % 5 == 3) context["enable_thinking"] = true;
    contexts.push_back(std::move(context));
  }
  return contexts;
}

}  // namespace alignkit::jinja_test
