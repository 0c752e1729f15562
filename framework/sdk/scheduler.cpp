#include <alignkit/scheduler.hpp>

namespace alignkit {

Scheduler::~Scheduler() = default;
void Scheduler::check(const ScheduleShape&) const {}

}  // namespace alignkit
