// One .safetensors file, memory-mapped: the read-only map of a file, the header parser that
// turns a file image into validated tensor views (the format: safetensors.h), and the file
// that owns both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/tensor_view.h"

namespace gptqw {

// Read-only memory map of a whole file (RAII), opened as common/input_file.h says (a regular
// file, checked on the open descriptor). Empty files map to size 0.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::byte* data() const { return m_data; }
  size_t size() const { return m_size; }
  const std::filesystem::path& path() const { return m_path; }
  // (st_dev, st_ino) of the file: the same file under two names is mapped once.
  std::pair<uint64_t, uint64_t> identity() const { return m_identity; }

 private:
  std::filesystem::path m_path;
  const std::byte* m_data = nullptr;
  size_t m_size = 0;
  std::pair<uint64_t, uint64_t> m_identity{0, 0};
};

// The validated content of a safetensors file image held in memory: the views point into the
// bytes passed in. This is the whole parser, separate from the file so that a fuzzer (or a
// caller holding the bytes already) can drive it; `file` only names the source in messages.
struct SafetensorsHeader {
  std::vector<TensorView> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;
};
SafetensorsHeader parse_safetensors(const std::byte* data, size_t size,
                                    const std::filesystem::path& file);

// One .safetensors file. The constructor validates the whole header (JSON, dtypes, shapes,
// offsets inside the buffer, no overlaps, shape x dtype == byte range) and throws
// FormatError naming the file and tensor otherwise.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::filesystem::path& path);
  explicit SafetensorsFile(std::unique_ptr<MappedFile> map);  // a file mapped already
  const std::vector<TensorView>& tensors() const { return m_tensors; }  // in data-offset order
  const TensorView* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return m_metadata; }
  const std::filesystem::path& path() const { return m_map->path(); }
  size_t file_size() const { return m_map->size(); }

 private:
  std::unique_ptr<MappedFile> m_map;
  std::vector<TensorView> m_tensors;
  std::map<std::string, size_t, std::less<>> m_index;
  std::map<std::string, std::string> m_metadata;
};

// Tells the kernel the tensor's mapped pages are not needed any more (after converting it).
// The mapping is read-only and private, so the pages are simply dropped and read again from
// the file if touched later; without this, a model walked block by block would keep every
// block it has read counted as resident memory.
void release_pages(const TensorView& t);

}  // namespace gptqw
