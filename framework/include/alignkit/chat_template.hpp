// Hugging Face chat templates: the Jinja `chat_template` of a tokenizer_config.json, rendered by
// an interpreter of our own that produces exactly what @huggingface/jinja (transformers.js)
// produces. docs/chat-templates.md lists what is supported and where it differs from Python Jinja2.
//
//   alignkit::ChatTemplate chat(config["chat_template"], "tokenizer_config.json: chat_template");
//   std::string text = chat.render({{"messages", messages}, {"add_generation_prompt", true},
//                                   {"bos_token", "<s>"}, {"eos_token", "</s>"}});
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>

namespace alignkit {

// A Hugging Face chat template (Jinja) parsed once, rendered many times.
class ChatTemplate {
 public:
  // source: the Jinja text; origin: where it came from, for messages (e.g. "/x/tokenizer_config.json: chat_template").
  // Throws alignkit::DiagnosticError (alignkit/diagnostic.hpp) on a syntax error, with origin:line:col, the source line and what was expected.
  ChatTemplate(std::string source, std::string origin);
  ~ChatTemplate();
  ChatTemplate(ChatTemplate&&) noexcept;
  ChatTemplate& operator=(ChatTemplate&&) noexcept;

  // context: the template's variables, e.g. {"messages": [...], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>", "tools": [...]} .
  // Throws DiagnosticError for raise_exception(...) (message = the template's text) and for runtime errors (origin:line:col).
  //
  // nlohmann::json keeps object keys sorted, so `| tojson` of a dict (a tool's JSON schema) comes
  // out with sorted keys; Hugging Face writes them in the order of the file. Parse the messages
  // and tools as nlohmann::ordered_json and use render_ordered to keep that order.
  std::string render(const nlohmann::json& context) const;
  // The same, keeping every object's key order as given (JavaScript's order: keys that are array
  // indexes such as "0" first, then the rest in insertion order).
  std::string render_ordered(const nlohmann::ordered_json& context) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace alignkit
