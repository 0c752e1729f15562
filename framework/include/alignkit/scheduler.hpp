// Scheduler: the learning-rate schedule, as a multiplier of the optimizer's base rate.
//
// The host owns the step counts: it resolves warmup from [scheduler] warmup_steps or
// warmup_ratio (transformers' rule: warmup_steps if > 0, else ceil(ratio * total)) and the total
// from [training], and passes both in a ScheduleShape. A plugin only maps (step, shape) to a factor.
#pragma once

#include <cstdint>

#include <alignkit/plugin.hpp>

namespace alignkit {

struct ScheduleShape {
  std::int64_t total_steps = 0;   // optimizer updates in the run
  std::int64_t warmup_steps = 0;  // updates spent warming up, <= total_steps
};

class Scheduler : public PluginObject {
 public:
  ~Scheduler() override;

  // Throws DiagnosticError when the plugin's options cannot make a schedule of this shape (for
  // example a decay phase longer than the run). The host calls it once, before any work.
  virtual void check(const ScheduleShape& shape) const;

  // The factor for the update made after `step` completed updates (step 0 is the first update):
  // the convention of torch's LambdaLR and of transformers' schedules.
  virtual double lr_factor(std::int64_t step, const ScheduleShape& shape) const = 0;
};

// Keys the host owns in every [scheduler] section; a scheduler plugin may not declare them.
inline constexpr const char* kSchedulerHostKeys[] = {"name", "warmup_steps", "warmup_ratio"};

}  // namespace alignkit
