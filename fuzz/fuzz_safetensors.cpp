// safetensors header and data buffer: parse_safetensors() on the raw bytes, then every tensor
// it accepts converted to fp32 (the views must stay inside the buffer).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_util.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gptqw;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  gptqw_fuzz::expect_rejection([&] {
    SafetensorsHeader h = parse_safetensors(bytes, size, "fuzz.safetensors");
    for (const TensorView& t : h.tensors) {
      if (t.nbytes > 0 && (t.data < bytes || t.data + t.nbytes > bytes + size))
        gptqw_fuzz::finding("tensor '" + t.name + "' points outside the input");
      // Bounded: numel * dtype_size == nbytes <= size, so at most 4 * size bytes of floats.
      gptqw_fuzz::expect_rejection([&] {
        std::vector<float> f = to_float(t);
        if (static_cast<int64_t>(f.size()) != t.numel()) gptqw_fuzz::finding("to_float size");
      });
    }
  });
  return 0;
}
