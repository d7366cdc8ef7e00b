// Matrix products with a result defined by the order of its operations (cpu_kernels.h says why):
// for C[i,j], each run of kDepthRun consecutive k (0..255, 256..511, ...) sums its terms
// +-A[i,k] B[k,j] as a chain of fused multiply-adds from +0 in increasing k, and the runs are
// added to C[i,j] in order (Update::add, subtract) or to the first run (assign). Blocking,
// packing, vector width and threads only change which elements are computed together, so the
// bits are the same on every CPU, at every thread count. Blocked for the caches and run on the OpenMP
// threads (serially when called from inside a parallel region).
#pragma once

#include <cstdint>

#include "common/tensor.h"

namespace gptqw::linalg {

// A read-only strided matrix: element (i, j) is data[i * rs + j * cs].
struct ConstView {
  const float* data;
  int64_t rows, cols, rs, cs;
};

// A writable row-major matrix: element (i, j) is data[i * ld + j].
struct MutView {
  float* data;
  int64_t rows, cols, ld;
};

enum class Update { assign, add, subtract };  // C = AB, C += AB, C -= AB

// Lower: only C's lower triangle (with the diagonal) is wanted; micro-tiles wholly above the
// diagonal are skipped and the rest of the upper triangle is left unspecified (C square).
enum class Part { full, lower };

// C (op)= A B for A [M, K], B [K, N], C [M, N]. C must not overlap A or B. Throws Error on
// mismatched shapes.
void gemm(MutView C, ConstView A, ConstView B, Update update, Part part = Part::full);

// Views of the engine's row-major matrices.
inline ConstView view(const Eigen::Ref<const Matrix>& m) {
  return {m.data(), m.rows(), m.cols(), m.outerStride(), 1};
}
inline ConstView view_t(const Eigen::Ref<const Matrix>& m) {  // m^T
  return {m.data(), m.cols(), m.rows(), 1, m.outerStride()};
}
inline MutView mut_view(Eigen::Ref<Matrix> m) { return {m.data(), m.rows(), m.cols(), m.outerStride()}; }

// The forms the engine uses.
inline void matmul(Eigen::Ref<Matrix> C, const Eigen::Ref<const Matrix>& A,
                   const Eigen::Ref<const Matrix>& B, Update u = Update::assign) {  // A B
  gemm(mut_view(C), view(A), view(B), u);
}
inline void matmul_nt(Eigen::Ref<Matrix> C, const Eigen::Ref<const Matrix>& A,
                      const Eigen::Ref<const Matrix>& B, Update u = Update::assign) {  // A B^T
  gemm(mut_view(C), view(A), view_t(B), u);
}

}  // namespace gptqw::linalg
