// One decoder for the Llama family (Llama, Mistral, Qwen2, Qwen3), in LibTorch's module idiom.
//
// Submodules are registered under Hugging Face's names, so named_parameters() yields
// "model.layers.0.self_attn.q_proj.weight" and weights load by name with no mapping table.
// Architectures differ only through ModelConfig's flags; attention computes transformers' eager
// formulation (fp32 softmax, additive mask at the dtype's lowest value), through the fused
// causal_attention where it applies (alignkit/attention.hpp).
#pragma once

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <alignkit/attention.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/model_loader.hpp>

#include "hf_config.hpp"

namespace alignkit::hf {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(std::int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

// One packed sequence: columns start..start+length-1 of row `row`.
struct Segment {
  std::int64_t row, start, length;
};

// Which keys each query sees, decided once per forward and shared by the layers. Where the fused
// attention applies (alignkit/attention.hpp: fp32 on the CPU, no cache), the mask as given; in
// eager attention an additive mask over whole rows, or, for packed rows, the segments, each
// attended on its own so a packed row pays sum(length^2) rather than T^2 (positions outside
// every segment get a zero output).
struct AttentionLayout {
  std::optional<CausalMask> fused;  // the fused attention's mask; eager attention when empty
  torch::Tensor mask;               // eager: additive [B, 1, T, past + T]; undefined when packed
  std::vector<Segment> segments;    // eager, packed rows only
  torch::Tensor causal;             // eager, packed rows only: additive [L, L] for the longest segment
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const ModelConfig& config);
  // x: [B, T, hidden]; cos, sin: [B, T, head_dim]. With a cache, this step's keys and values are
  // written at positions past..past+T-1 of layer `layer`.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionLayout& layout, KVCache* cache, std::size_t layer);

  AdaptableLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only

 private:
  std::int64_t heads_, kv_heads_, head_dim_;
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  AdaptableLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionLayout& layout, KVCache* cache, std::size_t layer);
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// "model": embeddings, layers and the final norm, returning hidden states.
class DecoderModelImpl : public torch::nn::Module {
 public:
  explicit DecoderModelImpl(const ModelConfig& config);
  // Without a cache: attention_mask [B, T], 0/1 or segment ids (CausalLM::hidden_states). With
  // one: see CausalLM::hidden_states_cached.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& position_ids, KVCache* cache = nullptr);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  bool gradient_checkpointing = false;
  bool fused_attention = true;  // causal_attention where it applies (LoadOptions::eager_attention)

 private:
  ModelConfig config_;
  torch::Tensor inv_freq_;  // rope frequencies, as transformers computes them (not a weight)
};
TORCH_MODULE(DecoderModel);

// The whole model: the decoder plus lm_head (causal LM) or score (sequence classification).
class DecoderLM : public CausalLM {
 public:
  explicit DecoderLM(ModelConfig config);
  // An undefined position_ids means 0..T-1 for every row, as transformers does by default.
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& position_ids) override;
  torch::Tensor hidden_states_cached(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                     const torch::Tensor& position_ids, KVCache& cache) override;
  void set_gradient_checkpointing(bool enabled) override { model->gradient_checkpointing = enabled; }
  // lm_head, the embedding when tied, or the classification head's score matrix.
  torch::Tensor output_weight() override;
  const ModelDescription& description() const override { return description_; }
  const ModelConfig& config() const { return config_; }

  DecoderModel model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // absent when tied or for a classification head
  torch::nn::Linear score{nullptr};    // classification head only

 private:
  ModelConfig config_;
  ModelDescription description_;
};

// Rope inverse frequencies [head_dim / 2] for the config (default or llama3 scaling).
torch::Tensor rope_inv_freq(const ModelConfig& config);

}  // namespace alignkit::hf
