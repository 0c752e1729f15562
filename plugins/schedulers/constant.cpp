// constant: the base learning rate after an optional linear warmup.
//
//   factor(step) = step / max(1, warmup)   for step < warmup
//                = 1                        after
//
// transformers' get_constant_schedule_with_warmup; with no warmup it is get_constant_schedule.
#include <alignkit/recipe_section.hpp>
#include <alignkit/scheduler.hpp>

#include "warmup.hpp"

namespace {

class ConstantScheduler final : public alignkit::Scheduler {
 public:
  double lr_factor(std::int64_t step, const alignkit::ScheduleShape& shape) const override {
    return step < shape.warmup_steps ? alignkit::schedulers::linear_warmup(step, shape.warmup_steps) : 1.0;
  }
};

std::unique_ptr<ConstantScheduler> make(const alignkit::RecipeSection&) {
  return std::make_unique<ConstantScheduler>();
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::scheduler, "constant", "1.0.0",
                                            "Constant learning rate after linear warmup (transformers' "
                                            "constant_with_warmup)"))
