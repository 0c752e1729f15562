// jsonl: preference, unpaired and SFT data as JSON Lines (plain or gzip), in TRL's field names.
//
//   kind = "paired"    {"prompt": P, "chosen": C, "rejected": R}
//   kind = "unpaired"  {"prompt": P, "completion": C, "label": true|false}      (KTO)
//   kind = "sft"       {"prompt": P, "completion": C}, {"messages": [...]} or {"text": T}
//
// Each of P, C, R is a string, or a list of {"role", "content"} messages (conversational: the host
// renders it with the tokenizer's chat template), and token ids may be given instead of text as
// prompt_ids / chosen_ids / rejected_ids / completion_ids. For "messages", the last message is
// the completion and must be the assistant's.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/dataset.hpp>
#include <alignkit/json_file.hpp>
#include <alignkit/jsonl_reader.hpp>
#include <alignkit/recipe_section.hpp>

namespace {

using alignkit::Diagnostic;
using alignkit::Segment;

const alignkit::OptionSpec kOptions[] = {
    {.key = "path", .type = alignkit::OptionType::path, .doc = "The JSONL file (.jsonl or .jsonl.gz).",
     .required = true},
    {.key = "kind", .type = alignkit::OptionType::string, .default_value = "\"paired\"",
     .doc = "What each record holds: `paired` (prompt, chosen, rejected), `unpaired` (prompt, "
            "completion, label) or `sft` (prompt and completion, messages, or text).",
     .choices = "paired|unpaired|sft"},
};

// Thrown for one record; the reader turns it into a rejected record with its line.
struct BadRecord {
  std::string message;
};

Segment segment(const nlohmann::json& record, const std::string& key, bool required = true) {
  Segment s;
  const std::string ids_key = key + "_ids";
  if (record.contains(ids_key)) {
    const auto& ids = record.at(ids_key);
    if (!ids.is_array()) throw BadRecord{fmt::format("'{}' must be a list of token ids", ids_key)};
    for (const auto& id : ids) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 0)
        throw BadRecord{fmt::format("'{}' holds {}, not a token id", ids_key, id.dump())};
      s.token_ids.push_back(id.get<std::int64_t>());
    }
    s.form = Segment::Form::token_ids;
    return s;
  }
  if (!record.contains(key)) {
    if (required) throw BadRecord{fmt::format("'{}' is missing", key)};
    return s;
  }
  const auto& value = record.at(key);
  if (value.is_string()) {
    s.form = Segment::Form::text;
    s.text = value.get<std::string>();
    return s;
  }
  if (value.is_array()) {
    s.form = Segment::Form::messages;
    for (const auto& m : value) {
      if (!m.is_object() || !m.contains("role") || !m.at("role").is_string() || !m.contains("content") ||
          !m.at("content").is_string())
        throw BadRecord{fmt::format("'{}' must be a list of {{\"role\": ..., \"content\": ...}} messages with string "
                                    "values",
                                    key)};
      s.messages.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
    }
    return s;
  }
  throw BadRecord{fmt::format("'{}' must be text or a list of messages, not {}", key, value.type_name())};
}

class JsonlDataset final : public alignkit::Dataset {
 public:
  explicit JsonlDataset(const alignkit::RecipeSection& options)
      : path_(options.get_path("path")), kind_(options.get_string("kind")) {}

  alignkit::ExampleLayout layout() const override {
    if (kind_ == "unpaired") return alignkit::ExampleLayout::unpaired;
    if (kind_ == "sft") return alignkit::ExampleLayout::single;
    return alignkit::ExampleLayout::paired;
  }

  void read(alignkit::ExampleSink& sink) override {
    alignkit::JsonlReader reader(path_);
    std::string line;
    while (reader.next(line)) {
      const alignkit::SourceLocation where{path_.string(), reader.line_number(), 0};
      try {
        const auto record = alignkit::parse_json(line, {path_.string(), reader.line_number()});
        if (!record.is_object()) throw BadRecord{"not a JSON object"};
        alignkit::Example example;
        example.where = where;
        if (kind_ == "paired") {
          example.prompt = segment(record, "prompt");
          example.chosen = segment(record, "chosen");
          example.rejected = segment(record, "rejected");
        } else if (kind_ == "unpaired") {
          example.prompt = segment(record, "prompt");
          example.completion = segment(record, "completion");
          if (!record.contains("label") || !record.at("label").is_boolean())
            throw BadRecord{"'label' must be true (desirable) or false (undesirable)"};
          example.desirable = record.at("label").get<bool>();
        } else if (record.contains("messages")) {
          auto all = segment(record, "messages");
          if (all.form != Segment::Form::messages || all.messages.empty() || all.messages.back().role != "assistant")
            throw BadRecord{"'messages' must end with an assistant message, the completion"};
          example.completion.form = Segment::Form::messages;
          example.completion.messages = {all.messages.back()};
          all.messages.pop_back();
          example.prompt = std::move(all);
        } else if (record.contains("text")) {
          example.completion = segment(record, "text");
        } else {
          example.prompt = segment(record, "prompt", false);
          example.completion = segment(record, "completion");
        }
        sink.add(std::move(example));
      } catch (const BadRecord& bad) {
        sink.reject(Diagnostic{alignkit::Severity::error, where, bad.message});
      } catch (const alignkit::DiagnosticError& e) {  // not JSON, or nested too deep: located at its column
        sink.reject(e.diagnostics().front());
      }
    }
  }

 private:
  std::filesystem::path path_;
  std::string kind_;
};

std::unique_ptr<JsonlDataset> make(const alignkit::RecipeSection& options) {
  return std::make_unique<JsonlDataset>(options);
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::dataset, "jsonl", "1.0.0",
                                            "Preference, unpaired (KTO) and SFT records as JSON Lines, text or "
                                            "conversational, plain or gzip",
                                            kOptions))
