#include "training_data.hpp"

#include <algorithm>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/chat_template.hpp>

namespace alignkit {

namespace {

class CollectingSink final : public ExampleSink {
 public:
  explicit CollectingSink(bool skip_bad) : skip_bad_(skip_bad) {}
  void add(Example example) override { examples.push_back(std::move(example)); }
  void reject(Diagnostic problem) override {
    if (!skip_bad_) {
      problem.help = problem.help.empty() ? "fix the record, or set [data] on_error = \"skip\" to count and skip such records"
                                          : problem.help;
      throw DiagnosticError(std::move(problem));
    }
    ++skipped;
  }
  std::vector<Example> examples;
  std::size_t skipped = 0;

 private:
  bool skip_bad_;
};

nlohmann::ordered_json as_json(const std::vector<ChatMessage>& messages) {
  auto out = nlohmann::ordered_json::array();
  for (const auto& m : messages) out.push_back({{"role", m.role}, {"content", m.content}});
  return out;
}

// Renders and tokenizes one example's segments. Text and messages become token ids; messages go
// through the chat template with the prompt rendered with add_generation_prompt, and each
// completion as the rest of prompt + completion rendered whole.
class ExampleTokenizer {
 public:
  ExampleTokenizer(const Tokenizer& tokenizer, DataReport& report, bool whole_rows = false)
      : tokenizer_(tokenizer), report_(report), whole_rows_(whole_rows) {
    if (tokenizer.chat_template())
      chat_.emplace(*tokenizer.chat_template(), tokenizer.origin().string() + ": chat_template");
  }

  // Returns prompt ids and completion ids (EOS appended) for one prompt/completion pair.
  std::pair<std::vector<std::int64_t>, std::vector<std::int64_t>> tokenize(const Segment& prompt,
                                                                           const Segment& completion,
                                                                           const SourceLocation& where) {
    auto fail = [&](std::string message, std::string help = {}) {
      Diagnostic d{Severity::error, where, std::move(message)};
      d.help = std::move(help);
      throw DiagnosticError(std::move(d));
    };
    if (completion.form == Segment::Form::token_ids || prompt.form == Segment::Form::token_ids) {
      if (completion.form != Segment::Form::token_ids || (prompt.form != Segment::Form::token_ids && prompt.form != Segment::Form::empty))
        fail("token ids and text cannot be mixed within one example");
      if (whole_rows_) {
        auto row = prompt.token_ids;
        row.insert(row.end(), completion.token_ids.begin(), completion.token_ids.end());
        return {{}, std::move(row)};
      }
      return {prompt.token_ids, with_eos(completion.token_ids)};
    }
    std::string prompt_text, completion_text;
    if (completion.form == Segment::Form::messages) {
      if (prompt.form == Segment::Form::text) fail("a conversational completion needs a conversational prompt");
      prompt_text = render_prompt(prompt.messages, where);
      auto context = base_context();
      auto whole = prompt.messages;
      whole.insert(whole.end(), completion.messages.begin(), completion.messages.end());
      context["messages"] = as_json(whole);
      context["add_generation_prompt"] = false;
      const auto whole_text = chat_->render_ordered(context);
      if (whole_rows_) return {{}, tokenizer_.encode(whole_text, false)};
      if (whole_text.compare(0, prompt_text.size(), prompt_text) != 0)
        fail("the chat template renders the prompt differently inside the whole conversation, so the completion "
             "cannot be separated from it");
      completion_text = whole_text.substr(prompt_text.size());
    } else {
      if (prompt.form == Segment::Form::messages) fail("a conversational prompt needs a conversational completion");
      prompt_text = prompt.text;
      completion_text = completion.text;
      if (whole_rows_) return {{}, reward_row_ids(tokenizer_, prompt_text, completion_text)};
    }
    // Tokenized once as a whole, split where the prompt's own tokens end. A boundary that
    // tokenizes differently joined than apart falls back to TRL's separate tokenization, counted.
    auto prompt_ids = tokenizer_.encode(prompt_text, false);
    auto whole_ids = tokenizer_.encode(prompt_text + completion_text, false);
    std::vector<std::int64_t> completion_ids;
    if (whole_ids.size() > prompt_ids.size() && std::equal(prompt_ids.begin(), prompt_ids.end(), whole_ids.begin())) {
      completion_ids.assign(whole_ids.begin() + static_cast<std::ptrdiff_t>(prompt_ids.size()), whole_ids.end());
    } else {
      ++report_.boundary_mismatches;
      completion_ids = tokenizer_.encode(completion_text, false);
    }
    if (completion_ids.empty()) fail("the completion is empty");
    return {std::move(prompt_ids), with_eos(std::move(completion_ids))};
  }

