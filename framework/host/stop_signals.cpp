#include "stop_signals.hpp"

#include <unistd.h>

namespace alignkit {

namespace {

volatile std::sig_atomic_t g_requested = 0;

extern "C" void on_stop_signal(int signal) {
  if (g_requested != 0) {
    // The second signal: the default action, now.
    std::signal(signal, SIG_DFL);
    std::raise(signal);
    return;
  }
  g_requested = signal;
  constexpr char kMessage[] = "\nstopping: the current step finishes, then a checkpoint is written (signal again to "
                              "stop at once)\n";
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
}

}  // namespace

StopSignals::StopSignals() {
  g_requested = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESTART: a signal in the middle of a write does not turn into a failed write.
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

int StopSignals::requested() const { return g_requested; }

int StopSignals::last_received() { return g_requested; }

}  // namespace alignkit
