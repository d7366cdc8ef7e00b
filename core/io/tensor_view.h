// A tensor as the safetensors readers hand it out: its dtype (the header's spellings), shape
// and bytes inside a mapped file, and the conversion of those bytes to fp32 with every value
// checked finite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gptqw {

enum class DType : uint8_t {
  BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64
};

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // "F32", "BF16", ...
std::optional<DType> parse_dtype(std::string_view name);

// A read-only view of one tensor inside a mapped file. Valid while its file is open.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const std::byte* data = nullptr;
  size_t nbytes = 0;
  std::filesystem::path file;
  int64_t numel() const;
};

// Converts any numeric tensor to fp32 in row-major order; out holds t.numel() floats.
// F8 and BOOL are refused with a FormatError naming the tensor, and so is a value that is not
// finite in fp32 (NaN, infinity, an F64 beyond fp32's range), naming the tensor and element.
// Polls for cancellation (common/cancel.h) every million elements.
void to_float(const TensorView& t, float* out);
std::vector<float> to_float(const TensorView& t);

// Throws FormatError "file: tensor 'name': NaN at element k of total; ..." for the first value
// of v[0, n) that is not finite (v is elements [offset, offset + n) of a tensor of `total`
// elements; total 0: n). Every reader of weights calls it on what it converts.
void require_finite(const float* v, size_t n, const std::filesystem::path& file,
                    const std::string& tensor, size_t offset = 0, size_t total = 0);

}  // namespace gptqw
