// Timing helpers shared by the benchmark programs.
#pragma once

#include <algorithm>
#include <chrono>

namespace gptqw::bench {

// Seconds on the monotonic clock.
inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The shortest of reps runs of f, in seconds: the least disturbed by whatever else runs.
template <typename F>
double best_of(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t = now();
    f();
    best = std::min(best, now() - t);
  }
  return best;
}

}  // namespace gptqw::bench
