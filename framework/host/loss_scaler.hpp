// Dynamic loss scaling for float16 training, as torch.cuda.amp.GradScaler does it: the loss is
// multiplied by a scale before backward so small gradients survive fp16's narrow range; the
// gradients are divided by it before clipping and the step; a step whose gradients hold an inf or
// a NaN is skipped and the scale halved; after `growth_interval` clean steps in a row it doubles.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace alignkit {

class DynamicLossScaler {
 public:
  // GradScaler's defaults.
  struct Options {
    double init_scale = 65536.0;
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    std::int64_t growth_interval = 2000;
  };

  DynamicLossScaler() : DynamicLossScaler(Options{}) {}
  explicit DynamicLossScaler(Options options) : options_(options), scale_(options.init_scale) {}

  // What the loss is multiplied by before backward.
  double scale() const { return scale_; }
  // Clean steps since the scale last changed.
  std::int64_t growth_tracker() const { return growth_tracker_; }

  // Divides each defined gradient by the scale in place (GradScaler.unscale_: multiplies by the
  // fp32 reciprocal); returns whether any holds an inf or a NaN, in which case the step is skipped.
  bool unscale(const std::vector<torch::Tensor>& gradients) const;

  // After a step: back off on an overflow, grow after growth_interval clean steps (_amp_update_scale_).
  void update(bool found_inf);

  // For checkpoints: a resumed run scales as the uninterrupted one would.
  void restore(double scale, std::int64_t growth_tracker) {
    scale_ = scale;
    growth_tracker_ = growth_tracker;
  }

 private:
  Options options_;
  double scale_;
  std::int64_t growth_tracker_ = 0;
};

}  // namespace alignkit
