// Training data as the loops use it: examples read by a dataset plugin, rendered with the chat
// template when conversational, tokenized once, truncated as TRL does, converted to the layout
// the loss needs, and split into train and eval.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <alignkit/dataset.hpp>
#include <alignkit/example_layout.hpp>
#include <alignkit/tokenizer.hpp>

namespace alignkit {

// One example in token ids. Paired: completion = chosen, rejected set. Single and unpaired: only
// completion (unpaired: `desirable`). Completions end with EOS.
struct TokenizedExample {
  std::vector<std::int64_t> prompt, completion, rejected;
  bool desirable = true;
  SourceLocation where;
  // Another example's completion (LossRequirements::mismatched_completions), set by
  // pair_mismatched_completions.
  std::vector<std::int64_t> mismatched_completion;
};

struct TokenizationOptions {
  std::int64_t max_length = 1024;
  std::int64_t max_prompt_length = 512;
  std::int64_t max_completion_length = 0;  // 0: none
  bool keep_end = true;                    // truncation_mode
  // Reward modelling (TRL's RewardTrainer): each row is prompt + completion as one whole in
  // `completion` (prompt left empty): text tokenized joined with the tokenizer's special tokens
  // and the EOS text appended unless the row ends with it, a conversation rendered whole by the
  // chat template (no EOS added), token ids as given. Rows longer than max_length are dropped, not
  // truncated (the score is read at the last token).
  bool whole_rows = false;
};

struct DataReport {
  std::size_t read = 0, skipped = 0;
  // Conversations whose prompt tokens are not a prefix of the whole conversation's tokens: their
  // prompt and completion were tokenized apart (TRL's way) and are counted here, never
  // silently mis-masked.
  std::size_t boundary_mismatches = 0;
  std::size_t truncated = 0;
  std::size_t too_long = 0;  // whole_rows: examples dropped for a row longer than max_length
  std::size_t train = 0, eval = 0;
};

struct TrainingData {
  std::vector<TokenizedExample> train, eval;
  DataReport report;
};

// Reads the dataset and prepares it for a loss with `layout`. Paired data serves unpaired losses
// (chosen desirable, rejected not) and single ones (prompt + chosen). `skip_bad`: count
// malformed records instead of stopping at the first (DiagnosticError with its file and line).
TrainingData prepare_training_data(Dataset& dataset, const Tokenizer& tokenizer, ExampleLayout layout,
                                   const TokenizationOptions& options, bool skip_bad, double eval_fraction,
                                   std::uint64_t seed);

// Gives each example the completion of the one before it within each chunk of `chunk` examples
// in data order (the first takes the chunk's last), as TRL's _get_kl_dataset pairs them for
// KTO's KL estimate.
void pair_mismatched_completions(std::vector<TokenizedExample>& examples, std::size_t chunk);

// A prompt's token ids as training renders it (a conversation through the chat template with
// add_generation_prompt, text as it is, ids as given): where generation for evaluation starts.
// Throws DiagnosticError at `where` for a conversation and a tokenizer without a chat template.
std::vector<std::int64_t> tokenize_prompt(const Tokenizer& tokenizer, const Segment& prompt, const SourceLocation& where);

// A reward model's row from text, as TRL's RewardTrainer tokenizes it: prompt + completion
// joined, the tokenizer's EOS text appended unless the text already ends with it, encoded with
// the tokenizer's special tokens (a BOS where its post-processor adds one).
std::vector<std::int64_t> reward_row_ids(const Tokenizer& tokenizer, const std::string& prompt, const std::string& completion);

// Cuts one prompt + completion row to max_length: keep_end drops prompt tokens from the start
// (keeping one so the first completion token is still predicted), then completion tokens from
// the end; keep_start drops completion tokens from the end, then prompt tokens from the end.
// Returns whether anything was cut.
bool truncate_row(std::vector<std::int64_t>& prompt, std::vector<std::int64_t>& completion, std::int64_t max_length,
                  bool keep_end);

}  // namespace alignkit
