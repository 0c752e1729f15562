#include "optimizer_step.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>

#include <fmt/format.h>
#include <torch/nn/utils/clip_grad.h>

#include <alignkit/safetensors.hpp>
#include <alignkit/torch_compat.hpp>

namespace alignkit {

namespace fs = std::filesystem;
using AdamWState = torch::optim::AdamWParamState;

OptimizerStep::OptimizerStep(torch::nn::Module& model, const TrainingSettings& training,
                             const OptimizerSettings& optimizer)
    : max_grad_norm_(optimizer.max_grad_norm) {
  std::vector<bool> decays;
  for (const auto& item : model.named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const auto& name = item.key();
    const bool is_norm = name.find("norm") != std::string::npos;
    decays.push_back(!(item.value().dim() < 2 || is_norm || name.find("bias") != std::string::npos));
    trainable_.push_back(item.value());
    names_.push_back(name);
  }
  // Mixed precision: AdamW updates fp32 master copies of the trainable tensors that are not
  // fp32 (full fine-tuning in bf16/fp16; LoRA adapters are fp32 already and need none).
  const bool low_precision = std::any_of(trainable_.begin(), trainable_.end(),
                                         [](const torch::Tensor& p) { return p.scalar_type() != torch::kFloat32; });
  if (low_precision && training.float32_master_weights)
    for (const auto& p : trainable_)
      masters_.push_back(p.scalar_type() == torch::kFloat32 ? p
                                                            : p.detach().to(torch::kFloat32).set_requires_grad(true));
  // fp16 gradients underflow without it (torch.cuda.amp.GradScaler).
  if (training.dtype == torch::kFloat16) scaler_.emplace();
  std::vector<torch::Tensor> decay, no_decay;
  for (std::size_t i = 0; i < trainable_.size(); ++i) (decays[i] ? decay : no_decay).push_back(optimized()[i]);
  auto options = torch::optim::AdamWOptions(optimizer.learning_rate)
                     .betas({optimizer.beta1, optimizer.beta2})
                     .eps(optimizer.epsilon)
                     .weight_decay(optimizer.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decay.empty()) groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(options));
  if (!no_decay.empty()) {
    auto no_decay_options = std::make_unique<torch::optim::AdamWOptions>(options);
    no_decay_options->weight_decay(0.0);
    groups.emplace_back(no_decay, std::move(no_decay_options));
  }
  adamw_ = std::make_unique<torch::optim::AdamW>(std::move(groups), options);
}

std::int64_t OptimizerStep::trainable_parameters() const {
  std::int64_t n = 0;
  for (const auto& p : trainable_) n += p.numel();
  return n;
}

void OptimizerStep::set_learning_rate(double lr) {
  for (auto& group : adamw_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

void OptimizerStep::after_backward() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < masters_.size(); ++i) {
    if (masters_[i].is_same(trainable_[i])) continue;
    auto& grad = trainable_[i].mutable_grad();
    if (!grad.defined()) continue;
    auto& master_grad = masters_[i].mutable_grad();
    if (master_grad.defined()) master_grad.add_(grad);
    else master_grad = grad.to(torch::kFloat32);
    grad.reset();
  }
}

double OptimizerStep::step(std::int64_t step_number) {
  if (scaler_) {
    std::vector<torch::Tensor> grads;
    for (const auto& p : optimized()) grads.push_back(p.grad());
    const double scale = scaler_->scale();
    const bool found_inf = scaler_->unscale(grads);
    scaler_->update(found_inf);
    if (found_inf) {
      std::cerr << fmt::format("step {}: the fp16 gradients overflowed at loss scale {}; step skipped, scale now {}\n",
                               step_number, scale, scaler_->scale());
      const double norm = clip_gradients(0);
      compat::zero_grad_in_place(*adamw_);
      return norm;
    }
  }
  const double grad_norm = clip_gradients(max_grad_norm_);
  adamw_->step();
  compat::zero_grad_in_place(*adamw_);
  copy_masters_to_model();
  return grad_norm;
}

// The model's weights are the masters rounded to the compute dtype.
void OptimizerStep::copy_masters_to_model() {
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < masters_.size(); ++i)
    if (!masters_[i].is_same(trainable_[i])) trainable_[i].copy_(masters_[i]);
}

double OptimizerStep::clip_gradients(double max_norm) {
  std::vector<torch::Tensor> with_grad;
  for (const auto& p : optimized())
    if (p.grad().defined()) with_grad.push_back(p);
  if (with_grad.empty()) return 0.0;
  if (max_norm > 0) return torch::nn::utils::clip_grad_norm_(with_grad, max_norm);
  double total = 0;
  for (const auto& p : with_grad) total += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
  return std::sqrt(total);
}

AdamWState* OptimizerStep::adamw_state(const torch::Tensor& parameter) const {
  auto& states = adamw_->state();
  auto it = states.find(compat::optimizer_state_key(*adamw_, parameter));
  return it == states.end() ? nullptr : static_cast<AdamWState*>(it->second.get());
}

void OptimizerStep::save(const fs::path& dir, const std::function<void()>& after_file) const {
  std::vector<std::pair<std::string, torch::Tensor>> weights, moments;
  for (std::size_t i = 0; i < trainable_.size(); ++i) {
    const auto& name = names_[i];
    weights.emplace_back(name, optimized()[i].detach());
    if (const auto* state = adamw_state(optimized()[i])) {
      moments.emplace_back(name + ".exp_avg", state->exp_avg());
      moments.emplace_back(name + ".exp_avg_sq", state->exp_avg_sq());
      moments.emplace_back(name + ".step", torch::tensor(state->step(), torch::kInt64));
    }
  }
  safetensors::save(dir / "trainable.safetensors", weights);
  after_file();
  safetensors::save(dir / "optimizer.safetensors", moments);
  after_file();
}

void OptimizerStep::restore(const fs::path& dir, const std::function<void(const std::string&)>& refuse) {
  const auto weights = safetensors::File::open(dir / "trainable.safetensors");
  const auto moments = safetensors::File::open(dir / "optimizer.safetensors");
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < trainable_.size(); ++i) {
    const auto& name = names_[i];
    const auto saved = weights.tensor(name);
    const auto& target = optimized()[i];
    if (saved.sizes() != target.sizes()) refuse(fmt::format("holds {} with another shape", name));
    target.copy_(saved);
    if (!moments.find(name + ".exp_avg")) continue;
    auto restored = std::make_unique<AdamWState>();
    restored->step(moments.tensor(name + ".step").item<std::int64_t>());
    // In the dtype AdamW keeps them in (a checkpoint of another master_weights setting converts).
    restored->exp_avg(moments.tensor(name + ".exp_avg").to(target.device(), target.scalar_type()).clone());
    restored->exp_avg_sq(moments.tensor(name + ".exp_avg_sq").to(target.device(), target.scalar_type()).clone());
    adamw_->state()[compat::optimizer_state_key(*adamw_, target)] = std::move(restored);
  }
  copy_masters_to_model();
}

std::optional<nlohmann::json> OptimizerStep::scaler_state() const {
  if (!scaler_) return std::nullopt;
  return nlohmann::json{{"scale", scaler_->scale()}, {"growth_tracker", scaler_->growth_tracker()}};
}

void OptimizerStep::restore_scaler(const nlohmann::json& state) {
  if (scaler_) scaler_->restore(state.at("scale").get<double>(), state.at("growth_tracker").get<std::int64_t>());
}

}  // namespace alignkit
