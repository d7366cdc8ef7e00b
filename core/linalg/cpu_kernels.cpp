// Choosing the kernel level: the widest this CPU runs (GCC's __builtin_cpu_supports also checks
// that the operating system saves the wider registers), or the one GPTQW_KERNELS names.
#include "linalg/cpu_kernels.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "common/error.h"

namespace gptqw::linalg {

const CpuKernels* kernels_generic();
const CpuKernels* kernels_avx2();
const CpuKernels* kernels_avx512();

namespace {

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool cpu_has_avx512() {
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl");
}

const CpuKernels& choose() {
  const char* env = std::getenv("GPTQW_KERNELS");
  if (env && *env) {
    const std::string want = env;
    for (KernelIsa isa : {KernelIsa::generic, KernelIsa::avx2, KernelIsa::avx512}) {
      const CpuKernels* k = cpu_kernels_for(isa);
      if (want == (isa == KernelIsa::generic ? "generic"
                   : isa == KernelIsa::avx2  ? "avx2"
                                             : "avx512")) {
        if (!k) throw ConfigError("GPTQW_KERNELS=" + want + ": this CPU cannot run those kernels");
        return *k;
      }
    }
    throw ConfigError("GPTQW_KERNELS=" + want + ": expected generic, avx2 or avx512");
  }
  if (cpu_has_avx512()) return *kernels_avx512();
  if (cpu_has_avx2()) return *kernels_avx2();
  return *kernels_generic();
}

std::atomic<const CpuKernels*> g_override{nullptr};

}  // namespace

ScopedKernels::ScopedKernels(const CpuKernels& kernels) : m_previous(g_override.load()) {
  g_override.store(&kernels);
}

ScopedKernels::~ScopedKernels() { g_override.store(m_previous); }

const CpuKernels* cpu_kernels_for(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::generic: return kernels_generic();
    case KernelIsa::avx2: return cpu_has_avx2() ? kernels_avx2() : nullptr;
    case KernelIsa::avx512: return cpu_has_avx512() ? kernels_avx512() : nullptr;
  }
  return nullptr;
}

const CpuKernels& cpu_kernels() {
  if (const CpuKernels* k = g_override.load(std::memory_order_relaxed)) return *k;
  static const CpuKernels& chosen = choose();
  return chosen;
}

}  // namespace gptqw::linalg
