// Dense triangular factorizations for GPTQ's inverse Hessian, in fp32 like the reference, with
// results defined by their operation order (cpu_kernels.h): recursive algorithms that halve the
// matrix at points that depend only on its size, with their large updates done by gemm() and
// the small diagonal blocks by the leaf kernels.
//
// GPTQ needs U = the upper Cholesky factor of H^-1 (U^T U = H^-1). The reference computes it in
// four O(n^3) steps: Cholesky of H, the inverse from that factor, then a Cholesky of the inverse.
// Two suffice. With J the reversal permutation (J = J^T = J^-1) and L = chol(J H J):
//   H = J L L^T J = R R^T with R = J L J upper triangular, so H^-1 = R^-T R^-1 = (R^-1)^T R^-1,
// and R^-1 = J L^-1 J is upper triangular with a positive diagonal: by the uniqueness of the
// Cholesky factor it is U. So U = J L^-1 J: one Cholesky and one triangular inverse (2n^3/3
// flops instead of 4n^3/3), and one factorization that can fail instead of two.
#pragma once

#include "common/tensor.h"

namespace gptqw::linalg {

// The lower Cholesky factor of the symmetric A, in A's lower triangle (the strict upper
// triangle is scratch: read never, written in places). Returns false when A is not positive
// definite in fp32 (a pivot <= 0 or not finite); A is then partly overwritten.
bool cholesky_lower(Eigen::Ref<Matrix> A);

// Solves X L^T = B for X, in place of B (B [m, n], L [n, n] lower triangular).
void trsm_right_lower_t(const Eigen::Ref<const Matrix>& L, Eigen::Ref<Matrix> B);

// B = L B (L [n, n] lower triangular, B [n, m]) and B = B L (B [m, n]), in place.
void trmm_left_lower(const Eigen::Ref<const Matrix>& L, Eigen::Ref<Matrix> B);
void trmm_right_lower(Eigen::Ref<Matrix> B, const Eigen::Ref<const Matrix>& L);

// L^-1 of the lower triangular L, in place of its lower triangle (the strict upper triangle is
// scratch).
void triangular_inverse_lower(Eigen::Ref<Matrix> L);

// U = chol(H^-1), upper, [n, n] with zeros below the diagonal, for the symmetric positive
// definite H (damping already added), through U = J chol(J H J)^-1 J. Returns false when the
// Cholesky factorization fails or the result is not finite; U is then unspecified.
bool inverse_cholesky_upper(const Eigen::Ref<const Matrix>& H, Matrix& U);

}  // namespace gptqw::linalg
