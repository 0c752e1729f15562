#include <alignkit/activation_checkpoint.hpp>

#include <ATen/Context.h>
#include <torch/autograd.h>
#include <torch/custom_class.h>

namespace alignkit {

namespace {

// What backward needs besides tensors: the block and the RNG state it ran with.
struct Recompute : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> block;
  at::Generator generator;
  torch::Tensor rng_state;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& input,
                               torch::TensorList parameters, c10::intrusive_ptr<Recompute> recompute) {
    recompute->rng_state = recompute->generator.get_state();
    ctx->save_for_backward({input});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    ctx->saved_data["parameters"] = static_cast<std::int64_t>(parameters.size());
    ctx->saved_data["parameter_list"] = parameters.vec();
    // Grad mode is off inside a custom Function's forward: nothing of the block is kept.
    return recompute->block(input);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto recompute = c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    const auto parameters = ctx->saved_data["parameter_list"].toTensorVector();
    const auto saved = ctx->get_saved_variables();
    const auto input = saved[0].detach().requires_grad_(saved[0].requires_grad());

    const auto current_state = recompute->generator.get_state();
    recompute->generator.set_state(recompute->rng_state);
    torch::Tensor output;
    {
      torch::AutoGradMode grad(true);
      output = recompute->block(input);
    }
    recompute->generator.set_state(current_state);

    std::vector<torch::Tensor> wrt;
    if (input.requires_grad()) wrt.push_back(input);
    for (const auto& p : parameters) wrt.push_back(p);
    std::vector<torch::Tensor> grads;
    if (!wrt.empty() && output.requires_grad())
      grads = torch::autograd::grad({output}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                    /*create_graph=*/false, /*allow_unused=*/true);
    torch::autograd::variable_list result;
    std::size_t next = 0;
    result.push_back(input.requires_grad() && !grads.empty() ? grads[next++] : torch::Tensor());
    for (std::size_t i = 0; i < parameters.size(); ++i) result.push_back(grads.empty() ? torch::Tensor() : grads[next++]);
    result.emplace_back();  // the Recompute holder
    return result;
  }
};

}  // namespace

torch::Tensor checkpoint_activations(std::function<torch::Tensor(const torch::Tensor&)> block, const torch::Tensor& input,
                         const std::vector<torch::Tensor>& parameters) {
  if (!torch::GradMode::is_enabled()) return block(input);
  std::vector<torch::Tensor> trainable;
  for (const auto& p : parameters)
    if (p.requires_grad()) trainable.push_back(p);
  if (!input.requires_grad() && trainable.empty()) return block(input);
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->block = std::move(block);
  recompute->generator = at::globalContext().defaultGenerator(input.device());
  return CheckpointFunction::apply(input, torch::TensorList(trainable), recompute);
}

}  // namespace alignkit
