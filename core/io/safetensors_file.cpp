// One memory-mapped .safetensors file: the map, the header parser and the file that owns both.
// The parser trusts nothing in the file: every offset and size is checked before a view is
// handed out, so a corrupt or hostile file gives a FormatError, never a wild read.
#include "io/safetensors_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <nlohmann/json.hpp>

#include "common/cancel.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json.h"
#include "io/safetensors_detail.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::checked_nbytes;
using detail::json_type;
using detail::tensor_error;

namespace {

// The Rust reference implementation refuses headers over 100 MB (MAX_HEADER_SIZE): a larger
// length is corruption or an attack, and refusing it before allocating keeps us from trying
// to parse gigabytes of "JSON".
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::string range_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// Headers and indexes: duplicate keys are refused (nlohmann would keep the last silently; in a
// header that would hide a tensor whose bytes are still in the buffer, in an index a conflicting
// shard assignment), and so is nesting deeper than kMaxJsonDepth (they nest 3 levels).
json parse_json_strict(std::string_view text, const fs::path& file, const std::string& what) {
  return parse_json(text, file, JsonRules{what, /*unique_keys=*/true});
}

// One header entry checked field by field; throws naming the tensor.
TensorView parse_entry(const std::string& name, const json& v, const std::byte* buffer,
                       uint64_t buffer_size, const fs::path& file) {
  if (!v.is_object())
    throw tensor_error(file, name,
                       "header entry is " + json_type(v) +
                           ", expected an object with dtype, shape and data_offsets");
  auto field = [&](const char* key) -> const json& {
    auto it = v.find(key);
    if (it == v.end()) throw tensor_error(file, name, std::string("missing '") + key + "'");
    return *it;
  };
  TensorView t;
  t.name = name;
  t.file = file;

  const json& dt = field("dtype");
  if (!dt.is_string())
    throw tensor_error(file, name, "'dtype' is " + json_type(dt) + ", expected a string");
  auto dtype = parse_dtype(dt.get_ref<const std::string&>());
  if (!dtype) throw tensor_error(file, name, "unknown dtype '" + dt.get<std::string>() + "'");
  t.dtype = *dtype;

  const json& sh = field("shape");
  if (!sh.is_array())
    throw tensor_error(file, name, "'shape' is " + json_type(sh) + ", expected an array");
  for (const json& d : sh) {
    if (!d.is_number_integer())
      throw tensor_error(file, name, "shape " + sh.dump() + " holds a non-integer dimension");
    if (d.is_number_unsigned() && d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      throw tensor_error(file, name, "shape " + sh.dump() + " has a dimension past 2^63");
    int64_t dim = d.get<int64_t>();
    if (dim < 0)
      throw tensor_error(file, name,
                         "shape " + sh.dump() + " has a negative dimension " + std::to_string(dim));
    t.shape.push_back(dim);
  }

  const json& off = field("data_offsets");
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    throw tensor_error(file, name,
                       "data_offsets must be [begin, end] with non-negative integers, got " +
                           off.dump());
  uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  if (begin > end)
    throw tensor_error(file, name, "data_offsets " + range_str(begin, end) + " run backwards");
  if (end > buffer_size)
    throw tensor_error(file, name,
                       "data_offsets " + range_str(begin, end) +
                           " run past the end of the data buffer (" +
                           std::to_string(buffer_size) + " bytes)");

  auto needed = checked_nbytes(t.shape, t.dtype);
  if (!needed)
    throw tensor_error(file, name,
                       "shape " + shape_str(t.shape) + " x " + std::string(dtype_name(t.dtype)) +
                           " has a byte size that overflows 64 bits");
  if (*needed != end - begin)
    throw tensor_error(file, name,
                       "shape " + shape_str(t.shape) + " x " + std::string(dtype_name(t.dtype)) +
                           " needs " + std::to_string(*needed) + " bytes, data_offsets give " +
                           std::to_string(end - begin));
  t.data = buffer + begin;
  t.nbytes = static_cast<size_t>(end - begin);
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// MappedFile

MappedFile::MappedFile(const fs::path& path) : m_path(path) {
  // Opened once, checked on the descriptor (a regular file: FIFOs and devices are refused
  // without blocking), mapped from the same descriptor.
  InputFile file(path, kWeightsInput);
  m_identity = file.identity();
  if (file.size() > SIZE_MAX) throw IoError(file_msg(path, "too large to map"));
  m_size = static_cast<size_t>(file.size());
  if (m_size > 0) {
    void* p = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, file.fd(), 0);
    if (p == MAP_FAILED)
      throw IoError(file_msg(path, "cannot map into memory: " + errno_text(errno)));
    m_data = static_cast<const std::byte*>(p);
  }
  // The descriptor closes here; the mapping keeps the file referenced.
}

MappedFile::~MappedFile() {
  if (m_data) ::munmap(const_cast<std::byte*>(m_data), m_size);
}

// ---------------------------------------------------------------------------------------------
// Parsing

SafetensorsHeader parse_safetensors(const std::byte* data, size_t size, const fs::path& file) {
  if (size < 8)
    throw FormatError(file_msg(file, "file is " + std::to_string(size) +
                                         " bytes, too short for a safetensors header (8 bytes "
                                         "of header length at least)"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(data[i]);
  if (n > kMaxHeaderBytes)
    throw FormatError(file_msg(file, "header length " + std::to_string(n) +
                                         " exceeds the 100 MB limit: not a safetensors file, "
                                         "or a corrupt one"));
  if (n > size - 8)
    throw FormatError(file_msg(file, "header length " + std::to_string(n) +
                                         " runs past the end of the file (" +
                                         std::to_string(size) + " bytes)"));
  std::string_view text(reinterpret_cast<const char*>(data + 8), static_cast<size_t>(n));
  json header = parse_json_strict(text, file, "header");
  if (!header.is_object())
    throw FormatError(file_msg(file, "header is " + json_type(header) + ", expected an object"));

  const std::byte* buffer = data + 8 + n;
  uint64_t buffer_size = size - 8 - n;
  SafetensorsHeader out;
  CancelPoll poll;
  for (const auto& [key, value] : header.items()) {
    poll.tick();
    if (key == "__metadata__") {
      if (value.is_null()) continue;  // the Rust reader takes null as "no metadata"
      if (!value.is_object())
        throw FormatError(file_msg(file, "__metadata__ is " + json_type(value) +
                                             ", expected an object of strings"));
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          throw FormatError(file_msg(file, "__metadata__ entry '" + mk + "' is " +
                                               json_type(mv) + ", expected a string"));
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    out.tensors.push_back(parse_entry(key, value, buffer, buffer_size, file));
  }

  // Data-offset order, which is also what the overlap check needs. Empty tensors own no
  // bytes, so they cannot overlap anything wherever their (equal) offsets point.
  std::sort(out.tensors.begin(), out.tensors.end(), [](const TensorView& a, const TensorView& b) {
    if (a.data != b.data) return a.data < b.data;
    if (a.nbytes != b.nbytes) return a.nbytes < b.nbytes;
    return a.name < b.name;
  });
  const TensorView* reach = nullptr;  // the non-empty tensor reaching furthest so far
  for (const TensorView& t : out.tensors) {
    if (t.nbytes == 0) continue;
    if (reach && t.data < reach->data + reach->nbytes) {
      auto off = [&](const TensorView& v) {
        uint64_t b = static_cast<uint64_t>(v.data - buffer);
        return range_str(b, b + v.nbytes);
      };
      throw tensor_error(file, t.name,
                         "data_offsets " + off(t) + " overlap tensor '" + reach->name + "' at " +
                             off(*reach));
    }
    if (!reach || t.data + t.nbytes > reach->data + reach->nbytes) reach = &t;
  }
  return out;
}

SafetensorsFile::SafetensorsFile(const fs::path& path)
    : SafetensorsFile(std::make_unique<MappedFile>(path)) {}

SafetensorsFile::SafetensorsFile(std::unique_ptr<MappedFile> map) : m_map(std::move(map)) {
  const fs::path& path = m_map->path();
  SafetensorsHeader h = parse_safetensors(m_map->data(), m_map->size(), path);
  m_tensors = std::move(h.tensors);
  m_metadata = std::move(h.metadata);
  for (size_t i = 0; i < m_tensors.size(); ++i) m_index.emplace(m_tensors[i].name, i);
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  auto it = m_index.find(name);
  return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

void release_pages(const TensorView& t) {
  if (!t.data || t.nbytes == 0) return;
  // Only whole pages inside the tensor: a page shared with a neighbour may still be in use.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(t.data) + t.nbytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace gptqw
