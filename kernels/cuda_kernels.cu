// The CUDA backend's kernels (cuda_kernels.cuh). Compiled with --fmad=false: every fused
// multiply-add below is written as fmaf, and the other operations use the _rn intrinsics, so
// that what is rounded where is exactly what the code says.
#include <algorithm>

#include "cuda_kernels.cuh"

namespace gptqw::cuda {

namespace {

constexpr int kTile = 32;  // mirror / zero kernels: 32 x 32 tiles, 32 x 8 threads

__global__ void mirror_lower_to_upper_kernel(float* __restrict__ A, int64_t n) {
  // The block owns the destination tile (rows by*32.., cols bx*32..) on or above the
  // diagonal and reads its transpose (rows bx*32.., cols by*32..), on or below it: through
  // shared memory so that both the reads and the writes are coalesced.
  __shared__ float tile[kTile][kTile + 1];
  const int64_t bx = blockIdx.x, by = blockIdx.y;
  if (bx < by) return;
  const int64_t r0 = by * kTile, c0 = bx * kTile;
  for (int k = threadIdx.y; k < kTile; k += blockDim.y) {
    const int64_t sr = c0 + k, sc = r0 + threadIdx.x;
    if (sr < n && sc < n) tile[k][threadIdx.x] = A[sr * n + sc];
  }
  __syncthreads();
  for (int k = threadIdx.y; k < kTile; k += blockDim.y) {
    const int64_t dr = r0 + k, dc = c0 + threadIdx.x;
    if (dr < n && dc < n && dc > dr) A[dr * n + dc] = tile[threadIdx.x][k];
  }
}

__global__ void zero_strictly_lower_kernel(float* __restrict__ A, int64_t n) {
  const int64_t c = int64_t(blockIdx.x) * kTile + threadIdx.x;
  for (int k = threadIdx.y; k < kTile; k += blockDim.y) {
    const int64_t r = int64_t(blockIdx.y) * kTile + k;
    if (r < n && c < r) A[r * n + c] = 0.0f;
  }
}

// gptq_block: a CTA of kRows threads owns kRows rows of the block, thread l row r0 + l. Its
// rows live in three [B, kPitch] tiles (shared memory, or global scratch for very wide
// blocks), stored transposed (tile[j * kPitch + l]) so that a column step is one coalesced,
// bank-conflict-free access per thread; the pitch kRows + 1 keeps the transposing loads and
// stores conflict-free too.
//   t:  the working weights; column i holds its code once quantized
//   tq: dequantized weights; te: errors
constexpr int kRows = 32;
constexpr int kPitch = kRows + 1;

int64_t gptq_tile_bytes(int64_t B) {
  return 3 * B * kPitch * int64_t(sizeof(float));
}

// round_quotient() of quant/quantizer.h: half to even, a quotient within 2^-22 of its magnitude
// of a half-integer counting as that half-integer.
__device__ __forceinline__ float round_quotient(float v) {
  const float a = fabsf(v) < 0x1p22f ? v : 0.0f;
  const float h = __fadd_rn(floorf(a), 0.5f);
  const bool tie = fabsf(__fsub_rn(a, h)) <= __fmul_rn(fabsf(h), 0x1p-22f) && a == v;
  return rintf(tie ? h : v);
}

// quant_code() of quant/quantizer.h: clamp(round_code(x / scale) + zero, 0, maxq), a NaN
// landing on 0.
__device__ __forceinline__ float quant_code(float x, float scale, float zero, float maxq,
                                            bool exact_ties) {
  const float v = __fdiv_rn(x, scale);
  float q = __fadd_rn(exact_ties ? round_quotient(v) : rintf(v), zero);
  q = 0.0f < q ? q : 0.0f;
  return q < maxq ? q : maxq;
}

__global__ void __launch_bounds__(kRows)
    gptq_block_kernel(const float* __restrict__ W1, const float* __restrict__ Hinv1,
                      const float* __restrict__ scales, const float* __restrict__ zeros,
                      const int32_t* __restrict__ col_group, int64_t N, int64_t B, float maxq,
                      bool exact_ties, float* __restrict__ Q1, float* __restrict__ Err1,
                      uint8_t* __restrict__ codes1, double* __restrict__ row_loss,
                      float* __restrict__ scratch) {
  extern __shared__ float smem[];
  float* const base = scratch ? scratch + int64_t(blockIdx.x) * 3 * B * kPitch : smem;
  float* const t = base;
  float* const tq = base + B * kPitch;
  float* const te = base + 2 * B * kPitch;
  const int lane = threadIdx.x;
  const int64_t r0 = int64_t(blockIdx.x) * kRows;
  const int rows = int(N - r0 < kRows ? N - r0 : kRows);

  // Load the rows, coalesced along each row; padding lanes hold 0 (quantized on the grid
  // (1, 0) below: finite, never written back), as in the CPU backend.
  for (int64_t idx = lane; idx < kRows * B; idx += kRows) {
    const int64_t l = idx / B, j = idx % B;
    t[j * kPitch + l] = l < rows ? W1[(r0 + l) * B + j] : 0.0f;
  }
  __syncthreads();

  const bool live = lane < rows;
  const int64_t r = r0 + lane;
  double loss = 0;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t g = col_group[i];
    const float s = live ? scales[g * N + r] : 1.0f;
    const float z = live ? zeros[g * N + r] : 0.0f;
    const float d = Hinv1[i * B + i];
    const float x = t[i * kPitch + lane];
    const float code = quant_code(x, s, z, maxq, exact_ties);
    const float q = __fmul_rn(s, __fsub_rn(code, z));
    const float diff = __fsub_rn(x, q);
    const float e = __fdiv_rn(diff, d);
    loss += double(__fdiv_rn(__fmul_rn(diff, diff), __fmul_rn(d, d)));
    t[i * kPitch + lane] = code;
    tq[i * kPitch + lane] = q;
    te[i * kPitch + lane] = e;
    const float* __restrict__ h = Hinv1 + i * B;
    for (int64_t j = i + 1; j < B; ++j) {
      float* w = &t[j * kPitch + lane];
      *w = fmaf(-e, __ldg(h + j), *w);  // w - e * h, rounded once
    }
  }
  if (live) row_loss[r] = loss;
  __syncthreads();

