// Seeded matrices and quantizer settings shared by the numeric tests and the benchmarks. Plain
// C++ and Eigen (no Qt), so that bench/ includes it too.
#pragma once

#include <random>

#include "common/tensor.h"
#include "quant/quantizer.h"

namespace gptqw::test {

// rows x cols of N(0, sd^2) from std::mt19937(seed): the same matrix for a seed with one
// standard library (the normal distribution's algorithm is the library's).
inline Matrix random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, float sd = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sd);
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

inline QuantConfig quant_config(int bits, bool sym, int group_size = -1, bool mse = false) {
  QuantConfig c;
  c.bits = bits;
  c.sym = sym;
  c.group_size = group_size;
  c.mse = mse;
  return c;
}

}  // namespace gptqw::test
