// warmup_stable_decay: warm up, hold the base rate, then decay over the last steps of the run.
//
//   warmup (step < W):        f = c + (1 - c) * shape_w(step / max(1, W))
//   stable (W <= step < W+S): f = 1
//   decay  (step < W+S+D):    f = c + (1 - c) * shape_d((step - W - S) / max(1, D))
//   after:                    f = c
//
// with c = min_lr_ratio, D the decay steps (num_decay_steps, or ceil(decay_ratio * total)),
// S = total - W - D, and shapes linear (p / 1 - p), cosine (0.5(1 - cos(pi p)) /
// 0.5(1 + cos(2 pi num_cycles p))) or 1-sqrt (1 - sqrt(1 - p) / 1 - sqrt(p)). This is transformers'
// get_wsd_schedule (WSD: Hu et al., MiniCPM, 2024, https://arxiv.org/abs/2404.06395).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include <fmt/format.h>

#include <alignkit/recipe_section.hpp>
#include <alignkit/scheduler.hpp>

namespace {

const alignkit::OptionSpec kOptions[] = {
    {.key = "num_decay_steps", .type = alignkit::OptionType::integer,
     .doc = "Steps of the decay phase at the end of the run. Set this or decay_ratio.", .min = 0},
    {.key = "decay_ratio", .type = alignkit::OptionType::floating,
     .doc = "The decay phase as a fraction of max_steps (rounded up). Set this or num_decay_steps.",
     .min = 0, .max = 1},
    {.key = "warmup_type", .type = alignkit::OptionType::string, .default_value = "\"linear\"",
     .doc = "Shape of the warmup.", .choices = "linear|cosine|1-sqrt"},
    {.key = "decay_type", .type = alignkit::OptionType::string, .default_value = "\"cosine\"",
     .doc = "Shape of the decay.", .choices = "linear|cosine|1-sqrt"},
    {.key = "min_lr_ratio", .type = alignkit::OptionType::floating, .default_value = "0.0",
     .doc = "Where warmup starts and decay ends, as a fraction of the base learning rate.", .min = 0, .max = 1},
    {.key = "num_cycles", .type = alignkit::OptionType::floating, .default_value = "0.5",
     .doc = "Cosine waves over the decay phase (cosine decay only).", .min = 0, .min_exclusive = true},
};

enum class Shape { linear, cosine, one_minus_sqrt };

Shape parse_shape(const std::string& name) {
  if (name == "cosine") return Shape::cosine;
  if (name == "1-sqrt") return Shape::one_minus_sqrt;
  return Shape::linear;  // the validator admits only the declared choices
}

class WarmupStableDecayScheduler final : public alignkit::Scheduler {
 public:
  explicit WarmupStableDecayScheduler(const alignkit::RecipeSection& options)
      : warmup_type_(parse_shape(options.get_string("warmup_type"))),
        decay_type_(parse_shape(options.get_string("decay_type"))),
        min_lr_ratio_(options.get_float("min_lr_ratio")),
        num_cycles_(options.get_float("num_cycles")) {
    const bool steps = options.has("num_decay_steps"), ratio = options.has("decay_ratio");
    if (steps == ratio)
      throw alignkit::DiagnosticError(options.error(
          steps ? "decay_ratio" : "num_decay_steps",
          steps ? "is set together with num_decay_steps" : "is not set; the decay phase needs a length",
          "set exactly one of num_decay_steps and decay_ratio"));
    if (steps) decay_steps_ = options.get_int("num_decay_steps");
    else decay_ratio_ = options.get_float("decay_ratio");
    decay_key_where_ = options.error(steps ? "num_decay_steps" : "decay_ratio", "");
  }

  void check(const alignkit::ScheduleShape& shape) const override {
    const std::int64_t decay = decay_steps(shape);
    if (decay > shape.total_steps || shape.warmup_steps > shape.total_steps - decay) {  // no overflow
      alignkit::Diagnostic d = decay_key_where_;
      d.message += fmt::format("warmup ({}) plus decay ({}) is longer than the run ({} steps)",
                               shape.warmup_steps, decay, shape.total_steps);
      d.help = "shorten the warmup or the decay, or raise [training] max_steps";
      throw alignkit::DiagnosticError(d);
    }
  }

  double lr_factor(std::int64_t step, const alignkit::ScheduleShape& shape) const override {
    const std::int64_t warmup = shape.warmup_steps;
    const std::int64_t decay = decay_steps(shape);
    const std::int64_t stable = std::max<std::int64_t>(0, shape.total_steps - warmup - decay);
    const double c = min_lr_ratio_;
    if (step < warmup) {
      const double p = static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup));
      double f = p;
      if (warmup_type_ == Shape::cosine) f = 0.5 * (1.0 - std::cos(std::numbers::pi * p));
      if (warmup_type_ == Shape::one_minus_sqrt) f = 1.0 - std::sqrt(1.0 - p);
      return std::max(0.0, f * (1.0 - c) + c);
    }
    if (step < warmup + stable) return 1.0;
    if (step < warmup + stable + decay) {
      const double p = static_cast<double>(step - warmup - stable) /
                       static_cast<double>(std::max<std::int64_t>(1, decay));
      double f = 1.0 - p;
      if (decay_type_ == Shape::cosine) f = 0.5 * (1.0 + std::cos(std::numbers::pi * num_cycles_ * 2.0 * p));
      if (decay_type_ == Shape::one_minus_sqrt) f = 1.0 - std::sqrt(p);
      return std::max(0.0, f * (1.0 - c) + c);
    }
    return c;
  }

 private:
  std::int64_t decay_steps(const alignkit::ScheduleShape& shape) const {
    if (decay_steps_ >= 0) return decay_steps_;
    return static_cast<std::int64_t>(std::ceil(decay_ratio_ * static_cast<double>(shape.total_steps)));
  }

  Shape warmup_type_, decay_type_;
  double min_lr_ratio_, num_cycles_;
  std::int64_t decay_steps_ = -1;
  double decay_ratio_ = 0;
  alignkit::Diagnostic decay_key_where_;  // location of the decay key, for check()
};

std::unique_ptr<WarmupStableDecayScheduler> make(const alignkit::RecipeSection& options) {
  return std::make_unique<WarmupStableDecayScheduler>(options);
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::scheduler, "warmup_stable_decay", "1.0.0",
                                            "Warmup, a stable phase at the base rate, then decay "
                                            "(transformers' warmup_stable_decay)",
                                            kOptions))
