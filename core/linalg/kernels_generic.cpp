// The kernels for any x86-64 (and any other CPU): scalar code with the C library's fmaf where
// the build target has no FMA instruction. The same results as the vector levels, much more
// slowly; used only on CPUs older than AVX2 (before 2013) or when GPTQW_KERNELS=generic asks.
namespace {
using vec = float;
constexpr int kW = 1;
constexpr int kMR = 4, kNR = 4;
constexpr int kSmallRows = 4, kSmallCols = 4;
constexpr int kExpLanes = 4;
inline vec vzero() { return 0.0f; }
inline vec vload(const float* p) { return *p; }
inline void vstore(float* p, vec v) { *p = v; }
inline vec vbcast(float x) { return x; }
inline vec vfma(vec a, vec b, vec c) { return __builtin_fmaf(a, b, c); }
inline vec vadd(vec a, vec b) { return a + b; }
}  // namespace

#define KERNEL_ENTRY kernels_generic
#define KERNEL_ISA gptqw::linalg::KernelIsa::generic
#define KERNEL_NAME "generic"
#include "linalg/kernels_body.inc"
