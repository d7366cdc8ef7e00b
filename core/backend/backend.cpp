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

Device parse_device(const std::string& word) {
  for (Device d : {Device::auto_, Device::cpu, Device::cuda})
    if (word == device_name(d)) return d;
  throw ConfigError("unknown device '" + word + "' (auto, cpu or cuda)");
}

const char* device_name(Device device) {
  switch (device) {
    case Device::cpu:
      return "cpu";
    case Device::cuda:
      return "cuda";
    case Device::auto_:
      break;
  }
  return "auto";
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
