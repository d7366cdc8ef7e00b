// Writing a .safetensors file (export): tensors gathered in memory, then written in the order
// and layout of the reference implementation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/tensor_view.h"

namespace gptqw {

// Writes a .safetensors file: tensors sorted by name (a stable order, as the Python library
// does for equal alignment; mixed dtypes go widest first, as there, so that every tensor stays
// aligned to its element size), header padded with spaces to a multiple of 8 bytes so that the
// data buffer is aligned, __metadata__ included when set. Tensors are copied on add().
class SafetensorsWriter {
 public:
  void set_metadata(const std::string& key, const std::string& value);
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
           size_t nbytes);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const float* data);
  void add_f16(const std::string& name, std::vector<int64_t> shape, const float* data);  // casts
  size_t size_bytes() const;  // data bytes added so far
  // Written as common/output_file.h says (a temporary beside the file, renamed into place).
  // Throws IoError naming the file on any write failure (for example a full disk).
  void write(const std::filesystem::path& file) const;

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<std::byte> bytes;
  };
  std::map<std::string, Entry> m_entries;
  std::map<std::string, std::string> m_metadata;
};

}  // namespace gptqw
