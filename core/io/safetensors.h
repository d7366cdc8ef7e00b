// safetensors: memory-mapped, zero-copy reading of single files and sharded checkpoints, and
// a writer for export. Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data buffer; offsets are relative to the buffer. All tensors are row-major.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
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

// A checkpoint: a single .safetensors file, or a folder holding model.safetensors or
// model.safetensors.index.json (sharded: {"weight_map": {tensor: shard file}}) or a single
// *.safetensors file. Every tensor named in the index must exist in its shard.
// The files of a folder must stay inside it once links are resolved (an index naming
// "../other/x.safetensors", or a shard that is a link to a file elsewhere, is refused with the
// path). The index may name one shard file under a few spellings ("a.safetensors",
// "./a.safetensors"), at most kMaxShardAliases; each file is mapped and parsed once, whatever
// the number of names and tensors pointing at it.
constexpr int kMaxShardAliases = 8;

class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& file_or_dir);
  const TensorView* find(std::string_view name) const;
  const TensorView& get(std::string_view name) const;  // FormatError naming the tensor if absent
  std::vector<std::string> names() const;               // sorted
  const std::vector<std::filesystem::path>& files() const { return m_files; }
  uint64_t bytes_on_disk() const;
  const std::map<std::string, std::string>& metadata() const;  // of the first file
  const std::filesystem::path& path() const { return m_root; }  // as passed to open()

 private:
  std::filesystem::path m_root;
  std::vector<std::filesystem::path> m_files;
  std::vector<std::shared_ptr<SafetensorsFile>> m_shards;
  std::map<std::string, const TensorView*, std::less<>> m_tensors;
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

// Tells the kernel the tensor's mapped pages are not needed any more (after converting it).
// The mapping is read-only and private, so the pages are simply dropped and read again from
// the file if touched later; without this, a model walked block by block would keep every
// block it has read counted as resident memory.
void release_pages(const TensorView& t);

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
