// Where a result was made: the CPU, what the build targets and which kernels ran, the thread
// count, the compiler and its flags, the version. Reports carry it, so that two results can be
// compared knowing whether their machines and builds differed.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/json_fields.h"

namespace gptqw {

struct Environment {
  std::string version;       // GPTQ Workbench's
  std::string cpu_model;     // /proc/cpuinfo's "model name", "" when unknown
  std::string cpu_features;  // what the CPU offers: "sse4.2 avx avx2 fma avx512f"
  std::string build_target;  // the instruction set the build was compiled for: "x86-64-v3"
  std::string kernels;       // the kernel level that ran (linalg/cpu_kernels.h): "avx512"
  std::string compiler;      // "GCC 12.2.0"
  std::string build_flags;   // the C++ flags of the build ("-O3 -DNDEBUG -march=native ...")
  int threads = 0;
};

// This process, running with `threads` threads.
Environment current_environment(int threads);

nlohmann::json to_json(const Environment& e);
// Missing fields are left empty (reports written before they existed); a field of the wrong
// type or range is an error naming it.
Environment environment_from_json(const JsonFields& fields);

}  // namespace gptqw
