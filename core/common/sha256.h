// SHA-256 (FIPS 180-4), for fingerprints of input files in reports: a rerun from a report
// checks that it reads the same calibration text, byte for byte.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gptqw {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::array<uint8_t, 32> digest();  // finishes; the object must not be updated afterwards
  std::string hex();                 // digest() as 64 lowercase hexadecimal digits

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> m_h;
  std::array<uint8_t, 64> m_buf{};
  size_t m_used = 0;
  uint64_t m_bytes = 0;
};

// The hexadecimal SHA-256 of a whole string.
std::string sha256_hex(std::string_view data);

}  // namespace gptqw
