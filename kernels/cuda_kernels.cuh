// The CUDA backend's own kernels, on raw device pointers and sizes; the dense linear algebra
// is cuBLAS's and cuSOLVER's (cuda_backend.cpp). Every matrix here is row-major and packed
// (row stride = columns), like the engine's. Each launcher enqueues on `stream` and returns
// the launch's error (cudaGetLastError); none synchronises.
//
// This header is included by host C++ compiled by the C++ compiler as well as by nvcc: plain
// declarations only.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace gptqw::cuda {

// A[r, c] = A[c, r] for c > r: copy the lower triangle of the n x n matrix A onto its upper
// triangle.
cudaError_t mirror_lower_to_upper(float* A, int64_t n, cudaStream_t stream);

// A[r, c] = 0 for c < r: clear the strictly lower triangle of the n x n matrix A.
cudaError_t zero_strictly_lower(float* A, int64_t n, cudaStream_t stream);

// Device memory a gptq_block launch needs beyond its inputs and outputs (0 when the block's
// tiles fit in shared memory, as they do for every B up to several hundred columns).
int64_t gptq_block_scratch_floats(int64_t N, int64_t B, int device);

// The GPTQ column loop of one block (Backend::gptq_block), one thread per row of W1: the same
// fp32 operations in the same order as the CPU backend (divide, round half to even or, with
// exact_ties, round_quotient; add zero, clamp; dequantize; err = (w - q) / d; loss term
// (w - q)^2 / d^2 summed per row in double; w_j = fma(-err, Hinv1[i, j], w_j)), so that for
// equal inputs the results are equal bit for bit.
//   W1        [N, B]
//   Hinv1     [B, B] upper triangular
//   scales    [G, N], zeros [G, N]: the grid rows that col_group names
//   col_group [B] row of scales/zeros for each column, in [0, G)
//   Q1, Err1  [N, B] out; codes1 [N, B] out
//   row_loss  [N] out: sum over the block of (w - q)^2 / d^2 for each row, in double
//   scratch   gptq_block_scratch_floats(N, B, device) floats (nullptr when that is 0)
cudaError_t gptq_block(const float* W1, const float* Hinv1, const float* scales, const float* zeros,
                       const int32_t* col_group, int64_t N, int64_t B, float maxq,
                       bool exact_ties, float* Q1, float* Err1, uint8_t* codes1, double* row_loss,
                       float* scratch, int device, cudaStream_t stream);

// Launches a trivial kernel and waits for it: whether this build's device code runs on the
// current device (a missing image for its architecture or a driver too old for the PTX shows
// here, not in the middle of a quantization).
cudaError_t probe(int device);

}  // namespace gptqw::cuda
