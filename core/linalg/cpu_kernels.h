// The innermost numeric kernels, compiled once per x86-64 instruction-set level and chosen at
// run time, so that a build without -march=native runs as fast as a native one and, above all,
// so that every machine computes the same bits.
//
// Why the same bits: GPTQ turns floating-point values into integer codes, and each code's
// rounding error is pushed onto the columns not yet quantized. A last-bit difference anywhere
// upstream (a GEMM that sums in another order because the CPU has wider vectors or other cache
// sizes, a compiler that fuses a*b+c on one target and not on another) can flip a code, and the
// flip propagates: the same model and settings then give a visibly different perplexity on an
// AVX2 machine and on an AVX-512 one. The kernels here therefore define each result by the
// order of its operations, not by the hardware:
//   - every product-sum runs through k in runs of kDepthRun (256), each a chain of fused
//     multiply-adds from +0 in increasing k (p = fma(a_k, b_k, p)), the runs added to the
//     destination in order; vector width, register tiling, cache blocking and thread count
//     change which elements are computed together, never the chain;
//   - a fused multiply-add is exactly rounded (IEEE 754), so hardware FMA at any vector width
//     and the C library's fmaf give the same result;
//   - no other operation is fused (the project builds with -ffp-contract=off).
// The levels differ only in speed. tst_linalg checks each level against the others and against a
// naive loop that states the chain directly, bit for bit.
#pragma once

#include "linalg/kernel_table.h"

namespace gptqw::linalg {

// The level chosen for this process: the widest one this CPU runs, unless the environment
// variable GPTQW_KERNELS names another (generic, avx2, avx512; one the CPU cannot run is
// refused with an error naming the variable). Chosen once, on first use.
const CpuKernels& cpu_kernels();

// A given level's kernels, or nullptr when this CPU cannot run them.
const CpuKernels* cpu_kernels_for(KernelIsa isa);

// Makes cpu_kernels() return `kernels` in every thread until destroyed, so that a test can run
// the same computation on each level and compare the bits. Not for concurrent use.
class ScopedKernels {
 public:
  explicit ScopedKernels(const CpuKernels& kernels);
  ~ScopedKernels();
  ScopedKernels(const ScopedKernels&) = delete;
  ScopedKernels& operator=(const ScopedKernels&) = delete;

 private:
  const CpuKernels* m_previous;
};

}  // namespace gptqw::linalg