  // The ids of a prompt alone, rendered as tokenize() renders it: what generation starts from.
  std::vector<std::int64_t> prompt_ids(const Segment& prompt, const SourceLocation& where) {
    if (prompt.form == Segment::Form::token_ids) return prompt.token_ids;
    if (prompt.form == Segment::Form::messages) return tokenizer_.encode(render_prompt(prompt.messages, where), false);
    return tokenizer_.encode(prompt.text, false);
  }

 private:
  // A conversation's prompt through the chat template, with add_generation_prompt.
  std::string render_prompt(const std::vector<ChatMessage>& messages, const SourceLocation& where) const {
    if (!chat_) {
      Diagnostic d{Severity::error, where,
                   fmt::format("the data is conversational, but {} has no chat_template", tokenizer_.origin().string())};
      d.help = "use a tokenizer with a chat template, or give prompt and completions as text";
      throw DiagnosticError(std::move(d));
    }
    if (messages.empty()) return {};
    auto context = base_context();
    context["messages"] = as_json(messages);
    context["add_generation_prompt"] = true;
    return chat_->render_ordered(context);
  }

  // TRL's tokenize_row appends EOS to every completion, even one that already ends with it.
  std::vector<std::int64_t> with_eos(std::vector<std::int64_t> ids) const {
    if (const auto eos = tokenizer_.eos_token_id()) ids.push_back(*eos);
    return ids;
  }

  nlohmann::ordered_json base_context() const {
    nlohmann::ordered_json context;
    if (tokenizer_.bos_token()) context["bos_token"] = *tokenizer_.bos_token();
    if (tokenizer_.eos_token()) context["eos_token"] = *tokenizer_.eos_token();
    return context;
  }

