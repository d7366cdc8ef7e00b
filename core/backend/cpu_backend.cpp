// The CPU backend: each operation of the Backend interface in terms of core/linalg.
#include "backend/cpu_backend.h"

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "linalg/cpu_kernels.h"
#include "linalg/factor.h"
#include "linalg/gemm.h"

namespace gptqw {

using Eigen::Index;

namespace {

// A[i, j] = A[j, i] for j > i: copy the lower triangle to the upper one, in tiles so that the
// transposed reads stay in cache.
void mirror_lower_to_upper(Eigen::Ref<Matrix> A) {
  const Index n = A.rows(), t = 64;
#pragma omp parallel for schedule(dynamic) if (n > 512)
  for (Index bi = 0; bi < n; bi += t)
    for (Index bj = bi; bj < n; bj += t)
      for (Index i = bi; i < std::min(bi + t, n); ++i)
        for (Index j = std::max(bj, i + 1); j < std::min(bj + t, n); ++j) A(i, j) = A(j, i);
}

}  // namespace

void CpuBackend::accumulate_hessian(Eigen::Ref<Matrix> H, const Eigen::Ref<const Matrix>& X,
                                    float s) {
  // Scale the inputs first, as the reference does (inp = sqrt(2/n) * inp), so that the
  // rounding is the same; then the lower triangle of (sX)^T (sX) (half the flops of the whole
  // product), mirrored.
  const Matrix Xs = X * s;
  linalg::gemm(linalg::mut_view(H), linalg::view_t(Xs), linalg::view(Xs), linalg::Update::add,
               linalg::Part::lower);
  mirror_lower_to_upper(H);
}

bool CpuBackend::cholesky_inverse_upper(const Eigen::Ref<const Matrix>& H, Matrix& Hinv) {
  // The reference's chol(H) -> cholesky_inverse -> chol(., upper) in two steps instead of four
  // (linalg/factor.h); all fp32, like the reference, so a Hessian too ill-conditioned for fp32
  // fails here and the caller raises the damping.
  return linalg::inverse_cholesky_upper(H, Hinv);
}

double CpuBackend::gptq_block(Eigen::Ref<Matrix> W1, const Eigen::Ref<const Matrix>& Hinv1,
                              const Eigen::Ref<const Matrix>& scales,
                              const Eigen::Ref<const Matrix>& zeros,
                              std::span<const int32_t> col_group, int maxq, bool exact_ties,
                              Eigen::Ref<Matrix> Q1, Eigen::Ref<Matrix> Err1,
                              Eigen::Ref<Codes> codes1) {
  // Rows never interact, so the block is cut into tiles of R rows, each run through the whole
  // sequential column loop on its own, the rows as vector lanes (linalg's gptq_tile).
  constexpr Index R = linalg::kGptqLanes;
  const Index N = W1.rows(), B = W1.cols();
  const auto& kern = linalg::cpu_kernels();
  if (zeros.outerStride() != scales.outerStride() || zeros.rows() != scales.rows())
    throw Error("gptq_block: the zero points " + shape_str({zeros.rows(), zeros.cols()}) +
                " are not laid out like the scales " + shape_str({scales.rows(), scales.cols()}));
  std::vector<double> row_loss(N);
#pragma omp parallel
  {
    std::vector<float> t(B * R), tq(B * R), te(B * R), tc(B * R);
    double tile_loss[R];
#pragma omp for schedule(static)
    for (Index r0 = 0; r0 < N; r0 += R) {
      const Index rows = std::min(R, N - r0);
      // Padding lanes hold x = 0 (on the grid (1, 0)): finite, and never written back.
      std::fill(t.begin(), t.end(), 0.0f);
      for (Index l = 0; l < rows; ++l)
        for (Index j = 0; j < B; ++j) t[j * R + l] = W1(r0 + l, j);
      kern.gptq_tile(B, rows, t.data(), Hinv1.data(), Hinv1.outerStride(), col_group.data(),
                     scales.data() + r0, zeros.data() + r0, scales.outerStride(),
                     static_cast<float>(maxq), exact_ties, tq.data(), te.data(), tc.data(),
                     tile_loss);
      for (Index l = 0; l < rows; ++l) {
        for (Index j = 0; j < B; ++j) {
          Q1(r0 + l, j) = tq[j * R + l];
          Err1(r0 + l, j) = te[j * R + l];
          codes1(r0 + l, j) = static_cast<uint8_t>(tc[j * R + l]);
        }
        row_loss[r0 + l] = tile_loss[l];
      }
    }
  }
  // Summed in row order, so the total does not depend on how the rows were shared out.
  double loss = 0;
  for (double v : row_loss) loss += v;
  return loss;
}

void CpuBackend::lazy_batch_update(Eigen::Ref<Matrix> W_rest, const Eigen::Ref<const Matrix>& Err1,
                                   const Eigen::Ref<const Matrix>& Hinv_rows) {
  linalg::matmul(W_rest, Err1, Hinv_rows, linalg::Update::subtract);
}

void CpuBackend::gemm_xwt(const Eigen::Ref<const Matrix>& X, const Eigen::Ref<const Matrix>& W,
                          Eigen::Ref<Matrix> Y) {
  linalg::matmul_nt(Y, X, W);
}

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace gptqw
