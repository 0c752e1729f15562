// SIGINT and SIGTERM during training: the first one asks the loop to finish its step, write a
// checkpoint and exit; a second one ends the process at once, as the signal normally would.
#pragma once

#include <csignal>

namespace alignkit {

class StopSignals {
 public:
  StopSignals();   // installs the handlers
  ~StopSignals();  // restores the previous ones
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The signal received (SIGINT or SIGTERM), or 0.
  int requested() const;
  // What the last StopSignals received, also after it is gone: a signal during a run's last step
  // lets that run end normally, and whoever runs more work after it (the next stage) stops.
  static int last_received();

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace alignkit
