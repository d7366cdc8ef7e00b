// The CPU backend: core/linalg's kernels (one per instruction-set level, chosen at run time)
// parallelised with OpenMP. It is the specification every other backend is compared with, and
// its results are the same bits on every x86-64 CPU and at every thread count (linalg/
// cpu_kernels.h). Thread count: OpenMP's (OMP_NUM_THREADS; set_threads()).
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
                    std::span<const int32_t> col_group, int maxq, bool exact_ties,
                    Eigen::Ref<Matrix> Q1, Eigen::Ref<Matrix> Err1,
                    Eigen::Ref<Codes> codes1) override;
  void lazy_batch_update(Eigen::Ref<Matrix> W_rest, const Eigen::Ref<const Matrix>& Err1,
                         const Eigen::Ref<const Matrix>& Hinv_rows) override;
  void gemm_xwt(const Eigen::Ref<const Matrix>& X, const Eigen::Ref<const Matrix>& W,
                Eigen::Ref<Matrix> Y) override;
};

}  // namespace gptqw
