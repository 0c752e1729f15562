// Loading and saving a model's weights in Hugging Face's layout: model.safetensors, or shards
// listed by model.safetensors.index.json.
#pragma once

#include <filesystem>
#include <set>
#include <string>

#include <torch/nn/module.h>

#include <alignkit/model_loader.hpp>

namespace alignkit::hf {

// Fills every parameter of `module` from the directory's safetensors files by name, converting to
// the requested device and dtype (no copy when they already match: the parameter then views the
// memory-mapped file). Throws DiagnosticError naming the file and tensor for a missing tensor, a
// shape mismatch, or a tensor in the files that the model has no place for.
// Throws DiagnosticError naming the folder when it holds no safetensors weights: checked before a
// model is built, since building a large one costs seconds.
void check_weights_present(const std::filesystem::path& dir);

// `fresh`: parameters the files need not hold (a new head, initialised by the caller); `unused`:
// tensors in the files the model leaves out (the lm_head a classifier drops).
void load_weights(torch::nn::Module& module, const std::filesystem::path& model_dir, const LoadOptions& options,
                  const std::set<std::string>& fresh = {}, const std::set<std::string>& unused = {});

// Writes every parameter to <model_dir>/model.safetensors (atomically) under its name.
void save_weights(const torch::nn::Module& module, const std::filesystem::path& model_dir);

}  // namespace alignkit::hf
