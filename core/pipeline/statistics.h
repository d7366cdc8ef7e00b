// The estimators behind every "±" of the quality statistics, defined as llama.cpp's perplexity
// tool defines them (tools/perplexity/perplexity.cpp: perplexity()'s final estimate, and
// kl_divergence()'s mean_and_uncertainty, covariance and percentile):
//
//   mean          m  = (1/n) sum x_i
//   its SE        se = sqrt((mean(x^2) - m^2) / (n - 1))
//                 (the population variance over n - 1, which is the sample variance s^2 over
//                 n: se = s / sqrt(n)); llama.cpp: mean_and_uncertainty
//   covariance    cov(m_a, m_b) = (mean(a b) - m_a m_b) / (n - 1)   of two means over the same
//                 n positions; llama.cpp: covariance
//   proportion    p = k / n,  se = sqrt(p (1 - p) / (n - 1))         ("Same top p")
//   exp           exp(m) +- exp(m) se                                 (PPL from mean NLL)
//   sqrt          sqrt(m) +- se / (2 sqrt(m))                         (RMS from mean square)
//   percentile    sorted v_0..v_{n-1}, fraction f: linear interpolation at f (n - 1), the median
//                 (f = 0.5) being the mean of the two middle values for even n
//
// Two deliberate differences: llama.cpp reports a standard error of 0 below 11 values and
// prints no summary below 100; here it is computed from 2 values on (below 2 it is 0), and the
// caller sees the count. A variance that rounds below 0 gives 0, and sqrt of a zero mean square
// gives 0 +- 0, so no estimate is ever NaN.
//
// These errors treat positions as independent samples. Neighbouring tokens of a text are
// correlated, so they understate the real uncertainty; the early stop (divergence_summary.h)
// therefore also looks at the spread between windows (student_t_975).
#pragma once

#include <cstdint>
#include <span>

namespace gptqw {

// A value and its standard error.
struct Estimate {
  double value = 0;
  double se = 0;
};

// sqrt((mean_sq - mean^2) / (n - 1)); 0 for n < 2.
double standard_error(double mean, double mean_sq, int64_t n);
// The mean of n values from their sum and sum of squares, with its standard error.
Estimate mean_estimate(double sum, double sum_sq, int64_t n);
// Covariance of the means of a and b over the same n positions: (mean(ab) - mean(a) mean(b)) /
// (n - 1); 0 for n < 2.
double mean_covariance(double sum_a, double sum_b, double sum_ab, int64_t n);
// k of n, with the binomial standard error; 0 +- 0 for n == 0.
Estimate proportion_estimate(int64_t k, int64_t n);
// exp of an estimated logarithm: exp(x) +- exp(x) se_x (first order).
Estimate exp_estimate(Estimate log_value);
// sqrt of an estimated mean square: sqrt(m) +- se_m / (2 sqrt(m)); 0 +- 0 when m <= 0.
Estimate sqrt_estimate(Estimate mean_square);

// The value at `fraction` (0..1) of values sorted ascending, interpolated linearly at
// fraction x (n - 1) (llama.cpp's percentile(), numpy's default); 0 for an empty list.
double percentile(std::span<const float> sorted, double fraction);

// The 97.5% quantile of Student's t distribution with dof >= 1 degrees of freedom: the factor of
// a two-sided 95% interval from dof + 1 samples. Exact to 6 digits for dof <= 30 (a table
// computed by integrating the density), the Cornish-Fisher expansion to 1/dof^4 above (error
// below 2e-8 relative there), 1.959964 as dof grows.
double student_t_975(int64_t dof);

}  // namespace gptqw
