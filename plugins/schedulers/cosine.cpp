// cosine: linear warmup, then a cosine from the base rate down to min_lr_rate times it.
//
//   progress     = (step - warmup) / max(1, total - warmup)
//   factor(step) = step / max(1, warmup)                                     for step < warmup
//                = max(0, c + (1 - c) * 0.5 * (1 + cos(pi * 2 * num_cycles * progress)))  after
//
// with c = min_lr_rate. transformers' get_cosine_schedule_with_warmup (c = 0) and
// get_cosine_with_min_lr_schedule_with_warmup (its `min_lr_rate`), from SGDR (Loshchilov &
// Hutter, 2017, https://arxiv.org/abs/1608.03983).
#include <algorithm>
#include <cmath>
#include <numbers>

#include <alignkit/recipe_section.hpp>
#include <alignkit/scheduler.hpp>

#include "warmup.hpp"

namespace {

const alignkit::OptionSpec kOptions[] = {
    {.key = "num_cycles", .type = alignkit::OptionType::floating, .default_value = "0.5",
     .doc = "Cosine waves over the decay; 0.5 is a half wave from the base rate down to the minimum.",
     .min = 0, .min_exclusive = true},
    {.key = "min_lr_rate", .type = alignkit::OptionType::floating, .default_value = "0.0",
     .doc = "The floor as a fraction of the base learning rate (transformers' cosine_with_min_lr).",
     .min = 0, .max = 1},
};

class CosineScheduler final : public alignkit::Scheduler {
 public:
  explicit CosineScheduler(const alignkit::RecipeSection& options)
      : num_cycles_(options.get_float("num_cycles")), min_lr_rate_(options.get_float("min_lr_rate")) {}

  double lr_factor(std::int64_t step, const alignkit::ScheduleShape& shape) const override {
    if (step < shape.warmup_steps) return alignkit::schedulers::linear_warmup(step, shape.warmup_steps);
    const double progress = static_cast<double>(step - shape.warmup_steps) /
                            static_cast<double>(std::max<std::int64_t>(1, shape.total_steps - shape.warmup_steps));
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles_ * 2.0 * progress));
    return std::max(0.0, cosine * (1.0 - min_lr_rate_) + min_lr_rate_);
  }

 private:
  double num_cycles_;
  double min_lr_rate_;
};

std::unique_ptr<CosineScheduler> make(const alignkit::RecipeSection& options) {
  return std::make_unique<CosineScheduler>(options);
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::scheduler, "cosine", "1.0.0",
                                            "Linear warmup, then cosine decay to min_lr_rate (transformers' "
                                            "cosine and cosine_with_min_lr)",
                                            kOptions))
