#include "loss_scaler.hpp"

#include <cmath>

namespace alignkit {

bool DynamicLossScaler::unscale(const std::vector<torch::Tensor>& gradients) const {
  torch::NoGradGuard no_grad;
  // GradScaler computes the reciprocal in double and applies it as a float; with the default
  // factors the scale is a power of two, so the division is exact.
  const auto inverse = static_cast<float>(1.0 / scale_);
  bool found_inf = false;
  for (const auto& g : gradients) {
    if (!g.defined()) continue;
    g.mul_(inverse);
    if (!found_inf && !torch::isfinite(g).all().item<bool>()) found_inf = true;
  }
  return found_inf;
}

void DynamicLossScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ == options_.growth_interval) {
    // The scale is an fp32 tensor in GradScaler: it stops growing where float would overflow.
    if (std::isfinite(static_cast<float>(scale_ * options_.growth_factor))) scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
}

}  // namespace alignkit
