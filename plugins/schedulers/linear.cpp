// linear: linear warmup, then linear decay to zero at the last step.
//
//   factor(step) = step / max(1, warmup)                                    for step < warmup
//                = max(0, (total - step) / max(1, total - warmup))          after
//
// transformers' get_linear_schedule_with_warmup, the default lr_scheduler_type.
#include <algorithm>

#include <alignkit/recipe_section.hpp>
#include <alignkit/scheduler.hpp>

#include "warmup.hpp"

namespace {

class LinearScheduler final : public alignkit::Scheduler {
 public:
  double lr_factor(std::int64_t step, const alignkit::ScheduleShape& shape) const override {
    if (step < shape.warmup_steps) return alignkit::schedulers::linear_warmup(step, shape.warmup_steps);
    const double remaining = static_cast<double>(shape.total_steps - step);
    const double span = static_cast<double>(std::max<std::int64_t>(1, shape.total_steps - shape.warmup_steps));
    return std::max(0.0, remaining / span);
  }
};

std::unique_ptr<LinearScheduler> make(const alignkit::RecipeSection&) {
  return std::make_unique<LinearScheduler>();
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::scheduler, "linear", "1.0.0",
                                            "Linear warmup, then linear decay to 0 (transformers' default "
                                            "schedule)"))
