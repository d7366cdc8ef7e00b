// The kernels for x86-64 with AVX-512 (x86-64-v4: Skylake-X, Ice Lake, Zen 4 and later),
// compiled with -march=x86-64-v4 whatever the rest of the build targets. GEMM micro-tile
// 12 x 32: 24 accumulators, two B vectors and a broadcast in the 32 vector registers.
#include <immintrin.h>

namespace {
using vec = __m512;
constexpr int kW = 16;
constexpr int kMR = 12, kNR = 32;
constexpr int kSmallRows = 8, kSmallCols = 16;
constexpr int kExpLanes = 16;
inline vec vzero() { return _mm512_setzero_ps(); }
inline vec vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, vec v) { _mm512_storeu_ps(p, v); }
inline vec vbcast(float x) { return _mm512_set1_ps(x); }
inline vec vfma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
inline vec vadd(vec a, vec b) { return _mm512_add_ps(a, b); }
}  // namespace

#define KERNEL_ENTRY kernels_avx512
#define KERNEL_ISA gptqw::linalg::KernelIsa::avx512
#define KERNEL_NAME "avx512"
#include "linalg/kernels_body.inc"
