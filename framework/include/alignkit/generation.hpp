// Text generation with a KV cache: batched, left-padded, greedy or sampled, seeded.
//
// Semantics follow transformers' `generate`: prompts are left-padded, position ids count real
// tokens only (cumsum of the mask - 1), sampling applies temperature, then top-k, then top-p (the
// order of its logits warpers), and a finished row keeps receiving the pad token until all rows
// finish. PPO, GRPO and evaluation build on this.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <alignkit/model_loader.hpp>

namespace alignkit {

struct GenerationConfig {
  std::int64_t max_new_tokens = 32;
  bool do_sample = false;   // false: greedy
  double temperature = 1.0; // transformers' defaults for the sampling knobs
  std::int64_t top_k = 50;  // 0: no top-k filter
  double top_p = 1.0;       // 1: no nucleus filter
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t pad_token_id = 0;
  // A row stops once its decoded completion contains one of these (the text keeps it, as
  // transformers' StopStringCriteria does). Needs a detokenizer.
  std::vector<std::string> stop_strings;
  std::uint64_t seed = 0;   // sampling draws from a CPU generator seeded with this

  // Throws std::invalid_argument naming the field for values out of range.
  void check() const;
};

enum class FinishReason { eos, stop_string, length };
const char* to_string(FinishReason reason);

struct Generation {
  std::vector<std::vector<std::int64_t>> tokens;  // each prompt's new tokens, EOS included
  std::vector<FinishReason> finish_reasons;
};

using Detokenize = std::function<std::string(const std::vector<std::int64_t>&)>;

// prompts: token ids, none empty. Runs under NoGradGuard with the model as it is (eval mode is
// the caller's choice: dropout in train mode would sample differently).
Generation generate(CausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts,
                    const GenerationConfig& config, const Detokenize& detokenize = {});

// The logits warpers, exposed for tests: temperature, top-k and top-p applied to [B, V] fp32
// logits, with removed entries at -inf.
torch::Tensor warp_logits(const torch::Tensor& logits, const GenerationConfig& config);

}  // namespace alignkit
