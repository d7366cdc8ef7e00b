// Fixed-order sums (see reduce.h). The loops are written lane by lane so that GCC
// vectorises them without reordering anything: it never reassociates floating point.
#include "linalg/reduce.h"

#include <cstddef>
#include <vector>

#include "linalg/cpu_kernels.h"

namespace gptqw::linalg {

namespace {

constexpr int kLanes = 16;

// Folds the lanes pairwise: 16 -> 8 -> 4 -> 2 -> 1.
template <class T>
T fold(T* acc) {
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// Accumulates term(i) into lane i % 16 for i in [0, n), then folds.
template <class T, class Term>
T lane_sum(int64_t n, Term term) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  for (int l = 0; i + l < n; ++l) acc[l] += term(i + l);
  return fold(acc);
}

}  // namespace

float sum(const float* x, int64_t n) {
  return lane_sum<float>(n, [x](int64_t i) { return x[i]; });
}

float sum_squares(const float* x, int64_t n) {
  return lane_sum<float>(n, [x](int64_t i) { return x[i] * x[i]; });
}

double sum_f64(const float* x, int64_t n) {
  return lane_sum<double>(n, [x](int64_t i) { return double(x[i]); });
}

double dot_f64(const float* a, const float* b, int64_t n) {
  return lane_sum<double>(n, [a, b](int64_t i) { return double(a[i]) * double(b[i]); });
}

double sum_exp_f64(const float* x, int64_t n, float shift) {
  thread_local std::vector<float> e;
  e.resize(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) e[i] = x[i] - shift;
  exp_inplace(e.data(), n);
  return sum_f64(e.data(), n);
}

void exp_inplace(float* x, int64_t n) {
  cpu_kernels().exp_inplace(x, n);
}

}  // namespace gptqw::linalg
