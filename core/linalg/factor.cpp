// Recursive Cholesky, triangular solve, triangular multiply and triangular inverse: each splits
// its matrix at split_point(n), recurses on the diagonal blocks and does the off-diagonal work
// with one large gemm(), so that nearly all flops run at GEMM speed; blocks of at most kLeaf
// rows go to the leaf kernels. Split points depend only on n, so the operation order, and with
// it every bit of the result, is the same on every machine.
#include "linalg/factor.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "linalg/cpu_kernels.h"
#include "linalg/gemm.h"

namespace gptqw::linalg {

using Eigen::Index;

namespace {

// Diagonal blocks up to this size go to the leaf kernels (which hold up to 256 columns).
constexpr Index kLeaf = 128;

// Half, rounded up to a multiple of 16 floats so that the blocks start on 64-byte boundaries.
Index split_point(Index n) {
  return std::min(n - 1, (n / 2 + 15) / 16 * 16);
}

// The lower triangle of L as a full matrix with zeros above the diagonal, for a leaf-sized
// triangular product through gemm() (fma(0, b, c) leaves c as it is).
Matrix lower_part(const Eigen::Ref<const Matrix>& L) {
  Matrix T = Matrix::Zero(L.rows(), L.cols());
  for (Index i = 0; i < L.rows(); ++i)
    for (Index j = 0; j <= i; ++j) T(i, j) = L(i, j);
  return T;
}

}  // namespace

bool cholesky_lower(Eigen::Ref<Matrix> A) {
  const Index n = A.rows();
  if (n == 0) return true;
  if (n <= kLeaf) return cpu_kernels().cholesky_leaf(n, A.data(), A.outerStride());
  const Index n1 = split_point(n), n2 = n - n1;
  auto A11 = A.topLeftCorner(n1, n1);
  auto A21 = A.bottomLeftCorner(n2, n1);
  auto A22 = A.bottomRightCorner(n2, n2);
  if (!cholesky_lower(A11)) return false;
  // L21 = A21 L11^-T, then the Schur complement A22 - L21 L21^T is factorized in turn.
  trsm_right_lower_t(A11, A21);
  gemm(mut_view(A22), view(A21), view_t(A21), Update::subtract, Part::lower);
  return cholesky_lower(A22);
}

void trsm_right_lower_t(const Eigen::Ref<const Matrix>& L, Eigen::Ref<Matrix> B) {
  const Index n = L.rows(), m = B.rows();
  if (n == 0 || m == 0) return;
  if (n <= kLeaf) {
    // Rows of B are independent: chunks of them run on the threads.
    constexpr Index kRows = 64;
    const Index chunks = (m + kRows - 1) / kRows;
    const bool parallel = !omp_in_parallel() && chunks > 1 && double(m) * n * n > 1e6;
    const auto& kern = cpu_kernels();
#pragma omp parallel for schedule(static) if (parallel)
    for (Index c = 0; c < chunks; ++c) {
      const Index r0 = c * kRows;
      kern.trsm_leaf(std::min(kRows, m - r0), n, L.data(), L.outerStride(),
                     B.data() + r0 * B.outerStride(), B.outerStride());
    }
    return;
  }
  // [X1 X2] [L11 0; L21 L22]^T = [B1 B2]: X1 L11^T = B1, then X2 L22^T = B2 - X1 L21^T.
  const Index n1 = split_point(n), n2 = n - n1;
  auto B1 = B.leftCols(n1);
  auto B2 = B.rightCols(n2);
  trsm_right_lower_t(L.topLeftCorner(n1, n1), B1);
  gemm(mut_view(B2), view(B1), view_t(L.bottomLeftCorner(n2, n1)), Update::subtract);
  trsm_right_lower_t(L.bottomRightCorner(n2, n2), B2);
}

void trmm_left_lower(const Eigen::Ref<const Matrix>& L, Eigen::Ref<Matrix> B) {
  const Index n = L.rows();
  if (n == 0 || B.cols() == 0) return;
  if (n <= kLeaf) {
    Matrix P(n, B.cols());
    gemm(mut_view(P), view(lower_part(L)), view(B), Update::assign);
    B = P;
    return;
  }
  // [L11 0; L21 L22] [B1; B2] = [L11 B1; L21 B1 + L22 B2]: the bottom first, while B1 is old.
  const Index n1 = split_point(n), n2 = n - n1;
  auto B1 = B.topRows(n1);
  auto B2 = B.bottomRows(n2);
  trmm_left_lower(L.bottomRightCorner(n2, n2), B2);
  gemm(mut_view(B2), view(L.bottomLeftCorner(n2, n1)), view(B1), Update::add);
  trmm_left_lower(L.topLeftCorner(n1, n1), B1);
}

void trmm_right_lower(Eigen::Ref<Matrix> B, const Eigen::Ref<const Matrix>& L) {
  const Index n = L.rows();
  if (n == 0 || B.rows() == 0) return;
  if (n <= kLeaf) {
    Matrix P(B.rows(), n);
    gemm(mut_view(P), view(B), view(lower_part(L)), Update::assign);
    B = P;
    return;
  }
  // [B1 B2] [L11 0; L21 L22] = [B1 L11 + B2 L21, B2 L22]: the left first, while B2 is old.
  const Index n1 = split_point(n), n2 = n - n1;
  auto B1 = B.leftCols(n1);
  auto B2 = B.rightCols(n2);
  trmm_right_lower(B1, L.topLeftCorner(n1, n1));
  gemm(mut_view(B1), view(B2), view(L.bottomLeftCorner(n2, n1)), Update::add);
  trmm_right_lower(B2, L.bottomRightCorner(n2, n2));
}

void triangular_inverse_lower(Eigen::Ref<Matrix> L) {
  const Index n = L.rows();
  if (n == 0) return;
  if (n <= kLeaf) {
    cpu_kernels().trinv_leaf(n, L.data(), L.outerStride());
    return;
  }
  // [A 0; B C]^-1 = [A^-1 0; -C^-1 B A^-1, C^-1]
  const Index n1 = split_point(n), n2 = n - n1;
  auto A = L.topLeftCorner(n1, n1);
  auto B = L.bottomLeftCorner(n2, n1);
  auto C = L.bottomRightCorner(n2, n2);
  triangular_inverse_lower(A);
  triangular_inverse_lower(C);
  trmm_left_lower(C, B);
  trmm_right_lower(B, A);
  B = -B;
}

bool inverse_cholesky_upper(const Eigen::Ref<const Matrix>& H, Matrix& U) {
  const Index n = H.rows();
  // M = J H J: M[i, j] = H[n-1-i, n-1-j] (each row of M is a row of H read backwards).
  Matrix M(n, n);
#pragma omp parallel for schedule(static) if (n > 512)
  for (Index i = 0; i < n; ++i) {
    const float* h = H.row(n - 1 - i).data();
    float* m = M.row(i).data();
    for (Index j = 0; j < n; ++j) m[j] = h[n - 1 - j];
  }
  if (!cholesky_lower(M)) return false;
  triangular_inverse_lower(M);
  // U = J M^-1 J, upper: U[i, j] = Minv[n-1-i, n-1-j] for j >= i.
  U.resize(n, n);
  bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite) if (n > 512)
  for (Index i = 0; i < n; ++i) {
    const float* m = M.row(n - 1 - i).data();
    float* u = U.row(i).data();
    for (Index j = 0; j < i; ++j) u[j] = 0.0f;
    bool ok = true;
    for (Index j = i; j < n; ++j) {
      u[j] = m[n - 1 - j];
      ok = ok && std::isfinite(u[j]);
    }
    finite = finite && ok;
  }
  return finite;
}

}  // namespace gptqw::linalg
