// The safetensors writer: checks what is added, then writes the header and data as the
// reference implementation does, through common/output_file.h.
#include "io/safetensors_writer.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/half.h"
#include "common/output_file.h"
#include "common/text_file.h"
#include "io/safetensors_detail.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::checked_nbytes;
using detail::checked_numel;

namespace {

void check_name(const std::string& name, const char* what) {
  if (name.empty()) throw FormatError(std::string("safetensors writer: empty ") + what);
  if (find_invalid_utf8(name) != std::string::npos)
    throw FormatError(std::string("safetensors writer: ") + what + " '" + name +
                      "' is not valid UTF-8");
}

}  // namespace

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  check_name(key, "metadata key");
  if (find_invalid_utf8(value) != std::string::npos)
    throw FormatError("safetensors writer: metadata '" + key + "' has a value that is not UTF-8");
  m_metadata[key] = value;
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            const void* data, size_t nbytes) {
  check_name(name, "tensor name");
  if (name == "__metadata__")
    throw FormatError("safetensors writer: '__metadata__' is reserved, not a tensor name");
  if (m_entries.count(name))
    throw FormatError("safetensors writer: tensor '" + name + "' added twice");
  auto needed = checked_nbytes(shape, dtype);
  if (!needed)
    throw FormatError("safetensors writer: tensor '" + name + "': shape " + shape_str(shape) +
                      " has a negative dimension or overflows 64 bits");
  if (*needed != nbytes)
    throw FormatError("safetensors writer: tensor '" + name + "': shape " + shape_str(shape) +
                      " x " + std::string(dtype_name(dtype)) + " needs " +
                      std::to_string(*needed) + " bytes, got " + std::to_string(nbytes));
  if (nbytes > 0 && !data)
    throw FormatError("safetensors writer: tensor '" + name + "': no data");
  Entry e{dtype, std::move(shape), std::vector<std::byte>(nbytes)};
  if (nbytes) std::memcpy(e.bytes.data(), data, nbytes);
  m_entries.emplace(name, std::move(e));
}

void SafetensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape,
                                const float* data) {
  auto n = checked_numel(shape);
  if (!n)
    throw FormatError("safetensors writer: tensor '" + name + "': shape " + shape_str(shape) +
                      " has a negative dimension or overflows 64 bits");
  add(name, DType::F32, std::move(shape), data, static_cast<size_t>(*n) * 4);
}

void SafetensorsWriter::add_f16(const std::string& name, std::vector<int64_t> shape,
                                const float* data) {
  auto n = checked_numel(shape);
  if (!n)
    throw FormatError("safetensors writer: tensor '" + name + "': shape " + shape_str(shape) +
                      " has a negative dimension or overflows 64 bits");
  std::vector<uint16_t> half(static_cast<size_t>(*n));
  for (size_t i = 0; i < half.size(); ++i) half[i] = float_to_half(data[i]);
  add(name, DType::F16, std::move(shape), half.data(), half.size() * 2);
}

size_t SafetensorsWriter::size_bytes() const {
  size_t total = 0;
  for (const auto& [name, e] : m_entries) total += e.bytes.size();
  return total;
}

void SafetensorsWriter::write(const fs::path& file) const {
  // Header layout as the reference implementation writes it: __metadata__ first, then each
  // tensor as {"dtype", "shape", "data_offsets"}, compact. Built by hand rather than through a
  // json object so the order is ours and the cost stays linear in the number of tensors.
  // Data order as the reference implementation's: by dtype, widest first (DType is declared in
  // the Rust enum's order, narrowest first), then by name. Each tensor's size is a multiple of
  // its element size, so widest-first keeps every tensor aligned to its element size; with a
  // single dtype it is plain name order. Files are byte-identical to Python's save_file.
  std::vector<const std::pair<const std::string, Entry>*> order;
  for (const auto& kv : m_entries) order.push_back(&kv);  // already by name
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return static_cast<int>(a->second.dtype) > static_cast<int>(b->second.dtype);
  });

  std::string header = "{";
  if (!m_metadata.empty()) header += "\"__metadata__\":" + json(m_metadata).dump();
  uint64_t offset = 0;
  for (const auto* kv : order) {
    const auto& [name, e] = *kv;
    if (header.size() > 1) header += ',';
    header += json(name).dump() + ":{\"dtype\":\"" + std::string(dtype_name(e.dtype)) +
              "\",\"shape\":" + json(e.shape).dump() + ",\"data_offsets\":[" +
              std::to_string(offset) + "," + std::to_string(offset + e.bytes.size()) + "]}";
    offset += e.bytes.size();
  }
  header += '}';
  // Spaces (valid JSON whitespace) so that 8 + N is a multiple of 8 and every tensor of the
  // data buffer starts 8-aligned in a mapped file.
  header.append((8 - header.size() % 8) % 8, ' ');
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(uint64_t(header.size()) >> (8 * i));

  // The one way outputs are written (common/output_file.h): a temporary beside the file,
  // flushed, then renamed into place; a failure (a full disk) leaves the destination as it was.
  AtomicFile out(file);
  out.write(len, 8);
  out.write(header);
  for (const auto* kv : order) out.write(kv->second.bytes.data(), kv->second.bytes.size());
  out.commit();
}

}  // namespace gptqw
