// The linear warmup every transformers schedule starts with: step / max(1, warmup).
#pragma once

#include <algorithm>
#include <cstdint>

namespace alignkit::schedulers {

inline double linear_warmup(std::int64_t step, std::int64_t warmup_steps) {
  return static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, warmup_steps));
}

}  // namespace alignkit::schedulers
