#include "pipeline/statistics.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace gptqw {

double standard_error(double mean, double mean_sq, int64_t n) {
  if (n < 2) return 0;
  const double var = mean_sq - mean * mean;
  return var > 0 ? std::sqrt(var / static_cast<double>(n - 1)) : 0;
}

Estimate mean_estimate(double sum, double sum_sq, int64_t n) {
  if (n < 1) return {};
  const double m = sum / static_cast<double>(n);
  return {m, standard_error(m, sum_sq / static_cast<double>(n), n)};
}

double mean_covariance(double sum_a, double sum_b, double sum_ab, int64_t n) {
  if (n < 2) return 0;
  const double dn = static_cast<double>(n);
  return (sum_ab / dn - (sum_a / dn) * (sum_b / dn)) / (dn - 1);
}

Estimate proportion_estimate(int64_t k, int64_t n) {
  if (n < 1) return {};
  const double p = static_cast<double>(k) / static_cast<double>(n);
  return {p, n < 2 ? 0 : std::sqrt(p * (1 - p) / static_cast<double>(n - 1))};
}

Estimate exp_estimate(Estimate x) {
  const double v = std::exp(x.value);
  return {v, v * x.se};
}

Estimate sqrt_estimate(Estimate m) {
  if (m.value <= 0) return {};
  const double r = std::sqrt(m.value);
  return {r, 0.5 / r * m.se};
}

double percentile(std::span<const float> v, double fraction) {
  if (v.empty()) return 0;
  if (fraction <= 0) return v.front();
  if (fraction >= 1) return v.back();
  const double p = fraction * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(p);
  const double f = p - static_cast<double>(i);
  const size_t j = std::min(i + 1, v.size() - 1);
  return (1 - f) * double(v[i]) + f * double(v[j]);
}

double student_t_975(int64_t dof) {
  // t_{0.975}(dof) for dof = 1..30: bisection on the upper tail, the tail integrated
  // numerically from the density (agrees with the printed tables to their 3 decimals).
  static constexpr std::array<double, 30> kTable = {
      12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
      2.262157,  2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905,
      2.109816,  2.100922, 2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899,
      2.059539,  2.055529, 2.051831, 2.048407, 2.045230, 2.042272};
  if (dof < 1) dof = 1;
  if (dof <= 30) return kTable[static_cast<size_t>(dof - 1)];
  // Cornish-Fisher: t = z + g1/v + g2/v^2 + g3/v^3 + g4/v^4 (Abramowitz & Stegun 26.7.5).
  const double z = 1.959963984540054, v = static_cast<double>(dof);
  const double z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
  const double g1 = (z3 + z) / 4;
  const double g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
  const double g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
  const double g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
  return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

}  // namespace gptqw
