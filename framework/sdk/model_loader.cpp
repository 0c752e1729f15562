#include <alignkit/model_loader.hpp>

namespace alignkit {

ModelLoader::~ModelLoader() = default;
CausalLM::~CausalLM() = default;

torch::Tensor CausalLM::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& position_ids) {
  return torch::matmul(hidden_states(input_ids, attention_mask, position_ids), output_weight().t());
}

}  // namespace alignkit
