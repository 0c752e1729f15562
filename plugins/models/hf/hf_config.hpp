// A Hugging Face causal-LM config.json, read into the flags of our one decoder.
//
// Llama (2, 3.x with llama3 rope scaling, TinyLlama, SmolLM), Mistral, Qwen2 and Qwen3 differ by
// a few flags: biases on q/k/v, per-head q/k RMSNorm, the rope frequencies, tied embeddings and a
// sliding window. Each field keeps config.json's name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

// Torch-free, so that the config parser builds on its own (tests/fuzz/hf_config_fuzz.cpp).
namespace alignkit {
struct ModelDescription;  // alignkit/model_loader.hpp
}

namespace alignkit::hf {

enum class Head {
  causal_lm,       // ...ForCausalLM: lm_head over the vocabulary
  classification,  // ...ForSequenceClassification: a score head at every position (callers pool)
};

struct RopeScaling {
  std::string rope_type = "default";  // "default" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;  // e.g. "Qwen2ForCausalLM"
  std::string model_type;    // "llama", "mistral", "qwen2", "qwen3"
  Head head = Head::causal_lm;
  std::int64_t vocab_size = 0;
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  std::int64_t num_hidden_layers = 0;
  std::int64_t num_attention_heads = 0;
  std::int64_t num_key_value_heads = 0;
  std::int64_t head_dim = 0;
  std::int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;     // Qwen2 always; Llama and Qwen3 with attention_bias
  bool o_bias = false;       // Llama and Qwen3 with attention_bias
  bool mlp_bias = false;     // Llama's mlp_bias
  bool qk_norm = false;      // Qwen3
  std::optional<std::int64_t> sliding_window;  // Mistral (and Qwen2 with use_sliding_window)
  std::int64_t num_labels = 1;                 // classification head
  double initializer_range = 0.02;             // std of transformers' fresh Linear weights
  std::optional<std::int64_t> pad_token_id;
  std::optional<std::int64_t> bos_token_id;
  std::optional<std::int64_t> eos_token_id;
  std::string torch_dtype = "float32";
  std::string json;  // config.json as read, written back (re-serialised) when the model is saved
};

// Reads <dir>/config.json. Throws DiagnosticError naming the file and key for anything missing,
// mistyped or unsupported.
ModelConfig read_config(const std::filesystem::path& model_dir);

// The parameters of the model `config` describes; read_config refuses sizes whose count would
// exceed 2^50, so this and the byte counts derived from it fit in 64 bits.
std::int64_t parameter_count(const ModelConfig& config);

// Parameter count and shapes for the planner, from the config alone (in decoder.cpp).
ModelDescription describe(const ModelConfig& config);

// The same decoder as a ...ForSequenceClassification model with `labels` outputs, as
// AutoModelForSequenceClassification.from_pretrained(dir, num_labels=labels) configures it
// (architectures, id2label/label2id). A classification config must already have `labels`
// outputs; DiagnosticError naming <dir>/config.json otherwise.
ModelConfig as_classifier(ModelConfig config, std::int64_t labels, const std::filesystem::path& model_dir);

}  // namespace alignkit::hf
