// The kernels for x86-64 with AVX2 and FMA (x86-64-v3: Haswell, Zen 1 and later), compiled with
// -march=x86-64-v3 whatever the rest of the build targets. GEMM micro-tile 6 x 16: 12
// accumulators, two B vectors and a broadcast in the 16 vector registers.
#include <immintrin.h>

namespace {
using vec = __m256;
constexpr int kW = 8;
constexpr int kMR = 6, kNR = 16;
constexpr int kSmallRows = 4, kSmallCols = 16;
constexpr int kExpLanes = 8;
inline vec vzero() { return _mm256_setzero_ps(); }
inline vec vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, vec v) { _mm256_storeu_ps(p, v); }
inline vec vbcast(float x) { return _mm256_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
inline vec vadd(vec a, vec b) { return _mm256_add_ps(a, b); }
}  // namespace

#define KERNEL_ENTRY kernels_avx2
#define KERNEL_ISA gptqw::linalg::KernelIsa::avx2
#define KERNEL_NAME "avx2"
#include "linalg/kernels_body.inc"
