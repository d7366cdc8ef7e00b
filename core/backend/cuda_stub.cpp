// cuda_backend_or_null() for builds without the CUDA backend (GPTQW_CUDA=OFF, or AUTO without
// a CUDA toolkit). With it, kernels/cuda_backend.cpp defines the function and this file is
// empty.
#include "backend/backend.h"

#ifndef GPTQW_HAVE_CUDA
namespace gptqw {

Backend* cuda_backend_or_null(std::string* why) {
  if (why) *why = "this build has no CUDA backend";
  return nullptr;
}

}  // namespace gptqw
#endif
