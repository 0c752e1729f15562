// Progress of a long command on stderr. On a terminal, one line rewritten in place with "\r"; in a
// log (CI, nohup, `| tee`), whole lines at a bounded rate, at most one per `interval` plus the last,
// so a log holds "eval: 32/100 prompts" lines rather than every update joined by carriage returns.
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include <unistd.h>

namespace alignkit::cli {

class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;

  ProgressLine(std::ostream& out, bool terminal, Clock::duration interval = std::chrono::seconds(10))
      : out_(out), terminal_(terminal), interval_(interval) {}

  // Shows `text`; `last` marks the final update, which is always shown and ends the line.
  void update(const std::string& text, bool last, Clock::time_point now = Clock::now()) {
    if (terminal_) {
      out_ << '\r' << text << (last ? "\n" : "") << std::flush;
      return;
    }
    if (!last && shown_ && now - last_shown_ < interval_) return;
    out_ << text << '\n' << std::flush;
    shown_ = true;
    last_shown_ = now;
  }

 private:
  std::ostream& out_;
  bool terminal_;
  Clock::duration interval_;
  bool shown_ = false;
  Clock::time_point last_shown_;
};

inline bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

}  // namespace alignkit::cli
