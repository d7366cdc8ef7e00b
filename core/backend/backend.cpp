// Backend selection: the CUDA backend (kernels/, issue 6) when this build has it and a device
// answers, the CPU backend otherwise.
#include "backend/backend.h"

#include "backend/cpu_backend.h"
#include "common/error.h"

namespace gptqw {

Backend& backend_for(Device device) {
  switch (device) {
    case Device::cpu:
      return cpu_backend();
    case Device::cuda: {
      std::string why;
      if (Backend* b = cuda_backend_or_null(&why)) return *b;
      throw ConfigError(why);
    }
    case Device::auto_:
      break;
  }
  if (Backend* b = cuda_backend_or_null(nullptr)) return *b;
  return cpu_backend();
}

std::string cuda_status() {
  std::string why;
  cuda_backend_or_null(&why);
  return why;
}

Backend& best_backend() {
  return backend_for(Device::auto_);
}

}  // namespace gptqw
