// Sums and the exponential with results fixed by their operation order (cpu_kernels.h says why
// that matters). A sum runs in 16 lanes, element i into lane i % 16, then folds the lanes
// pairwise (16 -> 8 -> 4 -> 2 -> 1): one 512-bit vector, two 256-bit ones or four 128-bit ones
// hold the same lanes, so the compiler may vectorise at any width and the bits stay the same.
// Plain multiplies and adds only (the build does not fuse them), so no instruction set differs.
#pragma once

#include <cstdint>

namespace gptqw::linalg {

float sum(const float* x, int64_t n);
float sum_squares(const float* x, int64_t n);  // sum of x_i^2 in float
double sum_f64(const float* x, int64_t n);     // sum of x_i in double
// sum of a_i * b_i with each product and the sum in double (the product of two floats is exact
// in double), for measurements that must not lose precision to cancellation.
double dot_f64(const float* a, const float* b, int64_t n);
// sum of exp(x_i - shift) in double, the exponentials in fp32 by exp_inplace: the log-sum-exp
// of a row of logits with shift = its maximum.
double sum_exp_f64(const float* x, int64_t n, float shift);

// x_i = e^x_i with the kernel level's exp_inplace (cpu_kernels.h): the same bits everywhere,
// unlike the C library's expf, whose implementation the library picks by CPU.
void exp_inplace(float* x, int64_t n);

}  // namespace gptqw::linalg
