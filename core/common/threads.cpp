#include "common/threads.h"

#include <Eigen/Core>
#include <omp.h>

namespace gptqw {

int set_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
  return n;
}

int thread_count() { return omp_get_max_threads(); }

}  // namespace gptqw
