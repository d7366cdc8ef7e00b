// The CPU backend. The dense factorisations are recursive (split in halves, recurse, update
// the off-diagonal block with one large TRSM/TRMM/SYRK) rather than Eigen's LLT, whose fixed
// 128-wide panels leave its rank updates at a fraction of GEMM speed on large matrices.
#include "backend/cpu_backend.h"

#include <omp.h>

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <algorithm>
#include <vector>

namespace gptqw {

using Eigen::Index;

namespace {

// Below this size the factorisations run unblocked (Eigen's own LLT / triangular solves): the
// block then fits in L2 and recursion would only add overhead.
constexpr Index kLeaf = 256;

// Split point of a recursive factorisation: half, rounded up to a multiple of 16 floats so
// that the blocks start on 64-byte boundaries of each row.
Index split_point(Index n) {
  return std::min(n - 1, (n / 2 + 15) / 16 * 16);
}

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

bool cholesky_lower_inplace(Eigen::Ref<Matrix> A) {
  const Index n = A.rows();
  if (n == 0) return true;
  if (n <= kLeaf) {
    // Eigen's LLT stops at a pivot <= 0 but lets a NaN pivot through: check the diagonal.
    Eigen::LLT<Eigen::Ref<Matrix>, Eigen::Lower> llt(A);
    return llt.info() == Eigen::Success && A.diagonal().allFinite();
  }
  const Index n1 = split_point(n), n2 = n - n1;
  auto A11 = A.topLeftCorner(n1, n1);
  auto A21 = A.bottomLeftCorner(n2, n1);
  auto A22 = A.bottomRightCorner(n2, n2);
  if (!cholesky_lower_inplace(A11)) return false;
  // L21 = A21 L11^-T, then the Schur complement A22 - L21 L21^T is factorised in turn.
  A11.triangularView<Eigen::Lower>().transpose().solveInPlace<Eigen::OnTheRight>(A21);
  A22.selfadjointView<Eigen::Lower>().rankUpdate(A21, -1.0f);
  return cholesky_lower_inplace(A22);
}

void triangular_inverse_lower_inplace(Eigen::Ref<Matrix> L) {
  const Index n = L.rows();
  if (n == 0) return;
  if (n <= kLeaf) {
    Matrix I = Matrix::Identity(n, n);
    L.triangularView<Eigen::Lower>().solveInPlace(I);
    L.triangularView<Eigen::Lower>() = I;
    return;
  }
  const Index n1 = split_point(n), n2 = n - n1;
  auto A = L.topLeftCorner(n1, n1);
  auto B = L.bottomLeftCorner(n2, n1);
  auto C = L.bottomRightCorner(n2, n2);
  // [A 0; B C]^-1 = [A^-1 0; -C^-1 B A^-1, C^-1]
  triangular_inverse_lower_inplace(A);
  triangular_inverse_lower_inplace(C);
  const Matrix T = C.triangularView<Eigen::Lower>() * B;
  B.noalias() = -(T * A.triangularView<Eigen::Lower>());
}

void lauum_lower_inplace(Eigen::Ref<Matrix> L) {
  const Index n = L.rows();
  if (n == 0) return;
  if (n <= kLeaf) {
    const Matrix T = L.triangularView<Eigen::Lower>();
    const Matrix P = T.transpose() * T;
    L.triangularView<Eigen::Lower>() = P;
    return;
  }
  const Index n1 = split_point(n), n2 = n - n1;
  auto A = L.topLeftCorner(n1, n1);
  auto B = L.bottomLeftCorner(n2, n1);
  auto C = L.bottomRightCorner(n2, n2);
  // [A 0; B C]^T [A 0; B C] = [A^T A + B^T B, B^T C; C^T B, C^T C]; the order below reads
  // B and C before they are overwritten.
  lauum_lower_inplace(A);
  A.selfadjointView<Eigen::Lower>().rankUpdate(B.transpose(), 1.0f);
  const Matrix T = C.triangularView<Eigen::Lower>().transpose() * B;
  B = T;
  lauum_lower_inplace(C);
}

void CpuBackend::accumulate_hessian(Eigen::Ref<Matrix> H, const Eigen::Ref<const Matrix>& X,
                                    float s) {
  // Scale the inputs first, as the reference does (inp = sqrt(2/n) * inp), so that the
  // rounding is the same; then a symmetric rank-T update (half the flops of X^T X).
  const Matrix Xs = X * s;
  H.selfadjointView<Eigen::Lower>().rankUpdate(Xs.transpose(), 1.0f);
  mirror_lower_to_upper(H);
}

bool CpuBackend::cholesky_inverse_upper(const Eigen::Ref<const Matrix>& H, Matrix& Hinv) {
  // torch.linalg.cholesky(H); torch.cholesky_inverse(L) = L^-T L^-1;
  // torch.linalg.cholesky(., upper=True). All fp32, like the reference: a Hessian that is too
  // ill-conditioned for fp32 fails here as it fails there, and the caller raises damping.
  Matrix A = H;
  if (!cholesky_lower_inplace(A)) return false;
  triangular_inverse_lower_inplace(A);
  lauum_lower_inplace(A);
  if (!cholesky_lower_inplace(A)) return false;
  // Hinv = L2^T: upper triangle from A's lower one, in tiles (a plain transposed copy reads A
  // a column at a time, a cache miss per element).
  const Index n = A.rows(), t = 64;
  Hinv.resize(n, n);
#pragma omp parallel for schedule(dynamic) if (n > 512)
  for (Index bi = 0; bi < n; bi += t)
    for (Index bj = 0; bj < n; bj += t)
      for (Index i = bi; i < std::min(bi + t, n); ++i)
        for (Index j = bj; j < std::min(bj + t, n); ++j) Hinv(i, j) = j >= i ? A(j, i) : 0.0f;
  return all_finite(Hinv);
}

double CpuBackend::gptq_block(Eigen::Ref<Matrix> W1, const Eigen::Ref<const Matrix>& Hinv1,
                              const Eigen::Ref<const Matrix>& scales,
                              const Eigen::Ref<const Matrix>& zeros,
                              std::span<const int32_t> col_group, int maxq, Eigen::Ref<Matrix> Q1,
                              Eigen::Ref<Matrix> Err1, Eigen::Ref<Codes> codes1) {
  // Rows never interact, so the block is cut into tiles of R rows, each run through the whole
  // sequential column loop on its own. Within a tile the rows are the vector lanes: the tile
  // is stored transposed (t[j][lane]) so that quantizing column i and the update
  // t[j] -= err * Hinv1[i, j] are R-wide vector operations. One row at a time would leave the
  // loop waiting on its own latency chain (divide, round, divide, update, next column);
  // R = 32 independent rows fill the vector units, and the tile (B x 32 floats) stays in L1.
  constexpr Index R = 32;
  const Index N = W1.rows(), B = W1.cols();
  const float fmaxq = static_cast<float>(maxq);
  double loss = 0;
#pragma omp parallel reduction(+ : loss)
  {
    std::vector<float> t(B * R), tq(B * R), te(B * R);
    alignas(64) float s[R], z[R], e[R], col_loss[R];
    alignas(64) double row_loss[R];
#pragma omp for schedule(static)
    for (Index r0 = 0; r0 < N; r0 += R) {
      const Index rows = std::min(R, N - r0);
      // Padding lanes hold x = 0 on the grid (1, 0): finite, and never written back.
      std::fill(t.begin(), t.end(), 0.0f);
      for (Index l = 0; l < rows; ++l)
        for (Index j = 0; j < B; ++j) t[j * R + l] = W1(r0 + l, j);
      std::fill(row_loss, row_loss + R, 0.0);
      for (Index i = 0; i < B; ++i) {
        const Index g = col_group[i];
        for (Index l = 0; l < R; ++l) {
          s[l] = l < rows ? scales(g, r0 + l) : 1.0f;
          z[l] = l < rows ? zeros(g, r0 + l) : 0.0f;
        }
        const float d = Hinv1(i, i);
        float* __restrict x = &t[i * R];
        float* __restrict q = &tq[i * R];
        for (Index l = 0; l < R; ++l) {
          const float code = quant_code(x[l], s[l], z[l], fmaxq);
          q[l] = dequant(code, s[l], z[l]);
          e[l] = (x[l] - q[l]) / d;
          col_loss[l] = (x[l] - q[l]) * (x[l] - q[l]) / (d * d);
          x[l] = code;  // column i is done: keep its code in its slot
        }
        for (Index l = 0; l < R; ++l) row_loss[l] += static_cast<double>(col_loss[l]);
        std::copy(e, e + R, &te[i * R]);
        const float* __restrict h = Hinv1.row(i).data();
        for (Index j = i + 1; j < B; ++j) {
          float* __restrict w = &t[j * R];
          const float hij = h[j];
          for (Index l = 0; l < R; ++l) w[l] -= e[l] * hij;
        }
      }
      for (Index l = 0; l < rows; ++l) {
        for (Index j = 0; j < B; ++j) {
          Q1(r0 + l, j) = tq[j * R + l];
          Err1(r0 + l, j) = te[j * R + l];
          codes1(r0 + l, j) = static_cast<uint8_t>(t[j * R + l]);
        }
        loss += row_loss[l];
      }
    }
  }
  return loss;
}

void CpuBackend::lazy_batch_update(Eigen::Ref<Matrix> W_rest, const Eigen::Ref<const Matrix>& Err1,
                                   const Eigen::Ref<const Matrix>& Hinv_rows) {
  W_rest.noalias() -= Err1 * Hinv_rows;
}

void CpuBackend::gemm_xwt(const Eigen::Ref<const Matrix>& X, const Eigen::Ref<const Matrix>& W,
                          Eigen::Ref<Matrix> Y) {
  Y.noalias() = X * W.transpose();
}


Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace gptqw
