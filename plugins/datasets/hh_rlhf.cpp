// hh_rlhf: Anthropic's HH-RLHF format, whole dialogues with an implicit prompt.
//
// Each line is {"chosen": D1, "rejected": D2}, two dialogues "\n\nHuman: ...\n\nAssistant: ..."
// that share their beginning. The prompt is the longest common prefix of the two, cut after its
// last "\n\nAssistant:"; the completions are what follows (usually starting with a space).
#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/dataset.hpp>
#include <alignkit/json_file.hpp>
#include <alignkit/jsonl_reader.hpp>
#include <alignkit/recipe_section.hpp>

namespace {

const alignkit::OptionSpec kOptions[] = {
    {.key = "path", .type = alignkit::OptionType::path,
     .doc = "The JSONL file (.jsonl or .jsonl.gz) of chosen/rejected dialogues.", .required = true},
};

constexpr std::string_view kAssistant = "\n\nAssistant:";

class HhRlhfDataset final : public alignkit::Dataset {
 public:
  explicit HhRlhfDataset(const alignkit::RecipeSection& options) : path_(options.get_path("path")) {}

  alignkit::ExampleLayout layout() const override { return alignkit::ExampleLayout::paired; }

  void read(alignkit::ExampleSink& sink) override {
    alignkit::JsonlReader reader(path_);
    std::string line;
    while (reader.next(line)) {
      const alignkit::SourceLocation where{path_.string(), reader.line_number(), 0};
      auto reject = [&](std::string message) {
        sink.reject(alignkit::Diagnostic{alignkit::Severity::error, where, std::move(message)});
      };
      nlohmann::json record;
      try {
        record = alignkit::parse_json(line, {path_.string(), reader.line_number()});
      } catch (const alignkit::DiagnosticError& e) {  // not JSON, or nested too deep: located at its column
        sink.reject(e.diagnostics().front());
        continue;
      }
      if (!record.is_object() || !record.contains("chosen") || !record.at("chosen").is_string() ||
          !record.contains("rejected") || !record.at("rejected").is_string()) {
        reject("expected {\"chosen\": text, \"rejected\": text}");
        continue;
      }
      const auto chosen = record.at("chosen").get<std::string>();
      const auto rejected = record.at("rejected").get<std::string>();
      const auto common = static_cast<std::size_t>(
          std::mismatch(chosen.begin(), chosen.end(), rejected.begin(), rejected.end()).first - chosen.begin());
      const auto turn = std::string_view(chosen).substr(0, common).rfind(kAssistant);
      if (turn == std::string_view::npos) {
        reject("the two dialogues share no \"\\n\\nAssistant:\" turn, so there is no implicit prompt");
        continue;
      }
      const auto cut = turn + kAssistant.size();
      if (cut == chosen.size() || cut == rejected.size()) {
        reject("one of the dialogues has an empty final assistant turn");
        continue;
      }
      alignkit::Example example;
      example.where = where;
      example.prompt = {alignkit::Segment::Form::text, chosen.substr(0, cut), {}, {}};
      example.chosen = {alignkit::Segment::Form::text, chosen.substr(cut), {}, {}};
      example.rejected = {alignkit::Segment::Form::text, rejected.substr(cut), {}, {}};
      sink.add(std::move(example));
    }
  }

 private:
  std::filesystem::path path_;
};

std::unique_ptr<HhRlhfDataset> make(const alignkit::RecipeSection& options) {
  return std::make_unique<HhRlhfDataset>(options);
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::dataset, "hh_rlhf", "1.0.0",
                                            "Anthropic HH-RLHF dialogues with the implicit prompt (their common "
                                            "prefix up to the last assistant turn)",
                                            kOptions))
