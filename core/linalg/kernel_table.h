// The table of one instruction-set level's kernels (see cpu_kernels.h for why there are
// several). Kept apart, with nothing from the C++ library, because kernels_body.inc includes it
// into translation units compiled for different instruction sets.
#pragma once

#include <cstdint>

namespace gptqw::linalg {

enum class KernelIsa { generic, avx2, avx512 };

// The depth of one partial sum in every product: each element of a product sums its k = 0..K-1
// terms in consecutive runs of this many, each run a chain of fused multiply-adds from +0,
// and adds the runs to the destination one by one. Part of the definition of the results (the
// same on every level), and it keeps the rounding error of a long sum (a Hessian over 8192
// tokens, a down_proj over 11008 inputs) near that of a blocked BLAS rather than growing with K.
constexpr int64_t kDepthRun = 256;

// Rows of W that one gptq_tile call carries as vector lanes: 32 independent rows fill the vector
// units while the tile (B x 32 floats, 16 KiB at B = 128) stays in L1.
constexpr int64_t kGptqLanes = 32;

// One instruction-set level's kernels. Matrices are row-major with the given row strides
// (elements, not bytes); "packed" panels are laid out by gemm.cpp (see pack_a / pack_b there).
struct CpuKernels {
  KernelIsa isa;
  const char* name;  // "avx512", "avx2", "generic"
  int mr, nr;        // the GEMM micro-tile: mr rows of A x nr columns of B
  int small_cols;    // gemm_small reads B's rows in strips of this many columns

  // C[0:mr, 0:nr] = load_c ? C + p : p, p = sum over k of Ap[k][r] * Bp[k][c] as a chain of
  // fused multiply-adds from +0 in increasing k (one run: kc <= kDepthRun). Ap: kc x mr
  // (packed, k-major), Bp: kc x nr.
  void (*gemm_tile)(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc,
                    bool load_c);

  // The same product for small or narrow matrices, without packing: C[M, N] (op)= A B with
  // (negate ? -1 : 1) A, the sum in runs of kDepthRun as gemm() defines it; without load_c the
  // first run is stored, not added. A is strided (element
  // (i, k) at A[i * rsa + k * csa]), C row-major, B row-major [K, N] with row stride ldb and its
  // rows readable (zero-padded) up to a multiple of small_cols columns.
  void (*gemm_small)(int64_t M, int64_t N, int64_t K, const float* A, int64_t rsa, int64_t csa,
                     const float* B, int64_t ldb, float* C, int64_t ldc, bool load_c,
                     bool negate);

  // Unblocked Cholesky of the n x n lower triangle of A (in place; the strict upper triangle
  // is not read or written). Column j: s_i = A[i,j] - sum_{k<j} L[i,k] L[j,k] (fused chain in
  // increasing k), L[j,j] = sqrt(s_j), L[i,j] = s_i / L[j,j]. Returns false at the first pivot
  // that is not > 0 (or not finite); A is then partly overwritten.
  bool (*cholesky_leaf)(int64_t n, float* A, int64_t lda);

  // X L^T = B solved in place (B becomes X), L n x n lower triangular, B m x n:
  // x_j = (b_j - sum_{k<j} x_k L[j,k]) / L[j,j], the sum a fused chain in increasing k.
  void (*trsm_leaf)(int64_t m, int64_t n, const float* L, int64_t ldl, float* B, int64_t ldb);

  // Inverse of the n x n lower triangular L in place (strict upper triangle untouched),
  // column by column: X[j,j] = 1 / L[j,j]; X[i,j] = -(sum_{j<=k<i} L[i,k] X[k,j]) / L[i,i]
  // for i > j, the sum a fused chain in increasing k.
  void (*trinv_leaf)(int64_t n, float* L, int64_t ldl);

  // One tile of GPTQ's in-block column loop (Algorithm 1) over kGptqLanes rows of W1 at once,
  // the rows as vector lanes. t holds the tile's B columns transposed: t[j * kGptqLanes + l] is
  // row l, column j; lanes >= rows are padding (quantized on the grid scale 1, zero 0 and never
  // read back). For each column i in order and every lane: the grid is row g = col_group[i] of
  // scales/zeros (lane l at [g * ldg + l]); code = clamp(round_code(x / scale) + zero, 0,
  // maxq); q = scale * (code - zero); e = (x - q) / d with d = Hinv1[i,i]; the lane's loss
  // gains (x - q)^2 / d^2 (double, in increasing i); then x_j = fma(-e, Hinv1[i,j], x_j) for
  // j > i. Outputs in the same transposed layout: tq (q), te (e), tc (codes as floats).
  void (*gptq_tile)(int64_t B, int64_t rows, float* t, const float* Hinv1, int64_t ldh,
                    const int32_t* col_group, const float* scales, const float* zeros,
                    int64_t ldg, float maxq, bool exact_ties, float* tq, float* te, float* tc,
                    double* loss);

  // x_i = e^x_i in fp32 (Cephes' expf: range reduction by ln 2 in two parts and a degree-5
  // polynomial, about 1 ulp; plain multiplies and adds, 8 lanes at a time at every level). 0
  // below -87.33654 (where e^x leaves fp32's normal range), +inf above 88.72283, NaN for NaN.
  // The C library's expf is not used: the library picks its implementation by CPU.
  void (*exp_inplace)(float* x, int64_t n);
};

}  // namespace gptqw::linalg
