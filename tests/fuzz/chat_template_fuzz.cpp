// libFuzzer target for chat templates: the input is a Jinja template, then (optionally) a NUL byte
// and a messages file (JSON). Parsing and rendering either produce text or are refused with a
// DiagnosticError (syntax, runtime error, nesting or budget), never a crash or another exception.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <alignkit/chat_template.hpp>
#include <alignkit/diagnostic.hpp>
#include <alignkit/json_file.hpp>

namespace {

const nlohmann::ordered_json& default_messages() {
  static const auto messages = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi <b>there</b>"},
    {"role": "assistant", "content": "Hello.", "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}}]},
    {"role": "user", "content": [{"type": "text", "text": "again"}]}])");
  return messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find('\0');
  try {
    nlohmann::ordered_json context = nlohmann::ordered_json::object();
    context["messages"] = default_messages();
    if (cut != std::string_view::npos) {
      auto given = alignkit::parse_ordered_json(input.substr(cut + 1), {"fuzz/messages.json"});
      if (given.is_object()) context = std::move(given);
      else context["messages"] = std::move(given);
    }
    context["add_generation_prompt"] = true;
    context["bos_token"] = "<s>";
    context["eos_token"] = "</s>";
    const alignkit::ChatTemplate chat_template(std::string(input.substr(0, cut)), "fuzz/chat_template");
    (void)chat_template.render_ordered(context);
  } catch (const alignkit::DiagnosticError&) {
  }
  return 0;
}
