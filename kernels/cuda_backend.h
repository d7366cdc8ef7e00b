// The CUDA backend: Backend (core/backend/backend.h) on one NVIDIA GPU, fp32 throughout, with
// cuBLAS (SYRK, GEMM; CUBLAS_DEFAULT_MATH, so no TF32), cuSOLVER (POTRF, POTRI) and this
// folder's kernels (cuda_kernels.cuh). The CPU backend is its specification:
// tests/tst_cuda_backend.cpp compares every operation with it.
//
// The interface is host-to-host: each call uploads its operands, computes, downloads its
// results and waits, so the caller sees no difference from the CPU backend. One cuBLAS and one
// cuSOLVER handle on one stream live as long as the backend, with one grow-only device arena
// for the operands. Calls are serialised by a mutex (the handles are not re-entrant).
//
// Row-major (the engine's layout) against column-major (cuBLAS/cuSOLVER): a row-major [R, C]
// matrix with row stride ld is the column-major [C, R] matrix with leading dimension ld, its
// transpose; each operation below says how it maps.
//
// Errors from CUDA, cuBLAS or cuSOLVER throw gptqw::Error naming the operation, the call, the
// library's error string and the shapes.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstddef>
#include <mutex>
#include <string>

#include "backend/backend.h"

namespace gptqw {

class CudaBackend final : public Backend {
 public:
  // Sets up `device` (handles, stream). Throws Error when it cannot.
  explicit CudaBackend(int device);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override { return name_; }
  // cuda_status()'s line: name, compute capability, memory, driver and runtime versions.
  const std::string& status() const { return status_; }

  void accumulate_hessian(Eigen::Ref<Matrix> H, const Eigen::Ref<const Matrix>& X,
                          float s) override;
  bool cholesky_inverse_upper(const Eigen::Ref<const Matrix>& H, Matrix& Hinv) override;
  double gptq_block(Eigen::Ref<Matrix> W1, const Eigen::Ref<const Matrix>& Hinv1,
                    const Eigen::Ref<const Matrix>& scales, const Eigen::Ref<const Matrix>& zeros,
                    std::span<const int32_t> col_group, int maxq, bool exact_ties,
                    Eigen::Ref<Matrix> Q1, Eigen::Ref<Matrix> Err1,
                    Eigen::Ref<Codes> codes1) override;
  void lazy_batch_update(Eigen::Ref<Matrix> W_rest, const Eigen::Ref<const Matrix>& Err1,
                         const Eigen::Ref<const Matrix>& Hinv_rows) override;
  void gemm_xwt(const Eigen::Ref<const Matrix>& X, const Eigen::Ref<const Matrix>& W,
                Eigen::Ref<Matrix> Y) override;

 private:
  // The device arena: at least `bytes`, grown (never shrunk) on demand; its content does not
  // survive a growth. `what` names the operation for the out-of-memory message.
  char* arena(std::size_t bytes, const std::string& what);

  int device_;
  std::string name_, status_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cusolverDnHandle_t solver_ = nullptr;
  char* arena_ = nullptr;
  std::size_t arena_bytes_ = 0;
  std::mutex mutex_;
};

}  // namespace gptqw
