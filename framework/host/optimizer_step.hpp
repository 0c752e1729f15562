// The optimizer step both loops share: AdamW with transformers' parameter groups over the
// policy's trainable tensors, fp32 master weights under mixed precision, dynamic loss scaling in
// float16, gradient clipping, and the learning rate of each step; with what a checkpoint saves
// of it (the trained tensors and AdamW's moments) and restores.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include "loss_scaler.hpp"
#include "recipe_settings.hpp"

namespace alignkit {

class OptimizerStep {
 public:
  // Over `model`'s parameters that require gradients, by name. Biases and norm weights get no
  // weight decay (transformers' get_decay_parameter_names).
  OptimizerStep(torch::nn::Module& model, const TrainingSettings& training, const OptimizerSettings& optimizer);

  std::int64_t trainable_parameters() const;
  bool has_masters() const { return !masters_.empty(); }
  const std::vector<std::string>& names() const { return names_; }

  void set_learning_rate(double lr);
  // What a micro-batch's loss is multiplied by before backward (fp16: the loss scale, else 1).
  double loss_scale() const { return scaler_ ? scaler_->scale() : 1.0; }
  // After each micro-batch's backward: under mixed precision its low-precision gradients are
  // added, in fp32, to the masters' and freed, so accumulation happens in fp32.
  void after_backward();
  // Unscales (fp16), clips to max_grad_norm, steps AdamW and copies the masters into the model;
  // returns the gradient norm before clipping. A step whose fp16 gradients overflowed is skipped,
  // as GradScaler skips it, and the scale backs off.
  double step(std::int64_t step_number);

  // Checkpoints: trainable.safetensors (the trained tensors under the model's names; the fp32
  // masters under mixed precision, so a resume is exact) and optimizer.safetensors (moments and
  // step counts), each file followed by `after_file`; the loss scaler in the trainer state.
  void save(const std::filesystem::path& dir, const std::function<void()>& after_file) const;
  // Throws through `refuse` (which must not return) for a checkpoint of other tensors.
  void restore(const std::filesystem::path& dir, const std::function<void(const std::string&)>& refuse);
  std::optional<nlohmann::json> scaler_state() const;
  void restore_scaler(const nlohmann::json& state);

 private:
  // The tensors AdamW updates: the fp32 masters under mixed precision, else the trainable ones.
  const std::vector<torch::Tensor>& optimized() const { return masters_.empty() ? trainable_ : masters_; }
  torch::optim::AdamWParamState* adamw_state(const torch::Tensor& parameter) const;
  void copy_masters_to_model();
  double clip_gradients(double max_norm);

  double max_grad_norm_;
  std::vector<torch::Tensor> trainable_;
  std::vector<std::string> names_;
  // Mixed precision: one per trainable tensor, an fp32 copy (or the tensor itself when it is
  // fp32); empty when AdamW updates the trainable tensors in place.
  std::vector<torch::Tensor> masters_;
  std::optional<DynamicLossScaler> scaler_;  // float16 only (torch.cuda.amp.GradScaler)
  std::unique_ptr<torch::optim::AdamW> adamw_;
};

}  // namespace alignkit
