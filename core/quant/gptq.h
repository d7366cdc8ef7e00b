// GPTQ for one linear layer (spec section 3; Frantar et al., arXiv 2210.17323, Algorithm 1):
// quantize W column by column, each column's rounding error spread over the columns not yet
// quantized through the inverse Hessian, so that ||W X - Q X||^2 stays small. Reproduces
// IST-DASLab gptq.py's fasterquant, with GPTQModel's damping raise on a failed Cholesky.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "quant/quantizer.h"

namespace gptqw {

struct GptqOptions {
  QuantConfig quant;
  int blocksize = 128;         // columns per lazy-batch block (the reference's default)
  double damp_fraction = 0.01;  // damping: damp_fraction * mean(diag(H)) added to the diagonal
  bool act_order = false;      // quantize columns in order of decreasing H[i,i] (desc_act)
  bool static_groups = false;  // group grids from the original W, before any update (needs
                               // group_size > 0; without groups it changes nothing)
  // When the Cholesky factorisation fails, raise damp_fraction by damp_step (GPTQModel's
  // damp_auto_increment) while it stays below damp_max; 0 disables the raise.
  double damp_step = 0.01;
  double damp_max = 1.0;
  // When no damping below damp_max succeeds: quantize with RTN and say so in the result
  // (true), or throw Error naming the layer (false).
  bool fallback_to_rtn = true;
  // A per-row grid given in advance (needs group_size == -1), used instead of the one found
  // on W: the reference's `if not quantizer.ready()`. Tests use it to fix the grid step.
  std::optional<Grid> fixed_grid;
  std::string layer;  // the layer's name, for messages ("model.layers.3.mlp.down_proj")
  // Called after each block with the fraction of columns done; returning false cancels
  // (gptq_quantize throws Cancelled).
  std::function<bool(double)> keep_going;

  void validate() const;  // throws ConfigError
};

struct GptqResult {
  QuantizedWeights weights;  // Q (fp32, original column order), codes, scales, zeros, g_idx
  // Act-order permutation: position j of the quantization order held input channel perm[j].
  // Empty without act-order (or after a fallback to RTN).
  std::vector<int32_t> perm;
  // The reference's printed error: sum over all weights of (w - q)^2 / Hinv[i,i]^2, halved
  // (gptq.py's Losses / 2 summed over blocks). AutoGPTQ and GPTQModel print this divided by
  // the number of calibration samples; we report it undivided, like the reference.
  double loss = 0;
  double damp_fraction = 0;  // the damping that succeeded (options.damp_fraction unless raised)
  float damp_abs = 0;        // the value added to the diagonal: damp_fraction * mean(diag(H))
  int damp_raises = 0;       // how many times the damping was raised
  bool fell_back_to_rtn = false;
  std::string note;           // what happened, when something did (raise, fallback), else empty
  int64_t dead_columns = 0;   // inputs with H[i,i] == 0 (weights zeroed)
  double seconds = 0;         // whole call (with the Hessian's factorization when it made it)
  double seconds_hinv = 0;    // damping + Cholesky + triangular inverse (0 for a shared factor)
  double seconds_blocks = 0;  // in-block column loops
  double seconds_lazy = 0;    // lazy batch updates
  double lazy_flops = 0;      // floating-point operations of the lazy batch updates
};

// Steps 1 (dead inputs), 3 (act-order) and 4-5 (damping, Hinv) of fasterquant: they depend on
// H and the damping/act-order options alone, not on W, so the modules that read the same
// inputs (q/k/v, gate/up) share one. Made in two stages: factor_hessian() stops at a Cholesky
// factor, which also gives exact reconstruction errors (pipeline/layer_metrics.h), and
// invert() turns it into GPTQ's Hinv (linalg/factor.h: chol(H^-1) = J chol(J H J)^-1 J).
struct HessianFactor {
  int64_t K = 0;
  std::vector<uint8_t> dead;   // [K] 1 where H[i,i] == 0 (input channel order)
  int64_t dead_columns = 0;
  std::vector<int32_t> perm;   // act-order: quantization position j is input channel perm[j]
  double damp_fraction = 0;    // as in GptqResult
  float damp_abs = 0;
  int damp_raises = 0;
  // No damping below damp_max made H positive definite in fp32: GPTQ falls back to RTN (or
  // throws, see GptqOptions::fallback_to_rtn).
  bool failed = false;
  std::string note;            // the raise or the failure, in words; else empty
  double seconds = 0;          // damping, factorization and inversion
  // Before invert(): L, the lower Cholesky factor of J Hq J, where Hq = P^T H' P + damp I is H
  // with dead diagonals set to 1, in quantization order, damped, and J reverses the order.
  // After: Hinv = J L^-1 J, the upper Cholesky factor of Hq^-1 that Algorithm 1 uses.
  // Empty when failed.
  Matrix M;
  bool inverted = false;

  void invert();
};

// Throws Error naming options.layer for a non-square or non-finite H, ConfigError for bad
// options. H is read, never copied: M is built from it in one pass, in the storage of
// `storage` when given (a previous factor's M of the same size, from a pool, so that a driver
// reuses one buffer for every layer's factor).
HessianFactor factor_hessian(const Eigen::Ref<const Matrix>& H, const GptqOptions& options,
                             Matrix storage = {});

// Quantizes W [N, K] (out_features x in_features) given the layer's Hessian H [K, K]: the
// factorization and the column loop together. Throws Error naming the layer for mismatched
// shapes or a non-finite value in W or H, ConfigError for bad options, Cancelled when
// keep_going says stop.
GptqResult gptq_quantize(const Eigen::Ref<const Matrix>& W, const Eigen::Ref<const Matrix>& H,
                         const GptqOptions& options, Backend& backend = best_backend());

// The same with a factor made (and inverted) beforehand by factor_hessian() with the same
// damping and act-order options: the codes are the same bits.
GptqResult gptq_quantize(const Eigen::Ref<const Matrix>& W, const HessianFactor& factor,
                         const GptqOptions& options, Backend& backend = best_backend());

// Act-order: input channels by decreasing H[i,i] (diag). torch.argsort is not stable, so the
// reference leaves the order of equal diagonals to the sort implementation; we use a stable
// sort, so equal diagonals keep increasing channel order (and H = c I gives the identity).
std::vector<int32_t> act_order_permutation(const Vector& diag);

// g_idx (spec section 3, item 8): the group of each input channel k.
//   no act-order, or act-order with static groups: k / group_size;
//   act-order without static groups: the group of the position k was quantized at,
//   invperm[k] / group_size.
// All 0 without groups.
std::vector<int32_t> make_g_idx(int64_t in_features, int group_size,
                                const std::vector<int32_t>& perm, bool static_groups);

}  // namespace gptqw
