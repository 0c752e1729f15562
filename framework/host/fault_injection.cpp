#include "fault_injection.hpp"

#include <csignal>
#include <cstdlib>
#include <string>

namespace alignkit {

namespace {

struct Fault {
  std::string point;
  long at = 0;
  int signal = 0;
  long seen = 0;
};

// Parsed once; a malformed value disables injection rather than failing a real run.
Fault* configured_fault() {
  static Fault* fault = [] () -> Fault* {
    const char* spec = std::getenv("ALIGNKIT_FAULT");
    if (!spec || !*spec) return nullptr;
    const std::string s = spec;
    const auto first = s.find(':'), second = s.find(':', first == std::string::npos ? first : first + 1);
    if (first == std::string::npos || second == std::string::npos) return nullptr;
    static Fault f;
    f.point = s.substr(0, first);
    f.at = std::strtol(s.substr(first + 1, second - first - 1).c_str(), nullptr, 10);
    const auto name = s.substr(second + 1);
    f.signal = name == "KILL" ? SIGKILL : name == "TERM" ? SIGTERM : name == "INT" ? SIGINT : 0;
    return f.at > 0 && f.signal != 0 ? &f : nullptr;
  }();
  return fault;
}

}  // namespace

void fault_point(const char* point) {
  auto* fault = configured_fault();
  if (fault && fault->point == point && ++fault->seen == fault->at) std::raise(fault->signal);
}

}  // namespace alignkit
