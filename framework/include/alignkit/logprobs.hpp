// Log-probabilities of completions given prompts: the one function every loss builds on.
//
// The vocabulary-sized logits are computed a chunk of positions at a time, and only at positions
// that predict a completion token, so no [batch, seq, vocab] fp32 log-softmax is materialised.
// token_logprobs() is the seam a fused CUDA kernel replaces later; its CPU form is the reference.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include <alignkit/loss.hpp>
#include <alignkit/model_loader.hpp>

namespace alignkit {

// Rows of prompt + completion tokens in TRL's concatenated layout after flush_left: each row
// starts at column 0 with its first real token and is right-padded.
struct CompletionBatch {
  torch::Tensor input_ids;        // [N, T] int64
  torch::Tensor attention_mask;   // [N, T] int64, 1 on real tokens
  torch::Tensor completion_mask;  // [N, T] int64, 1 on completion tokens
};

// Builds a CompletionBatch from token id lists (prompts[i] followed by completions[i]).
// Throws std::invalid_argument for mismatched list sizes or an empty completion.
CompletionBatch make_completion_batch(const std::vector<std::vector<std::int64_t>>& prompts,
                                      const std::vector<std::vector<std::int64_t>>& completions,
                                      std::int64_t pad_id = 0);

// A CompletionBatch's rows as one padding-free row [1, S] of their real tokens, in CausalLM's
// packed convention: row i's tokens carry segment id i + 1, and each token its column, which
// restarts at 0 in each row laid out from column 0.
struct PackedRow {
  torch::Tensor input_ids, segment_ids, position_ids;  // [1, S] int64
};
PackedRow pack_rows(const CompletionBatch& batch);

struct TokenLogProbs {
  torch::Tensor logps;       // [M] log p(label) at each selected position, fp32
  torch::Tensor logit_sums;  // [M] sum of the logits over the vocabulary at that position, fp32
};

// hidden: [M, H] states at the selected positions; weight: [V, H] output matrix; labels: [M].
// Works `chunk` positions at a time (0: all at once).
TokenLogProbs token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight,
                             const torch::Tensor& labels, std::int64_t chunk = 256);

struct ScoreOptions {
  LogProbReduction reduction = LogProbReduction::sum;
  std::int64_t chunk = 256;  // positions per token_logprobs chunk (0: all at once)
  // The NLL covers every attended token after the first (TRL's ORPO), not only the completion.
  bool nll_over_prompt = false;
  // Padding-free: the batch's rows go through the model as one row of their real tokens, with
  // segment ids as the attention mask and positions restarting at 0 in each (CausalLM's packed
  // convention). The scores are the padded path's up to fp32 rounding; the forward skips every
  // pad token, which pays when rows differ much in length.
  bool packing = false;
};

// Per-row log-probabilities of the completion tokens, as TRL's concatenated_forward computes
// them: logps summed (or averaged, per `reduction`) over completion tokens, their counts, the
// mean logit over completion positions and the vocabulary, and the token-mean NLL. With
// `nll_over_prompt`, nll_token_counts says how many tokens entered the NLL. With `packing`, every
// position that predicts a scored token must be a real token (std::invalid_argument otherwise).
CompletionScores score_completions(CausalLM& model, const CompletionBatch& batch, const ScoreOptions& options);
CompletionScores score_completions(CausalLM& model, const CompletionBatch& batch,
                                   LogProbReduction reduction = LogProbReduction::sum,
                                   std::int64_t chunk = 256, bool nll_over_prompt = false);

}  // namespace alignkit
