// dtypes (sizes, the header's spellings), tensor views, and the conversion of a tensor's bytes
// to fp32 with every value checked finite.
#include "io/tensor_view.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/cancel.h"
#include "common/error.h"
#include "common/half.h"
#include "io/safetensors_detail.h"

namespace gptqw {

namespace fs = std::filesystem;
using detail::checked_numel;
using detail::tensor_error;

// ---------------------------------------------------------------------------------------------
// dtypes

size_t dtype_size(DType t) {
  switch (t) {
    case DType::BOOL:
    case DType::U8:
    case DType::I8:
    case DType::F8_E5M2:
    case DType::F8_E4M3:
      return 1;
    case DType::I16:
    case DType::U16:
    case DType::F16:
    case DType::BF16:
      return 2;
    case DType::I32:
    case DType::U32:
    case DType::F32:
      return 4;
    case DType::F64:
    case DType::I64:
    case DType::U64:
      return 8;
  }
  return 0;
}

namespace {
struct DTypeName {
  DType type;
  std::string_view name;
};
// The spellings used by the safetensors header.
constexpr DTypeName kDTypeNames[] = {
    {DType::BOOL, "BOOL"}, {DType::U8, "U8"},       {DType::I8, "I8"},
    {DType::F8_E5M2, "F8_E5M2"}, {DType::F8_E4M3, "F8_E4M3"}, {DType::I16, "I16"},
    {DType::U16, "U16"},   {DType::F16, "F16"},     {DType::BF16, "BF16"},
    {DType::I32, "I32"},   {DType::U32, "U32"},     {DType::F32, "F32"},
    {DType::F64, "F64"},   {DType::I64, "I64"},     {DType::U64, "U64"},
};
}  // namespace

std::string_view dtype_name(DType t) {
  for (const auto& d : kDTypeNames)
    if (d.type == t) return d.name;
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& d : kDTypeNames)
    if (d.name == name) return d.type;
  return std::nullopt;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Conversion

namespace {
// memcpy per element: the data buffer need not be aligned for T (offsets are arbitrary).
template <class T, class F>
void convert(const std::byte* src, size_t n, float* out, F to_f) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * sizeof(T), sizeof(T));
    out[i] = to_f(v);
  }
}
template <class T>
void convert(const std::byte* src, size_t n, float* out) {
  convert<T>(src, n, out, [](T v) { return static_cast<float>(v); });
}
}  // namespace

namespace {
// BOOL is not a number, and the F8 formats are scaled per tensor by whoever produced them: a
// plain cast would silently give wrong weights.
void refuse_unconvertible(const TensorView& t) {
  if (t.dtype == DType::BOOL || t.dtype == DType::F8_E4M3 || t.dtype == DType::F8_E5M2)
    throw tensor_error(t.file, t.name,
                       "dtype " + std::string(dtype_name(t.dtype)) +
                           " cannot be converted to fp32 (only integer and F16/BF16/F32/F64 "
                           "tensors can)");
}
}  // namespace

void to_float(const TensorView& t, float* out) {
  refuse_unconvertible(t);
  auto n = checked_numel(t.shape);
  if (!n || static_cast<uint64_t>(*n) * dtype_size(t.dtype) != t.nbytes)
    throw tensor_error(t.file, t.name,
                       "shape " + shape_str(t.shape) + " x " + std::string(dtype_name(t.dtype)) +
                           " does not match its " + std::to_string(t.nbytes) + " bytes");
  const size_t count = static_cast<size_t>(*n);
  // A million elements at a time, with a cancellation check between: an embedding of a large
  // vocabulary is a few hundred million.
  constexpr size_t kChunk = size_t(1) << 20;
  for (size_t i0 = 0; i0 < count; i0 += kChunk) {
    check_cancelled();
    const size_t m = std::min(kChunk, count - i0);
    const std::byte* src = t.data + i0 * dtype_size(t.dtype);
    float* dst = out + i0;
    switch (t.dtype) {
      case DType::F32: std::memcpy(dst, src, m * 4); break;
      case DType::F16:
        convert<uint16_t>(src, m, dst, [](uint16_t h) { return half_to_float(h); });
        break;
      case DType::BF16:
        convert<uint16_t>(src, m, dst, [](uint16_t h) { return bf16_to_float(h); });
        break;
      case DType::F64:
        // Checked before the cast: a double beyond fp32's range has no fp32 value (the cast
        // would be undefined behaviour).
        convert<double>(src, m, dst, [&](double v) {
          if (!(std::fabs(v) <= double(std::numeric_limits<float>::max()))) return NAN;
          return static_cast<float>(v);
        });
        break;
      case DType::I8: convert<int8_t>(src, m, dst); break;
      case DType::U8: convert<uint8_t>(src, m, dst); break;
      case DType::I16: convert<int16_t>(src, m, dst); break;
      case DType::U16: convert<uint16_t>(src, m, dst); break;
      case DType::I32: convert<int32_t>(src, m, dst); break;
      case DType::U32: convert<uint32_t>(src, m, dst); break;
      case DType::I64: convert<int64_t>(src, m, dst); break;
      case DType::U64: convert<uint64_t>(src, m, dst); break;
      case DType::BOOL:
      case DType::F8_E5M2:
      case DType::F8_E4M3:
        return;  // refused above
    }
    if (t.dtype == DType::F64)  // out-of-range values became NaN above: say what they were
      for (size_t i = 0; i < m; ++i)
        if (!std::isfinite(dst[i]))
          throw tensor_error(t.file, t.name,
                             "element " + std::to_string(i0 + i) + " of " +
                                 std::to_string(count) +
                                 " is not finite in fp32 (NaN, infinity or beyond the fp32 range); "
                                 "weights, scales and norms must be finite");
    require_finite(dst, m, t.file, t.name, i0, count);
  }
}

void require_finite(const float* v, size_t n, const fs::path& file, const std::string& tensor,
                    size_t offset, size_t total) {
  // A NaN or infinity in weights, scales or norms only ever yields NaN logits (and a
  // "perplexity nan"): refused where the tensor and position can still be named.
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]))
      throw tensor_error(file, tensor,
                         std::string(std::isnan(v[i]) ? "NaN" : v[i] > 0 ? "+inf" : "-inf") +
                             " at element " + std::to_string(offset + i) + " of " +
                             std::to_string(total ? total : n) +
                             "; weights, scales and norms must be finite");
}

std::vector<float> to_float(const TensorView& t) {
  auto n = checked_numel(t.shape);
  if (!n)
    throw tensor_error(t.file, t.name, "shape " + shape_str(t.shape) + " overflows 64 bits");
  refuse_unconvertible(t);  // before allocating numel floats for nothing
  std::vector<float> out(static_cast<size_t>(*n));
  to_float(t, out.data());
  return out;
}

}  // namespace gptqw
