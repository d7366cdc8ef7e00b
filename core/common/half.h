// IEEE half (F16) and bfloat16 (BF16) conversions, bit-exact with PyTorch's casts:
// float -> half and float -> bf16 round to nearest even; NaN stays NaN, overflow becomes Inf.
#pragma once

#include <cstdint>
#include <cstring>

namespace gptqw {

inline float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // round half to even
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

}  // namespace gptqw
