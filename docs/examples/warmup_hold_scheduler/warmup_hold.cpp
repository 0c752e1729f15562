// warmup_hold: linear warmup, a hold at the base rate, then a linear decay to final_lr_rate.
//
// With W the warmup steps the host resolved ([scheduler] warmup_steps or warmup_ratio),
// H = hold_steps, T = total_steps ([training] max_steps) and c = final_lr_rate:
//
//   warmup (step < W):          f = step / max(1, W)
//   hold   (W <= step < W + H): f = 1
//   decay  (step >= W + H):     f = c + (1 - c) * max(0, T - step) / max(1, T - W - H)
//
// The decay follows the convention of the in-tree `linear` and `warmup_stable_decay` schedulers
// (and of transformers): f reaches c at step == T, the end of the run, so the last update
// (step T - 1) runs at c + (1 - c) / (T - W - H). With H = 0 and c = 0 this is exactly `linear`.
//
// An example for docs/plugin-guide.md: it builds against an installed alignkit SDK with
// find_package(alignkit) and alignkit_add_plugin(); see CMakeLists.txt beside it.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include <alignkit/diagnostic.hpp>
#include <alignkit/plugin.hpp>
#include <alignkit/recipe_section.hpp>
#include <alignkit/scheduler.hpp>

namespace {

// The keys this plugin adds to [scheduler]. The host validates them (type, bounds) and fills in
// the defaults before the factory runs, so the code below never repeats a default or a range.
// `name`, `warmup_steps` and `warmup_ratio` belong to the host and may not be declared here.
const alignkit::OptionSpec kOptions[] = {
    {.key = "hold_steps", .type = alignkit::OptionType::integer, .default_value = "0",
     .doc = "Steps at the base learning rate between the warmup and the decay.", .min = 0},
    {.key = "final_lr_rate", .type = alignkit::OptionType::floating, .default_value = "0.0",
     .doc = "Where the decay ends, at the end of the run, as a fraction of the base learning rate.",
     .min = 0, .max = 1},
};

class WarmupHoldScheduler final : public alignkit::Scheduler {
 public:
  explicit WarmupHoldScheduler(const alignkit::RecipeSection& options)
      : hold_steps_(options.get_int("hold_steps")),
        final_lr_rate_(options.get_float("final_lr_rate")),
        // The section belongs to the host: keep values, not the section. For check(), keep a
        // diagnostic that already points at hold_steps (its file:line:column, or the [scheduler]
        // header when it has its default); check() adds the message once it knows the run's length.
        hold_where_(options.error("hold_steps", "")) {}

  void check(const alignkit::ScheduleShape& shape) const override {
    if (shape.warmup_steps + hold_steps_ > shape.total_steps) {
      alignkit::Diagnostic d = hold_where_;
      d.message += "warmup (" + std::to_string(shape.warmup_steps) + ") plus hold (" +
                   std::to_string(hold_steps_) + ") is longer than the run (" +
                   std::to_string(shape.total_steps) + " steps)";
      d.help = "shorten the warmup or hold_steps, or raise [training] max_steps";
      throw alignkit::DiagnosticError(d);
    }
  }

  double lr_factor(std::int64_t step, const alignkit::ScheduleShape& shape) const override {
    const std::int64_t warmup = shape.warmup_steps;
    if (step < warmup)
      return static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup));
    if (step < warmup + hold_steps_) return 1.0;
    const double remaining = static_cast<double>(std::max<std::int64_t>(0, shape.total_steps - step));
    const double span =
        static_cast<double>(std::max<std::int64_t>(1, shape.total_steps - warmup - hold_steps_));
    const double c = final_lr_rate_;
    return c + (1.0 - c) * remaining / span;
  }

 private:
  std::int64_t hold_steps_;
  double final_lr_rate_;
  alignkit::Diagnostic hold_where_;
};

// The typed factory: receives the validated [scheduler] section, returns the object the host owns.
std::unique_ptr<WarmupHoldScheduler> make(const alignkit::RecipeSection& options) {
  return std::make_unique<WarmupHoldScheduler>(options);
}

}  // namespace

// Exports `alignkit_plugin_entry`, which returns this metadata. The host checks it (magic, API
// version, build ABI, kind, name, options) before it ever calls `make`.
ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::scheduler, "warmup_hold", "1.0.0",
                                            "Linear warmup, a hold at the base rate for hold_steps, "
                                            "then linear decay to final_lr_rate",
                                            kOptions))
