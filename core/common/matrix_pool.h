// Large matrices handed from one step of a long run to the next, so that a buffer one layer
// is done with serves the next layer of the same size. Without it, glibc maps every block this
// large afresh (mmap) and the kernel zeroes each page on first touch: for a 7B model that is
// gigabytes of fresh pages per block (Hessians, factors, weight-sized temporaries).
#pragma once

#include <vector>

#include "common/tensor.h"

namespace gptqw {

class MatrixPool {
 public:
  // Holds at most max_idle_bytes between uses: a buffer kept idle through the phases that do
  // not need it adds to the run's peak memory, so only buffers up to that budget are kept.
  explicit MatrixPool(size_t max_idle_bytes) : max_idle_(max_idle_bytes) {}

  // A rows x cols matrix, elements unspecified: a returned one with the same number of
  // elements when the pool holds one (no allocation), else a new one.
  Matrix take(Eigen::Index rows, Eigen::Index cols);
  // Keeps m's storage for a later take(), or frees it when that would exceed the budget.
  void give(Matrix&& m);
  // Memory held now, in bytes.
  size_t bytes() const;

 private:
  size_t max_idle_;
  std::vector<Matrix> free_;
};

}  // namespace gptqw
