// Conversations to render chat templates with: generated from a fixed seed so every run compares
// the same inputs, and mixing what trips renderers up (non-ASCII text, quotes, backslashes,
// newlines, leading and trailing whitespace, text that looks like template syntax).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace alignkit::jinja_test {

struct ConversationShape {
  bool tools = false;      // a tools list, assistant tool_calls and tool messages (Qwen3-style)
  bool reasoning = false;  // reasoning_content and <think> blocks in assistant turns
  bool system = true;      // whether a system message may come first
};

// `count` template contexts: {"messages": [...], "add_generation_prompt": ..., and sometimes
// "tools" / "enable_thinking"}. User and assistant turns alternate; system prompts, turn counts
// (1 to 4 exchanges) and add_generation_prompt vary with the seed.
std::vector<nlohmann::ordered_json> make_conversations(const ConversationShape& shape, int count, std::uint32_t seed);

// A tools list of JSON-schema functions, as transformers passes them to apply_chat_template.
nlohmann::ordered_json sample_tools();

}  // namespace alignkit::jinja_test