  const Tokenizer& tokenizer_;
  DataReport& report_;
  bool whole_rows_ = false;
  std::optional<ChatTemplate> chat_;
};

bool cap(std::vector<std::int64_t>& ids, std::int64_t limit, bool keep_end) {
  if (limit <= 0 || static_cast<std::int64_t>(ids.size()) <= limit) return false;
  if (keep_end) ids.erase(ids.begin(), ids.end() - limit);
  else ids.resize(static_cast<std::size_t>(limit));
  return true;
}

}  // namespace

bool truncate_row(std::vector<std::int64_t>& prompt, std::vector<std::int64_t>& completion, std::int64_t max_length,
                  bool keep_end) {
  auto excess = static_cast<std::int64_t>(prompt.size() + completion.size()) - max_length;
  if (excess <= 0) return false;
  if (keep_end) {
    const auto from_prompt = std::min<std::int64_t>(excess, std::max<std::int64_t>(0, static_cast<std::int64_t>(prompt.size()) - 1));
    prompt.erase(prompt.begin(), prompt.begin() + from_prompt);
    completion.resize(completion.size() - static_cast<std::size_t>(excess - from_prompt));
  } else {
    const auto from_completion = std::min<std::int64_t>(excess, static_cast<std::int64_t>(completion.size()) - 1);
    completion.resize(completion.size() - static_cast<std::size_t>(from_completion));
    prompt.resize(prompt.size() - static_cast<std::size_t>(excess - from_completion));
  }
  return true;
}

std::vector<std::int64_t> reward_row_ids(const Tokenizer& tokenizer, const std::string& prompt, const std::string& completion) {
  auto row = prompt + completion;
  const auto& eos = tokenizer.eos_token();
  if (eos && (row.size() < eos->size() || row.compare(row.size() - eos->size(), eos->size(), *eos) != 0)) row += *eos;
  return tokenizer.encode(row, true);
}

std::vector<std::int64_t> tokenize_prompt(const Tokenizer& tokenizer, const Segment& prompt, const SourceLocation& where) {
  DataReport unused;
  return ExampleTokenizer(tokenizer, unused).prompt_ids(prompt, where);
}

TrainingData prepare_training_data(Dataset& dataset, const Tokenizer& tokenizer, ExampleLayout layout,
                                   const TokenizationOptions& options, bool skip_bad, double eval_fraction,
                                   std::uint64_t seed) {
  CollectingSink sink(skip_bad);
  dataset.read(sink);
  TrainingData data;
  data.report.read = sink.examples.size() + sink.skipped;
  data.report.skipped = sink.skipped;
  const auto source = dataset.layout();
  if (source != layout && !(source == ExampleLayout::paired && (layout == ExampleLayout::unpaired || layout == ExampleLayout::single)))
    throw DiagnosticError(make_error("the dataset's records do not have the layout the method needs",
                                     "a paired dataset serves paired, unpaired and single-completion methods; other "
                                     "layouts serve only their own"));

  ExampleTokenizer tokenize(tokenizer, data.report, options.whole_rows);
  std::vector<TokenizedExample> all;
  auto add = [&](TokenizedExample e) {
    if (options.whole_rows) {
      // TRL's RewardTrainer filters rows longer than max_length out instead of cutting them.
      const auto limit = static_cast<std::size_t>(options.max_length);
      if (e.completion.size() > limit || e.rejected.size() > limit) {
        ++data.report.too_long;
        return;
      }
      all.push_back(std::move(e));
      return;
    }
    // Prompt and completion caps first (TRL's max_prompt_length keeps the prompt's end), then the
    // whole row.
    bool cut = cap(e.prompt, options.max_prompt_length, true);
    cut = cap(e.completion, options.max_completion_length, false) || cut;
    cut = cap(e.rejected, options.max_completion_length, false) || cut;
    auto prompt_for_rejected = e.prompt;
    cut = truncate_row(e.prompt, e.completion, options.max_length, options.keep_end) || cut;
    if (!e.rejected.empty()) {
      cut = truncate_row(prompt_for_rejected, e.rejected, options.max_length, options.keep_end) || cut;
      // Both rows share the prompt that survives in both (the shorter cut).
      if (prompt_for_rejected.size() < e.prompt.size()) e.prompt = prompt_for_rejected;
      if (static_cast<std::int64_t>(e.prompt.size() + e.completion.size()) > options.max_length)
        e.completion.resize(static_cast<std::size_t>(options.max_length) - e.prompt.size());
      if (static_cast<std::int64_t>(e.prompt.size() + e.rejected.size()) > options.max_length)
        e.rejected.resize(static_cast<std::size_t>(options.max_length) - e.prompt.size());
    }
    data.report.truncated += cut ? 1 : 0;
    all.push_back(std::move(e));
  };
  for (const auto& example : sink.examples) {
    try {
      if (source == ExampleLayout::paired) {
        auto [prompt, chosen] = tokenize.tokenize(example.prompt, example.chosen, example.where);
        auto [prompt_again, rejected] = tokenize.tokenize(example.prompt, example.rejected, example.where);
        if (prompt_again != prompt)
          throw DiagnosticError(Diagnostic{Severity::error, example.where,
                                           "the prompt tokenizes differently before chosen and before rejected"});
        if (layout == ExampleLayout::paired) {
          add({prompt, chosen, rejected, true, example.where});
        } else if (layout == ExampleLayout::unpaired) {
          add({prompt, chosen, {}, true, example.where});
          add({prompt, rejected, {}, false, example.where});
        } else {
          add({prompt, chosen, {}, true, example.where});
        }
      } else {
        auto [prompt, completion] = tokenize.tokenize(example.prompt, example.completion, example.where);
        add({prompt, completion, {}, example.desirable, example.where});
      }
    } catch (const DiagnosticError&) {
      if (!skip_bad) throw;
      ++data.report.skipped;
    }
  }
  if (all.empty() && data.report.too_long > 0)
    throw DiagnosticError(make_error(fmt::format("every example ({}) has a row longer than max_length {}, and reward "
                                                 "modelling drops such rows instead of cutting them",
                                                 data.report.too_long, options.max_length),
                                     "raise [training] max_length"));
  if (all.empty()) throw DiagnosticError(make_error("the dataset has no usable examples"));

  // A seeded split: the same recipe holds out the same examples.
  std::vector<std::size_t> order(all.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  auto held_out = static_cast<std::size_t>(eval_fraction * static_cast<double>(all.size()));
  if (eval_fraction > 0 && held_out == 0) held_out = 1;
  if (held_out >= all.size()) throw DiagnosticError(make_error("eval_fraction leaves no training examples"));
  std::vector<bool> is_eval(all.size(), false);
  for (std::size_t i = 0; i < held_out; ++i) is_eval[order[i]] = true;
  for (std::size_t i = 0; i < all.size(); ++i) (is_eval[i] ? data.eval : data.train).push_back(std::move(all[i]));
  data.report.train = data.train.size();
  data.report.eval = data.eval.size();
  return data;
}

void pair_mismatched_completions(std::vector<TokenizedExample>& examples, std::size_t chunk) {
  for (std::size_t begin = 0; begin < examples.size(); begin += chunk) {
    const auto end = std::min(examples.size(), begin + chunk);
    for (std::size_t i = begin; i < end; ++i)
      examples[i].mismatched_completion = examples[i == begin ? end - 1 : i - 1].completion;
  }
}

}  // namespace alignkit
