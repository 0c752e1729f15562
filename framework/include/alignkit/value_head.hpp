// Scalar heads over a causal LM's hidden states: what reward and value models read.
//
// sequence_scores() pools a model's output (a ...ForSequenceClassification `score` head) at each
// row's last real token, as transformers' reward models do. ValueHead is TRL's value head
// (AutoModelForCausalLMWithValueHead: dropout, then Linear(hidden, 1) named "v_head.summary"),
// giving one value per position for PPO's critic; it saves and loads under TRL's key names.
#pragma once

#include <filesystem>
#include <optional>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <alignkit/model_loader.hpp>

namespace alignkit {

// [batch, outputs] at the last position whose attention mask is 1 (for right- or left-padded
// rows alike), or, given the pad id, at the rightmost token that is not it: transformers'
// pooling by config.pad_token_id, which differs where the pad id is also a real token (a
// tokenizer without a pad token pads with EOS, so every row's final EOS counts as padding).
torch::Tensor sequence_scores(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              std::optional<std::int64_t> pad_token_id = std::nullopt);

class ValueHeadImpl : public torch::nn::Module {
 public:
  // dropout: TRL's summary_dropout_prob (0.1 by default).
  explicit ValueHeadImpl(std::int64_t hidden_size, double dropout = 0.1);
  // hidden: [batch, seq, hidden] -> values [batch, seq], computed in fp32.
  torch::Tensor forward(const torch::Tensor& hidden);

  // "v_head.summary.weight" / "v_head.summary.bias" in <file> (safetensors), as TRL names them.
  void save(const std::filesystem::path& file) const;
  void load(const std::filesystem::path& file);  // DiagnosticError naming the file on a mismatch

  torch::nn::Linear summary{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(ValueHead);

}  // namespace alignkit
