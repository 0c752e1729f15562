// The offline loop's batch scoring: what a loss declared (LossRequirements) turned into the
// completions scored per example, by which model and how, and filled into a LossBatch; the
// precomputed reference pass over a split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <alignkit/logprobs.hpp>
#include <alignkit/loss.hpp>

#include "reference_cache.hpp"
#include "run_models.hpp"
#include "training_data.hpp"

namespace alignkit {

// One completion of each example that the loss needs scored. Its name is the reference cache's
// slot for it.
struct ScoredCompletion {
  std::string name;                                      // "completion", "rejected", "mismatched"
  std::vector<std::int64_t> TokenizedExample::*tokens;   // the completion's ids
  CompletionScores LossBatch::*policy;                   // where the policy's scores go
  CompletionScores LossBatch::*reference;                // where the reference's go
  bool policy_gradient = true;  // false: the policy scores it without gradient (TRL's KL completions)
};

// The declared layout as the completions scored per example, in the order they are scored: the
// completions the policy trains on, then each mismatched one. Paired layouts score their two in
// one forward (TRL's concatenated_forward).
std::vector<ScoredCompletion> scored_completions(const LossRequirements& requirements);

class OfflineScoring {
 public:
  OfflineScoring(const LossRequirements& requirements, RunModels& models, torch::Device device, std::int64_t pad_id,
                 std::int64_t logprob_chunk, bool packing);

  const std::vector<ScoredCompletion>& completions() const { return completions_; }

  // The micro-batch `rows` (indices into `split`) as the loss's input: the policy's scores of
  // every declared completion, the reference's (from `cached`, indexed like `split`, when the
  // reference was precomputed), the desirable flags of unpaired data.
  LossBatch batch(const std::vector<TokenizedExample>& split, const std::vector<std::size_t>& rows,
                  const ReferenceLogps* cached);
  // Tokens of the rows the policy trains on (for tokens/s).
  std::int64_t tokens(const std::vector<TokenizedExample>& split, const std::vector<std::size_t>& rows) const;

  // One pass of the reference over `split` in batches of `batch_size`: each example's reference
  // log-prob of each declared completion.
  ReferenceLogps precompute(const std::vector<TokenizedExample>& split, std::size_t batch_size);

 private:
  // The completions `group` of `rows` in one forward of `model`, one CompletionScores each.
  std::vector<CompletionScores> score(CausalLM& model, const std::vector<const ScoredCompletion*>& group,
                                      const std::vector<TokenizedExample>& split, const std::vector<std::size_t>& rows) const;

  LossRequirements requirements_;
  RunModels& models_;
  torch::Device device_;
  std::int64_t pad_id_;
  ScoreOptions options_;
  std::vector<ScoredCompletion> completions_;
  // completions_ grouped by forward: those with gradient together, each other one alone.
  std::vector<std::vector<const ScoredCompletion*>> forwards_;
};

}  // namespace alignkit

namespace alignkit {

// Every token of every example of both splits, in order: what the loop will actually see (the
// key of checkpoints and of the precomputed reference).
std::string examples_hash(const TrainingData& data);

// What the precomputed reference's log-probs depend on, in parts a message can name: the model
// (weights, precision, quantization, init_adapter), the [data] section and its files with the
// seed, the tokenizer files and length limits, the scoring, the examples as tokenized.
std::vector<CacheKeyPart> reference_cache_key(const ValidatedRecipe& recipe, const RunModels& models,
                                              const Tokenizer& tokenizer, const TrainingData& data,
                                              const LossRequirements& requirements, std::uint64_t seed);

}  // namespace alignkit
