#include <alignkit/available_memory.hpp>

#include <fstream>

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>

namespace alignkit {

std::optional<std::int64_t> cpu_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  while (in >> key) {
    if (key == "MemAvailable:") {
      std::int64_t kib = 0;
      if (in >> kib) return kib * 1024;
      return std::nullopt;
    }
    in.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

void require_cpu_memory(std::int64_t needed, const std::string& what, const std::string& file) {
  const auto available = cpu_available_bytes();
  if (!available || needed <= *available) return;
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  throw_file_error(file,
                   fmt::format("{} needs {:.1f} GiB, and this machine has {:.1f} GiB available (MemAvailable in "
                               "/proc/meminfo)",
                               what, static_cast<double>(needed) / kGiB, static_cast<double>(*available) / kGiB),
                   "check the sizes in config.json; a model this large needs a bigger machine (`alignkit plan` "
                   "gives what a recipe needs)");
}

}  // namespace alignkit
