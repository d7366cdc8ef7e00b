// Helpers the safetensors sources share (tensor_view.cpp, safetensors_file.cpp,
// safetensors_checkpoint.cpp, safetensors_writer.cpp): errors naming a tensor, JSON type names
// for messages, and element and byte counts that refuse to overflow. Internal to core/io.
#pragma once

#include <bit>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/tensor_view.h"

namespace gptqw::detail {

// The format is little-endian and tensors are handed out as raw bytes: a big-endian host would
// need byte swapping everywhere, which nothing here does.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

inline FormatError tensor_error(const std::filesystem::path& file, const std::string& name,
                                const std::string& msg) {
  return FormatError(file_msg(file, "tensor '" + name + "': " + msg));
}

inline std::string json_type(const nlohmann::json& j) { return j.type_name(); }

// Number of elements of a shape, or nullopt when it does not fit in 64 bits.
inline std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

inline std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, DType dtype) {
  auto n = checked_numel(shape);
  uint64_t bytes;
  if (!n || __builtin_mul_overflow(static_cast<uint64_t>(*n), dtype_size(dtype), &bytes))
    return std::nullopt;
  return bytes;
}

}  // namespace gptqw::detail
