#include "decoder.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <set>

#include <fmt/format.h>
#include <torch/nn/functional/activation.h>

#include <alignkit/activation_checkpoint.hpp>

namespace alignkit::hf {

namespace F = torch::nn::functional;

namespace {

// Projections that LoRA can adapt (alignkit/lora.hpp).
AdaptableLinear linear(std::int64_t in, std::int64_t out, bool bias) { return AdaptableLinear(in, out, bias); }

torch::nn::Linear head(std::int64_t in, std::int64_t out) {
  return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false));
}

// rotate_half: [-x2, x1] on the two halves of the last dimension.
torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

// [B, H_kv, T, D] -> [B, H_kv * groups, T, D], each kv head shared by `groups` query heads.
torch::Tensor repeat_kv(const torch::Tensor& x, std::int64_t groups) {
  if (groups == 1) return x;
  const auto b = x.size(0), h = x.size(1), t = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, h, groups, t, d}).reshape({b, h * groups, t, d});
}

// The sequences of packed rows: runs of one segment id > 0. Empty for a 0/1 mask, and when an
// id comes back after another id (the dense mask then applies the rule as it stands).
std::vector<Segment> segments_of(const torch::Tensor& attention_mask) {
  const auto ids = attention_mask.to(torch::kCPU, torch::kInt64).contiguous();
  if (ids.numel() == 0 || ids.max().item<std::int64_t>() <= 1) return {};
  const auto rows = ids.accessor<std::int64_t, 2>();
  std::vector<Segment> segments;
  for (std::int64_t r = 0; r < ids.size(0); ++r) {
    std::set<std::int64_t> seen;
    for (std::int64_t start = 0, end = 0; start < ids.size(1); start = end) {
      const auto id = rows[r][start];
      while (end < ids.size(1) && rows[r][end] == id) ++end;
      if (id == 0) continue;
      if (!seen.insert(id).second) return {};
      segments.push_back({r, start, end - start});
    }
  }
  return segments;
}

// Positions 0, 1, ... restarting in each segment (0 on padding).
torch::Tensor segment_positions(const std::vector<Segment>& segments, std::int64_t b, std::int64_t t) {
  auto positions = torch::zeros({b, t}, torch::kInt64);
  for (const auto& s : segments) positions[s.row].slice(0, s.start, s.start + s.length).copy_(torch::arange(s.length));
  return positions;
}

}  // namespace

torch::Tensor rope_inv_freq(const ModelConfig& c) {
  const auto dim = c.head_dim;
  auto inv_freq = 1.0 / torch::pow(c.rope_theta, torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) /
                                                     static_cast<double>(dim));
  if (c.rope_scaling.rope_type != "llama3") return inv_freq;
  // Llama 3.1's frequency-dependent scaling (transformers' _compute_llama3_parameters): long
  // wavelengths are divided by `factor`, short ones kept, the band between interpolated.
  const auto& s = c.rope_scaling;
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_freq_wavelen = old_len / s.low_freq_factor;
  const double high_freq_wavelen = old_len / s.high_freq_factor;
  const auto wavelen = 2 * std::numbers::pi / inv_freq;
  auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  const auto smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  const auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  const auto medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return torch::where(medium, smoothed, scaled);
}

