// The compute backend interface: the heavy operations of calibration, GPTQ and the forward
// pass, so that a CUDA backend can replace the CPU one operation by operation. The CPU backend
// (cpu_backend.h) is the specification: every other backend is tested against it.
//
// Matrices are row-major (common/tensor.h). Shapes use the paper's names: N = out_features,
// K = in_features, T = tokens, B = columns in one GPTQ block (count), G = groups.
#pragma once

#include <Eigen/Core>
#include <span>
#include <string>

#include "common/tensor.h"
#include "quant/quantizer.h"

namespace gptqw {

class Backend {
 public:
  virtual ~Backend() = default;

  // "cpu", "cuda:0 (NVIDIA ...)", for logs and reports.
  virtual std::string name() const = 0;

  // Hessian accumulation: H += (s X)^T (s X), the reference's `inp *= sqrt(2/n); H += inp
  // inp^T` with s = sqrt(2/n) (the caller rescales H for the running mean first).
  //   H  [K, K] symmetric, all of it stored and updated
  //   X  [T, K] inputs of the layer, one token per row
  virtual void accumulate_hessian(Eigen::Ref<Matrix> H, const Eigen::Ref<const Matrix>& X,
                                  float s) = 0;

  // Hinv = the upper Cholesky factor of H^-1, computed as the reference does in fp32:
  // Cholesky of H, inverse from the factor, Cholesky of the inverse, upper. Returns false,
  // without throwing, when either factorisation meets a non-positive or non-finite pivot, so
  // that the caller can raise the damping and try again; Hinv is then unspecified.
  //   H     [K, K] symmetric, damping already added
  //   Hinv  [K, K] out, upper triangular (zeros below the diagonal)
  virtual bool cholesky_inverse_upper(const Eigen::Ref<const Matrix>& H, Matrix& Hinv) = 0;

  // One block of the GPTQ column loop (Algorithm 1, lines "for i = i1 .. i2"): for each column
  // i of the block, in order, and each row independently:
  //   q = dequant(quant(w_i)) on the row's grid of column i; err = (w_i - q) / Hinv1[i,i];
  //   w_j -= err * Hinv1[i, j] for j > i.
  // Rows never interact, which is what lets a backend split the block over rows.
  //   W1        [N, B] in: the block of W with every earlier block's updates; out: clobbered
  //   Hinv1     [B, B] Hinv[i1:i2, i1:i2], upper triangular
  //   scales    [G, N] grids (only the groups that col_group names need to be filled)
  //   zeros     [G, N] integer-valued zero points
  //   col_group [B] the grid row (group) used for each column of the block
  //   maxq      2^bits - 1
  //   exact_ties  round with round_quotient (QuantConfig::exact_ties) instead of half to even
  //   Q1        [N, B] out: dequantized weights
  //   Err1      [N, B] out: err of each column, for the lazy batch update
  //   codes1    [N, B] out: integer codes
  // Returns sum over the block of (w - q)^2 / Hinv1[i,i]^2 (the reference's Losses1, before
  // its division by 2), accumulated in double.
  virtual double gptq_block(Eigen::Ref<Matrix> W1, const Eigen::Ref<const Matrix>& Hinv1,
                            const Eigen::Ref<const Matrix>& scales,
                            const Eigen::Ref<const Matrix>& zeros,
                            std::span<const int32_t> col_group, int maxq, bool exact_ties,
                            Eigen::Ref<Matrix> Q1, Eigen::Ref<Matrix> Err1,
                            Eigen::Ref<Codes> codes1) = 0;

  // The lazy batch update after a block: W[:, i2:] -= Err1 * Hinv[i1:i2, i2:].
  //   W_rest     [N, K - i2] (a view into W, row stride K)
  //   Err1       [N, B]
  //   Hinv_rows  [B, K - i2]
  virtual void lazy_batch_update(Eigen::Ref<Matrix> W_rest, const Eigen::Ref<const Matrix>& Err1,
                                 const Eigen::Ref<const Matrix>& Hinv_rows) = 0;

  // A linear layer's forward pass without bias: Y = X W^T.
  //   X [T, K], W [N, K], Y [T, N] out
  virtual void gemm_xwt(const Eigen::Ref<const Matrix>& X, const Eigen::Ref<const Matrix>& W,
                        Eigen::Ref<Matrix> Y) = 0;
};

// The CPU backend (Eigen, OpenMP): always available.
Backend& cpu_backend();

// Which backend to run on. auto_: the CUDA backend when this build has one and a device
// answers, else the CPU backend.
enum class Device { auto_, cpu, cuda };

// "auto", "cpu", "cuda" <-> Device (the CLI's --device, the report's settings); ConfigError
// naming the valid words otherwise.
Device parse_device(const std::string& word);
const char* device_name(Device device);

// The backend for a device choice. Throws ConfigError when cuda is asked for and is not
// available, with the reason: "this build has no CUDA backend" or "no CUDA device answers:
// <CUDA's error string or what is wrong with the device>".
Backend& backend_for(Device device);

// One line for logs, the GUI and the CLI: the CUDA device in use ("cuda:0 (NVIDIA H100 80GB
// HBM3), compute capability 9.0, 79.1 GiB, driver CUDA 13.0, runtime CUDA 13.0"), or why
// there is none ("this build has no CUDA backend", "no CUDA device answers: ...").
std::string cuda_status();

// backend_for(Device::auto_): the fastest backend that answers on this machine.
Backend& best_backend();

// The CUDA backend, created on the first call, or nullptr when there is none; *why (when not
// null) receives cuda_status()'s line either way. Thread-safe; the device is probed once per
// process. Implemented in kernels/ when this build has the CUDA backend (GPTQW_HAVE_CUDA), by
// core/backend/cuda_stub.cpp otherwise, so that the core never includes a CUDA header.
Backend* cuda_backend_or_null(std::string* why);

}  // namespace gptqw
