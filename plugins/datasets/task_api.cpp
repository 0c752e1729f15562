// task_api: the quickstart's generated preference task, the "Task API assistant" (see
// plugins/task_api/task_api.hpp). No files: `count` requests are drawn from `seed`, each with a
// chosen answer (a well-formed JSON task object, or a refusal of a request for someone's private
// data) and a rejected one (malformed or wrong JSON, prose, over-refusal, or compliance). The
// task_api judge scores generations on prompts this dataset never yields.
#include <fmt/format.h>

#include <alignkit/dataset.hpp>
#include <alignkit/recipe_section.hpp>

#include "task_api.hpp"

namespace {

const alignkit::OptionSpec kOptions[] = {
    {.key = "count", .type = alignkit::OptionType::integer, .default_value = "2000",
     .doc = "Requests to generate.", .min = 1, .max = 1e7},
    {.key = "seed", .type = alignkit::OptionType::integer, .default_value = "0",
     .doc = "Seed of the generator: the same seed gives the same examples.", .min = 0},
    {.key = "kind", .type = alignkit::OptionType::string, .default_value = "\"paired\"",
     .doc = "`paired` (prompt, chosen, rejected: DPO and the other preference methods; KTO reads the pairs as "
            "desirable and undesirable) or `sft` (prompt and chosen).",
     .choices = "paired|sft"},
    {.key = "conversational", .type = alignkit::OptionType::boolean, .default_value = "true",
     .doc = "Give prompt and answers as chat messages (rendered with the tokenizer's chat template); false: plain "
            "text, the prompt ending with a newline."},
};

class TaskApiDataset final : public alignkit::Dataset {
 public:
  explicit TaskApiDataset(const alignkit::RecipeSection& options)
      : count_(static_cast<std::uint64_t>(options.get_int("count"))),
        seed_(static_cast<std::uint64_t>(options.get_int("seed"))),
        sft_(options.get_string("kind") == "sft"),
        conversational_(options.get_bool("conversational")) {}

  alignkit::ExampleLayout layout() const override {
    return sft_ ? alignkit::ExampleLayout::single : alignkit::ExampleLayout::paired;
  }

  void read(alignkit::ExampleSink& sink) override {
    for (std::uint64_t i = 0; i < count_; ++i) {
      const auto request = task_api::request(seed_, i, task_api::Split::train);
      alignkit::Example example;
      example.where = alignkit::SourceLocation{fmt::format("task_api(seed={})", seed_), static_cast<int>(i + 1), 0};
      example.prompt = user(request.prompt, conversational_);
      if (sft_) {
        example.completion = assistant(task_api::chosen(request), conversational_);
      } else {
        example.chosen = assistant(task_api::chosen(request), conversational_);
        example.rejected = assistant(task_api::rejected(request, seed_, i), conversational_);
      }
      sink.add(std::move(example));
    }
  }

  static alignkit::Segment user(const std::string& text, bool conversational) {
    alignkit::Segment s;
    if (conversational) {
      s.form = alignkit::Segment::Form::messages;
      s.messages = {{"user", text}};
    } else {
      s.form = alignkit::Segment::Form::text;
      s.text = text + "\n";
    }
    return s;
  }

  static alignkit::Segment assistant(const std::string& text, bool conversational) {
    alignkit::Segment s;
    if (conversational) {
      s.form = alignkit::Segment::Form::messages;
      s.messages = {{"assistant", text}};
    } else {
      s.form = alignkit::Segment::Form::text;
      s.text = text;
    }
    return s;
  }

 private:
  std::uint64_t count_, seed_;
  bool sft_, conversational_;
};

std::unique_ptr<TaskApiDataset> make(const alignkit::RecipeSection& options) {
  return std::make_unique<TaskApiDataset>(options);
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::dataset, "task_api", "1.0.0",
                                            "The quickstart's generated task: JSON task objects for create requests, "
                                            "refusals for private data (no files)",
                                            kOptions))