RMSNormImpl::RMSNormImpl(std::int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // Normalise in fp32 whatever the compute dtype, as transformers does.
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, true) + eps_);
  return weight * h.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const ModelConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  q_proj = register_module("q_proj", linear(c.hidden_size, heads_ * head_dim_, c.qkv_bias));
  k_proj = register_module("k_proj", linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  v_proj = register_module("v_proj", linear(c.hidden_size, kv_heads_ * head_dim_, c.qkv_bias));
  o_proj = register_module("o_proj", linear(heads_ * head_dim_, c.hidden_size, c.o_bias));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(head_dim_, c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, c.rms_norm_eps));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                     const AttentionLayout& layout, KVCache* cache, std::size_t layer) {
  const auto b = x.size(0), t = x.size(1);
  auto q = q_proj(x).view({b, t, heads_, head_dim_});
  auto k = k_proj(x).view({b, t, kv_heads_, head_dim_});
  auto v = v_proj(x).view({b, t, kv_heads_, head_dim_}).transpose(1, 2);
  if (q_norm) {  // Qwen3 normalises each head before rope
    q = q_norm(q);
    k = k_norm(k);
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  const auto c = cos.unsqueeze(1), s = sin.unsqueeze(1);
  q = q * c + rotate_half(q) * s;
  k = k * c + rotate_half(k) * s;
  if (cache) {
    const auto past = cache->length;
    if (cache->keys.size() <= layer) cache->keys.resize(layer + 1), cache->values.resize(layer + 1);
    auto& keys = cache->keys[layer];
    auto& values = cache->values[layer];
    if (!keys.defined()) {
      keys = torch::zeros({b, kv_heads_, cache->capacity, head_dim_}, k.options());
      values = torch::zeros({b, kv_heads_, cache->capacity, head_dim_}, v.options());
    }
    if (past + t > cache->capacity)
      throw std::out_of_range(fmt::format("KV cache of {} positions is full ({} cached, {} more)", cache->capacity,
                                          past, t));
    keys.slice(2, past, past + t).copy_(k);
    values.slice(2, past, past + t).copy_(v);
    k = keys.slice(2, 0, past + t);
    v = values.slice(2, 0, past + t);
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  // The fused kernel writes [B, T, H, D] memory, so this reshape is a view.
  if (layout.fused) return o_proj(causal_attention(q, k, v, *layout.fused, scale).transpose(1, 2).reshape({b, t, heads_ * head_dim_}));
  k = repeat_kv(k, heads_ / kv_heads_);
  v = repeat_kv(v, heads_ / kv_heads_);
  auto attend = [&](const torch::Tensor& qs, const torch::Tensor& ks, const torch::Tensor& vs,
                    const torch::Tensor& mask) {
    auto probs = torch::softmax(torch::matmul(qs, ks.transpose(2, 3)) * scale + mask, -1, torch::kFloat32);
    return torch::matmul(probs.to(qs.scalar_type()), vs);
  };
  torch::Tensor out;
  if (layout.mask.defined()) {
    out = attend(q, k, v, layout.mask);
  } else {
    out = torch::zeros_like(q);
    for (const auto& s : layout.segments) {
      auto span = [&](const torch::Tensor& x) { return x.slice(0, s.row, s.row + 1).slice(2, s.start, s.start + s.length); };
      span(out).copy_(attend(span(q), span(k), span(v), layout.causal.slice(0, 0, s.length).slice(1, 0, s.length)));
    }
  }
  return o_proj(out.transpose(1, 2).reshape({b, t, heads_ * head_dim_}));
}

MlpImpl::MlpImpl(const ModelConfig& c) {
  gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return down_proj(F::silu(gate_proj(x)) * up_proj(x)); }

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                        const AttentionLayout& layout, KVCache* cache, std::size_t layer) {
  auto h = x + self_attn->forward(input_layernorm(x), cos, sin, layout, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

DecoderModelImpl::DecoderModelImpl(const ModelConfig& c) : config_(c), inv_freq_(rope_inv_freq(c)) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                        const torch::Tensor& position_ids, KVCache* cache) {
  const auto b = input_ids.size(0), t = input_ids.size(1);
  const auto past = cache ? cache->length : 0;
  auto h = embed_tokens(input_ids);
  const auto dtype = h.scalar_type();
  const auto device = h.device();
  const auto int64 = torch::dtype(torch::kInt64).device(device);

  AttentionLayout layout;
  if (!cache && attention_mask.defined()) layout.segments = segments_of(attention_mask);
  if (!cache && fused_attention && fused_attention_supports(dtype, device, config_.head_dim))
    layout.fused = CausalMask{attention_mask, config_.sliding_window};
  auto positions = position_ids.defined() ? position_ids
                   : layout.segments.empty()
                       ? torch::arange(past, past + t, int64).unsqueeze(0).expand({b, t})
                       : segment_positions(layout.segments, b, t).to(device);
  // Rope tables in fp32, then cast to the compute dtype (transformers' LlamaRotaryEmbedding).
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_.to(device).view({1, 1, -1});
  auto emb = torch::cat({freqs, freqs}, -1);
  auto cos = emb.cos().to(dtype), sin = emb.sin().to(dtype);

  // A query sees earlier keys (no further back than a sliding window) of its own sequence: with
  // a 0/1 mask, keys that are not padding; with segment ids, keys of the same id > 0.
  auto causal = [&](std::int64_t queries_from, std::int64_t keys) {
    auto query = torch::arange(queries_from, keys, int64).view({-1, 1});
    auto key = torch::arange(keys, int64).view({1, keys});
    auto allowed = key <= query;
    if (config_.sliding_window) allowed = allowed.logical_and(query - key < *config_.sliding_window);
    return allowed;
  };
  const double lowest = dtype == torch::kFloat64 ? std::numeric_limits<double>::lowest()
                        : dtype == torch::kBFloat16 ? -3.3895313892515355e38
                        : dtype == torch::kFloat16  ? -65504.0
                                                    : static_cast<double>(std::numeric_limits<float>::lowest());
  auto additive = [&](const torch::Tensor& visible, torch::IntArrayRef sizes) {
    return torch::zeros(sizes, torch::dtype(dtype).device(device)).masked_fill(visible.logical_not(), lowest);
  };
  if (layout.fused) {
    // The kernel reads the mask itself.
  } else if (layout.segments.empty()) {
    // Additive [B, 1, T, past + T]; indices are cache slots.
    auto visible = causal(past, past + t).view({1, 1, t, past + t});
    if (attention_mask.defined()) {
      const auto ids = attention_mask.to(torch::kInt64);
      const auto key_ids = ids.view({b, 1, 1, past + t}), query_ids = ids.slice(1, past).view({b, 1, t, 1});
      visible = visible.logical_and(key_ids != 0).logical_and(key_ids == query_ids);
    }
    layout.mask = additive(visible, {b, 1, t, past + t});
  } else {
    std::int64_t longest = 0;
    for (const auto& s : layout.segments) longest = std::max(longest, s.length);
    layout.causal = additive(causal(0, longest), {longest, longest});
  }

  const bool recompute = gradient_checkpointing && is_training() && !cache && torch::GradMode::is_enabled();
  for (std::size_t i = 0; i < layers->size(); ++i) {
    auto layer = std::dynamic_pointer_cast<DecoderLayerImpl>(layers->ptr(i));
    if (recompute) {
      h = checkpoint_activations([layer, cos, sin, layout, i](const torch::Tensor& x) {
                       return layer->forward(x, cos, sin, layout, nullptr, i);
                     },
                     h, layer->parameters());
    } else {
      h = layer->forward(h, cos, sin, layout, cache, i);
    }
  }
  if (cache) cache->length += t;
  return norm(h);
}

ModelDescription describe(const ModelConfig& c) {
  ModelDescription d;
  d.architecture = c.architecture;
  d.vocab_size = c.vocab_size;
  d.hidden_size = c.hidden_size;
  d.intermediate_size = c.intermediate_size;
  d.num_layers = c.num_hidden_layers;
  d.num_attention_heads = c.num_attention_heads;
  d.num_key_value_heads = c.num_key_value_heads;
  d.head_dim = c.head_dim;
  d.tied_embeddings = c.tie_word_embeddings;
  d.parameters = parameter_count(c);
  return d;
}

DecoderLM::DecoderLM(ModelConfig config) : config_(std::move(config)), description_(describe(config_)) {
  model = register_module("model", DecoderModel(config_));
  if (config_.head == Head::classification) {
    score = register_module("score", head(config_.hidden_size, config_.num_labels));
  } else if (!config_.tie_word_embeddings) {
    lm_head = register_module("lm_head", head(config_.hidden_size, config_.vocab_size));
  }
}

torch::Tensor DecoderLM::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                       const torch::Tensor& position_ids) {
  return model->forward(input_ids, attention_mask, position_ids);
}

torch::Tensor DecoderLM::hidden_states_cached(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                              const torch::Tensor& position_ids, KVCache& cache) {
  if (cache.capacity <= 0) throw std::invalid_argument("hidden_states_cached: the cache has no capacity");
  return model->forward(input_ids, attention_mask, position_ids, &cache);
}

torch::Tensor DecoderLM::output_weight() {
  if (score) return score->weight;
  if (lm_head) return lm_head->weight;
  return model->embed_tokens->weight;  // tied: the embedding is the output matrix
}

}  // namespace alignkit::hf
