// The Hessian of one linear layer's reconstruction loss ||W X - Q X||^2, accumulated over
// calibration batches as the reference does (spec section 2): a running mean over sequences,
// H = (2 / n) * sum x x^T, in fp32.
#pragma once

#include <cstdint>
#include <string>

#include "backend/backend.h"
#include "common/tensor.h"

namespace gptqw {

class HessianAccumulator {
 public:
  // in_features: K; layer: name used in error messages ("model.layers.0.self_attn.q_proj");
  // storage: where H lives when given (a matrix of in_features^2 elements from a pool), so that
  // a driver reuses one buffer for every layer's Hessian.
  explicit HessianAccumulator(int64_t in_features, std::string layer = {},
                              Backend& backend = best_backend(), Matrix storage = {});

  // Adds one batch: X [tokens, K] holds the inputs of n_sequences sequences (the reference's
  // `tmp = inp.shape[0]` before flattening, so n counts sequences, not tokens). Runs
  //   H *= n / (n + b); n += b; H += (sqrt(2/n) X)^T (sqrt(2/n) X).
  // Throws Error naming the layer for a wrong width or a non-finite input.
  void add_batch(const Eigen::Ref<const Matrix>& X, int64_t n_sequences);

  const Matrix& H() const { return H_; }
  int64_t n_samples() const { return n_; }
  int64_t in_features() const { return H_.rows(); }
  const std::string& layer() const { return layer_; }
  // Input channels never seen non-zero (H[i,i] == 0): GPTQ zeroes their weights.
  int64_t dead_columns() const;
  void reset();
  // Hands H's storage back (to a pool); the accumulator is empty afterwards.
  Matrix release() { return std::move(H_); }

 private:
  Matrix H_;
  int64_t n_ = 0;
  std::string layer_;
  Backend* backend_;
};

// Number of i with H[i,i] == 0.
int64_t count_dead_columns(const Eigen::Ref<const Matrix>& H);

}  // namespace gptqw
