// Activation checkpointing (Chen et al., 2016, https://arxiv.org/abs/1604.06174), as
// torch.utils.checkpoint does it: run a block without keeping its intermediate activations, and
// run it again in backward to get them. Costs one more forward of the block; saves everything the
// block would have kept for backward except its input.
#pragma once

#include <functional>
#include <vector>

#include <torch/types.h>

namespace alignkit {

// Returns block(input). `parameters` are the tensors the block reads that may need gradients
// (trainable weights): they are passed explicitly so gradients reach them even when `input`
// itself needs none (LoRA over frozen embeddings, where the reentrant form loses them). The RNG
// state is restored for the recomputation, so dropout draws the same mask twice.
torch::Tensor checkpoint_activations(std::function<torch::Tensor(const torch::Tensor&)> block, const torch::Tensor& input,
                         const std::vector<torch::Tensor>& parameters);

}  // namespace alignkit
