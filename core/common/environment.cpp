// The environment of a run, read from the CPU (cpuid through GCC's builtins, /proc/cpuinfo),
// the compiler's predefined macros and the flags CMake compiled this file with.
#include "common/environment.h"

#include <fstream>

#include "linalg/cpu_kernels.h"

namespace gptqw {

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon == std::string::npos) break;
      const size_t start = line.find_first_not_of(" \t", colon + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  return "";
}

std::string cpu_features() {
  __builtin_cpu_init();
  std::string s;
  auto add = [&](bool has, const char* name) {
    if (!has) return;
    if (!s.empty()) s += ' ';
    s += name;
  };
  add(__builtin_cpu_supports("sse4.2"), "sse4.2");
  add(__builtin_cpu_supports("avx"), "avx");
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  return s;
}

// The x86-64 micro-architecture level this file (and so the build's default) was compiled for.
constexpr const char* build_target() {
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
  return "x86-64-v4";
#elif defined(__AVX2__) && defined(__FMA__)
  return "x86-64-v3";
#elif defined(__SSE4_2__) && defined(__POPCNT__)
  return "x86-64-v2";
#elif defined(__x86_64__)
  return "x86-64";
#else
  return "not x86-64";
#endif
}

std::string compiler() {
#if defined(__clang__)
  return std::string("Clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("GCC ") + __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

Environment current_environment(int threads) {
  Environment e;
  e.version = GPTQW_VERSION;
  e.cpu_model = cpu_model();
  e.cpu_features = cpu_features();
  e.build_target = build_target();
  e.kernels = linalg::cpu_kernels().name;
  e.compiler = compiler();
  e.build_flags = GPTQW_BUILD_FLAGS;
  e.threads = threads;
  return e;
}

nlohmann::json to_json(const Environment& e) {
  return {{"version", e.version},           {"cpu_model", e.cpu_model},
          {"cpu_features", e.cpu_features}, {"build_target", e.build_target},
          {"kernels", e.kernels},           {"compiler", e.compiler},
          {"build_flags", e.build_flags},   {"threads", e.threads}};
}

Environment environment_from_json(const JsonFields& f) {
  Environment e;
  e.version = f.string_or("version", "");
  e.cpu_model = f.string_or("cpu_model", "");
  e.cpu_features = f.string_or("cpu_features", "");
  e.build_target = f.string_or("build_target", "");
  e.kernels = f.string_or("kernels", "");
  e.compiler = f.string_or("compiler", "");
  e.build_flags = f.string_or("build_flags", "");
  e.threads = f.integer_or<int>("threads", 0, 0, 1 << 20);
  return e;
}

}  // namespace gptqw
