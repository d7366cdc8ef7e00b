// The CPU backend: Eigen (row-major, blocked GEMM) parallelised with OpenMP. It is the
// specification every other backend is compared with. Thread count: Eigen's and OpenMP's
// (Eigen::setNbThreads / OMP_NUM_THREADS); set_threads() sets both.
#pragma once

#include "backend/backend.h"

namespace gptqw {

class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  void accumulate_hessian(Eigen::Ref<Matrix> H, const Eigen::Ref<const Matrix>& X,
                          float s) override;
  bool cholesky_inverse_upper(const Eigen::Ref<const Matrix>& H, Matrix& Hinv) override;
  double gptq_block(Eigen::Ref<Matrix> W1, const Eigen::Ref<const Matrix>& Hinv1,
                    const Eigen::Ref<const Matrix>& scales, const Eigen::Ref<const Matrix>& zeros,
                    std::span<const int32_t> col_group, int maxq, Eigen::Ref<Matrix> Q1,
                    Eigen::Ref<Matrix> Err1, Eigen::Ref<Codes> codes1) override;
  void lazy_batch_update(Eigen::Ref<Matrix> W_rest, const Eigen::Ref<const Matrix>& Err1,
                         const Eigen::Ref<const Matrix>& Hinv_rows) override;
  void gemm_xwt(const Eigen::Ref<const Matrix>& X, const Eigen::Ref<const Matrix>& W,
                Eigen::Ref<Matrix> Y) override;
};


// The dense building blocks of cholesky_inverse_upper, on the lower triangle of A in place
// (the strictly upper part is ignored and left as it is). Exposed for tests and benchmarks.
// A = L L^T; false on a non-positive or non-finite pivot.
bool cholesky_lower_inplace(Eigen::Ref<Matrix> A);
// L <- L^-1 for lower-triangular L.
void triangular_inverse_lower_inplace(Eigen::Ref<Matrix> L);
// L <- L^T L (lower triangle of the symmetric result).
void lauum_lower_inplace(Eigen::Ref<Matrix> L);

}  // namespace gptqw
