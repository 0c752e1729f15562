#include <alignkit/value_head.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <alignkit/diagnostic.hpp>
#include <alignkit/safetensors.hpp>

namespace alignkit {

torch::Tensor sequence_scores(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              std::optional<std::int64_t> pad_token_id) {
  const auto hidden = model.hidden_states(input_ids, attention_mask, torch::Tensor());
  const auto columns = torch::arange(input_ids.size(1), input_ids.options());
  const auto kept = pad_token_id ? (input_ids != *pad_token_id).to(torch::kInt64) : attention_mask.to(torch::kInt64);
  const auto last = (columns * kept).argmax(-1);
  const auto pooled = hidden.index({torch::arange(input_ids.size(0), input_ids.options()), last});
  return torch::matmul(pooled, model.output_weight().t()).to(torch::kFloat32);
}

ValueHeadImpl::ValueHeadImpl(std::int64_t hidden_size, double dropout) : dropout_(dropout) {
  summary = register_module("summary", torch::nn::Linear(hidden_size, 1));
}

torch::Tensor ValueHeadImpl::forward(const torch::Tensor& hidden) {
  auto x = dropout_ > 0 ? torch::dropout(hidden, dropout_, is_training()) : hidden;
  // TRL casts the hidden states to the head's dtype; the head stays fp32 like the adapters.
  return summary(x.to(summary->weight.scalar_type())).squeeze(-1);
}

void ValueHeadImpl::save(const std::filesystem::path& file) const {
  safetensors::save(file, {{"v_head.summary.weight", summary->weight}, {"v_head.summary.bias", summary->bias}},
                    {{"format", "pt"}});
}

void ValueHeadImpl::load(const std::filesystem::path& file) {
  const auto weights = safetensors::File::open(file);
  torch::NoGradGuard no_grad;
  for (auto [name, target] : {std::pair{"v_head.summary.weight", summary->weight},
                              std::pair{"v_head.summary.bias", summary->bias}}) {
    if (!weights.find(name)) throw_file_error(file.string(), fmt::format("has no tensor '{}'", name));
    const auto t = weights.tensor(name);
    if (t.sizes() != target.sizes())
      throw_file_error(file.string(), fmt::format("tensor '{}' has shape {}, the value head needs {}", name,
                                                  fmt::join(t.sizes(), "x"), fmt::join(target.sizes(), "x")));
    target.copy_(t);
  }
}

}  // namespace alignkit