  // Write back, coalesced along each row.
  for (int64_t idx = lane; idx < rows * B; idx += kRows) {
    const int64_t l = idx / B, j = idx % B, o = (r0 + l) * B + j;
    Q1[o] = tq[j * kPitch + l];
    Err1[o] = te[j * kPitch + l];
    codes1[o] = static_cast<uint8_t>(t[j * kPitch + l]);
  }
}

__global__ void probe_kernel(int* out) {
  *out = 42;
}

int max_shared_per_block(int device) {
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) != cudaSuccess)
    return 48 * 1024;
  return v;
}

}  // namespace

cudaError_t mirror_lower_to_upper(float* A, int64_t n, cudaStream_t stream) {
  if (n <= 1) return cudaSuccess;
  const unsigned tiles = unsigned((n + kTile - 1) / kTile);
  mirror_lower_to_upper_kernel<<<dim3(tiles, tiles), dim3(kTile, 8), 0, stream>>>(A, n);
  return cudaGetLastError();
}

cudaError_t zero_strictly_lower(float* A, int64_t n, cudaStream_t stream) {
  if (n <= 1) return cudaSuccess;
  const unsigned tiles = unsigned((n + kTile - 1) / kTile);
  zero_strictly_lower_kernel<<<dim3(tiles, tiles), dim3(kTile, 8), 0, stream>>>(A, n);
  return cudaGetLastError();
}

int64_t gptq_block_scratch_floats(int64_t N, int64_t B, int device) {
  if (gptq_tile_bytes(B) <= max_shared_per_block(device)) return 0;
  return (N + kRows - 1) / kRows * 3 * B * kPitch;
}

cudaError_t gptq_block(const float* W1, const float* Hinv1, const float* scales, const float* zeros,
                       const int32_t* col_group, int64_t N, int64_t B, float maxq,
                       bool exact_ties, float* Q1, float* Err1, uint8_t* codes1, double* row_loss,
                       float* scratch, int device, cudaStream_t stream) {
  if (N <= 0 || B <= 0) return cudaSuccess;
  const int64_t bytes = gptq_tile_bytes(B);
  int64_t smem = 0;
  if (!scratch) {
    if (bytes > max_shared_per_block(device)) return cudaErrorInvalidValue;
    smem = bytes;
    if (smem > 48 * 1024) {
      const cudaError_t e = cudaFuncSetAttribute(
          gptq_block_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
      if (e != cudaSuccess) return e;
    }
  }
  const unsigned blocks = unsigned((N + kRows - 1) / kRows);
  gptq_block_kernel<<<blocks, kRows, size_t(smem), stream>>>(
      W1, Hinv1, scales, zeros, col_group, N, B, maxq, exact_ties, Q1, Err1, codes1, row_loss,
      scratch);
  return cudaGetLastError();
}

cudaError_t probe(int device) {
  cudaError_t e = cudaSetDevice(device);
  if (e != cudaSuccess) return e;
  int* d = nullptr;
  if ((e = cudaMalloc(&d, sizeof(int))) != cudaSuccess) return e;
  probe_kernel<<<1, 1>>>(d);
  e = cudaGetLastError();
  int h = 0;
  if (e == cudaSuccess) e = cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (e == cudaSuccess && h != 42) e = cudaErrorLaunchFailure;
  return e;
}

}  // namespace gptqw::cuda
