// The benches' timer: one untimed warm-up run (allocations, gradient buffers), then the best of
// `iterations` timed runs, in seconds.
#pragma once

#include <algorithm>
#include <chrono>

namespace alignkit::bench {

template <typename F>
double best_seconds(int iterations, F&& run) {
  using Clock = std::chrono::steady_clock;
  run();
  double best = 1e30;
  for (int i = 0; i < iterations; ++i) {
    const auto start = Clock::now();
    run();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - start).count());
  }
  return best;
}

}  // namespace alignkit::bench
