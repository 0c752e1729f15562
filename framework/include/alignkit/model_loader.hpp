// ModelLoader: reads a model directory into a module the host can train, and writes it back.
//
// `describe` reads only the configuration, so the memory planner can size a 70B model without
// loading it; `load` places weights straight on the target device and dtype.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <alignkit/plugin.hpp>

namespace alignkit {

// What the planner and the loops need to know about a model, from its configuration alone.
struct ModelDescription {
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::int64_t parameters = 0;
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;
  bool tied_embeddings = false;
};

// How a frozen base model's projection weights are stored (alignkit/quantization.hpp).
enum class BaseQuantization { none, int8, nf4, nf4_double_quant };

struct LoadOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;  // compute dtype: fp32, bf16 or fp16
  // Quantizes the decoder's projections as each is loaded, so the full-precision model never
  // exists at once; embeddings, norms and the output head stay in `dtype` (as QLoRA keeps them).
  BaseQuantization quantization = BaseQuantization::none;
  // Attention as transformers' eager formulation everywhere (its attn_implementation="eager"),
  // instead of the fused kernel wherever fused_attention_supports accepts the forward
  // (alignkit/attention.hpp). Both compute the same values; eager keeps the [B, H, T, T] scores.
  bool eager_attention = false;
  // 0: the head config.json declares. N > 0: a ...ForSequenceClassification model with N labels,
  // as transformers' AutoModelForSequenceClassification(num_labels=N) loads it: a causal-LM
  // checkpoint keeps its decoder, drops lm_head and gets a fresh `score` head drawn from
  // N(0, initializer_range) with torch's global generator; a classification checkpoint must
  // already have N labels.
  std::int64_t classification_labels = 0;
};

// Keys and values of the positions seen so far, for incremental decoding. The model allocates
// the per-layer tensors on first use, sized for `capacity` positions; callers only read `length`.
struct KVCache {
  std::int64_t capacity = 0;  // positions the cache can hold
  std::int64_t length = 0;    // positions filled
  std::vector<torch::Tensor> keys, values;  // per layer [batch, kv_heads, capacity, head_dim]
};

// A causal language model: token ids in, hidden states and an output matrix out. Logits are
// hidden_states x output_weight^T; callers that only need some of them (log-probs of chosen
// tokens, the last token's score) compute them from the two pieces, a chunk at a time.
class CausalLM : public torch::nn::Module {
 public:
  ~CausalLM() override;
  // input_ids, attention_mask: [batch, seq] int64; position_ids likewise, or undefined for
  // 0..seq-1 in every row. Returns the final-norm hidden states [batch, seq, hidden].
  //
  // The mask is 1 on tokens and 0 on padding, or, for packed rows (several sequences in one
  // row, OpenRLHF's convention), segment ids: 1,1,1,2,2,3,3,0,0 is three sequences then two pad
  // tokens. A query sees a key iff the key is not later, its id is not 0 and equals the query's
  // id; a 0/1 mask is the one-segment case. Packed rows should carry position_ids restarting at
  // 0 in each sequence (the hf loader derives them when position_ids is undefined). The outputs
  // at padding positions are unspecified.
  virtual torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                      const torch::Tensor& position_ids) = 0;
  // The output projection [outputs, hidden]: lm_head (or the tied embedding) over the vocabulary,
  // or a classification head's score matrix.
  virtual torch::Tensor output_weight() = 0;
  virtual const ModelDescription& description() const = 0;

  // The incremental form for generation: input_ids [batch, t] are positions cache.length ..
  // cache.length + t - 1; attention_mask [batch, cache.length + t] covers cached and new
  // positions; position_ids [batch, t] are required (left padding shifts them). Appends this
  // step's keys and values to the cache and returns the new positions' hidden states.
  virtual torch::Tensor hidden_states_cached(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                             const torch::Tensor& position_ids, KVCache& cache) = 0;

  // Recompute each decoder layer's activations in backward instead of keeping them (training
  // only; a no-op under NoGradGuard or in eval mode).
  virtual void set_gradient_checkpointing(bool enabled) = 0;

  // Full logits [batch, seq, outputs].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& position_ids);
};

class ModelLoader : public PluginObject {
 public:
  ~ModelLoader() override;
  virtual ModelDescription describe(const std::filesystem::path& model_dir) const = 0;
  virtual std::shared_ptr<CausalLM> load(const std::filesystem::path& model_dir,
                                         const LoadOptions& options) = 0;
  virtual void save(const CausalLM& model, const std::filesystem::path& model_dir) const = 0;
};

}  // namespace alignkit
