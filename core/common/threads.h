// One place that sets how many threads the engine uses (OpenMP loops and Eigen's GEMMs).
#pragma once

namespace gptqw {

// n <= 0: all hardware threads. Returns the number now in use.
int set_threads(int n);
int thread_count();

}  // namespace gptqw
