// safetensors reading (mmap, zero-copy, full header validation), sharded checkpoints and the
// writer. The parser trusts nothing in the file: every offset and size is checked before a
// view is handed out, so a corrupt or hostile file gives a FormatError, never a wild read.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "common/error.h"
#include "common/json.h"
#include "common/half.h"
#include "common/text_file.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;

// The format is little-endian and tensors are handed out as raw bytes: a big-endian host would
// need byte swapping everywhere, which nothing here does.
static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes little-endian");

namespace {

// The Rust reference implementation refuses headers over 100 MB (MAX_HEADER_SIZE): a larger
// length is corruption or an attack, and refusing it before allocating keeps us from trying
// to parse gigabytes of "JSON".
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a regular file";
}

FormatError tensor_error(const fs::path& file, const std::string& name, const std::string& msg) {
  return FormatError(file_msg(file, "tensor '" + name + "': " + msg));
}

std::string json_type(const json& j) { return j.type_name(); }

std::string range_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// Parses JSON and refuses duplicate keys in any object. nlohmann keeps the last of duplicate
// keys silently; in a safetensors header that would hide a tensor whose bytes are still in
// the buffer, and in an index it would hide a conflicting shard assignment.
// Values nested deeper than kMaxJsonDepth are refused too: they are dropped while parsing
// (nlohmann's dump() and copy recurse, and an error message quoting a value nested a few hundred
// thousand levels deep would overflow the stack). Headers and indexes nest 3 levels.
json parse_json_strict(std::string_view text, const fs::path& file, const std::string& what) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  JsonDepthLimit depth_limit;  // refused below, whatever the duplicate check finds meanwhile
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (!depth_limit.admit(depth, event)) return false;
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && duplicate.empty() &&
            !open_objects.back().insert(parsed.get<std::string>()).second)
          duplicate = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    throw FormatError(file_msg(file, what + " is not valid JSON: " + e.what()));
  }
  if (depth_limit.exceeded())
    throw FormatError(file_msg(file, what + " is nested more than " +
                                         std::to_string(kMaxJsonDepth) + " levels deep"));
  if (!duplicate.empty())
    throw FormatError(file_msg(file, what + " has the key '" + duplicate + "' twice"));
  return j;
}

// Number of elements of a shape, or nullopt when it does not fit in 64 bits.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, DType dtype) {
  auto n = checked_numel(shape);
  uint64_t bytes;
  if (!n || __builtin_mul_overflow(static_cast<uint64_t>(*n), dtype_size(dtype), &bytes))
    return std::nullopt;
  return bytes;
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

// Writes all of [data, data + size) or returns the errno of the failure. A write() that
// returns 0 for a non-empty request makes no progress; treat it as a full device.
int write_all(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    size_t chunk = std::min<size_t>(size, size_t{1} << 30);
    ssize_t n = ::write(fd, p, chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return ENOSPC;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

void check_name(const std::string& name, const char* what) {
  if (name.empty()) throw FormatError(std::string("safetensors writer: empty ") + what);
  if (find_invalid_utf8(name) != std::string::npos)
    throw FormatError(std::string("safetensors writer: ") + what + " '" + name +
                      "' is not valid UTF-8");
}

}  // namespace

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
// MappedFile

MappedFile::MappedFile(const fs::path& path) : m_path(path) {
  // stat before open: opening a FIFO for reading blocks until a writer appears, and a
  // directory would only fail later with a less helpful message.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) throw IoError(file_msg(path, "no such file"));
    throw IoError(file_msg(path, "cannot access: " + errno_text(err)));
  }
  if (S_ISDIR(st.st_mode)) throw IoError(file_msg(path, "is a directory, expected a file"));
  if (!S_ISREG(st.st_mode))
    throw IoError(file_msg(path, std::string("is ") + file_kind(st.st_mode) +
                                     ", expected a regular file"));
  // O_NONBLOCK as well: should the path be swapped for a FIFO between stat and open, the
  // open still returns at once and the fstat below refuses it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw IoError(file_msg(path, "cannot open for reading: " + errno_text(errno)));
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(file_msg(path, "is not a regular file"));
  }
  m_size = static_cast<size_t>(st.st_size);
  if (m_size > 0) {
    void* p = ::mmap(nullptr, m_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw IoError(file_msg(path, "cannot map into memory: " + errno_text(err)));
    }
    m_data = static_cast<const std::byte*>(p);
  }
  ::close(fd);  // the mapping keeps the file referenced
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
  for (const auto& [key, value] : header.items()) {
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
    : m_map(std::make_unique<MappedFile>(path)) {
  SafetensorsHeader h = parse_safetensors(m_map->data(), m_map->size(), path);
  m_tensors = std::move(h.tensors);
  m_metadata = std::move(h.metadata);
  for (size_t i = 0; i < m_tensors.size(); ++i) m_index.emplace(m_tensors[i].name, i);
}

const TensorView* SafetensorsFile::find(std::string_view name) const {
  auto it = m_index.find(name);
  return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

// ---------------------------------------------------------------------------------------------
// Checkpoint

namespace {

// A sharded checkpoint: the index names which shard holds each tensor.
void open_index(const fs::path& index, std::vector<std::shared_ptr<SafetensorsFile>>& shards) {
  json j = parse_json_strict(read_text_file(index), index, "index");
  if (!j.is_object() || !j.contains("weight_map"))
    throw FormatError(file_msg(index, "no \"weight_map\" object"));
  const json& wm = j["weight_map"];
  if (!wm.is_object())
    throw FormatError(file_msg(index, "\"weight_map\" is " + json_type(wm) + ", expected an object"));
  if (wm.empty()) throw FormatError(file_msg(index, "\"weight_map\" lists no tensors"));

  std::map<std::string, std::string> shard_first_tensor;  // shard -> a tensor listed for it
  for (const auto& [tensor, shard] : wm.items()) {
    if (!shard.is_string() || shard.get_ref<const std::string&>().empty())
      throw FormatError(file_msg(index, "tensor '" + tensor + "': shard is " + shard.dump() +
                                            ", expected a file name"));
    const std::string& s = shard.get_ref<const std::string&>();
    if (fs::path(s).is_absolute())
      throw FormatError(file_msg(index, "tensor '" + tensor + "': shard '" + s +
                                            "' must be a file name relative to the index"));
    shard_first_tensor.emplace(s, tensor);
  }

  const fs::path dir = index.parent_path();
  std::map<std::string, const SafetensorsFile*> by_name;
  for (const auto& [shard, tensor] : shard_first_tensor) {
    fs::path p = dir / shard;
    std::error_code ec;
    if (!fs::exists(p, ec))
      throw IoError(file_msg(index, "shard '" + shard + "' (listed for tensor '" + tensor +
                                        "') does not exist: " + p.string()));
    shards.push_back(std::make_shared<SafetensorsFile>(p));
    by_name[shard] = shards.back().get();
  }
  for (const auto& [tensor, shard] : wm.items()) {
    const SafetensorsFile* f = by_name.at(shard.get<std::string>());
    if (!f->find(tensor))
      throw FormatError(file_msg(index, "tensor '" + tensor + "' is mapped to shard '" +
                                            shard.get<std::string>() +
                                            "', which does not hold it"));
  }
}

}  // namespace

Checkpoint Checkpoint::open(const fs::path& file_or_dir) {
  Checkpoint c;
  c.m_root = file_or_dir;
  std::error_code ec;
  auto st = fs::status(file_or_dir, ec);
  if (!fs::exists(st)) throw IoError(file_msg(file_or_dir, "no such file or folder"));

  if (!fs::is_directory(st)) {
    c.m_shards.push_back(std::make_shared<SafetensorsFile>(file_or_dir));
  } else if (fs::path index = file_or_dir / "model.safetensors.index.json"; fs::exists(index, ec)) {
    open_index(index, c.m_shards);
  } else if (fs::path single = file_or_dir / "model.safetensors"; fs::exists(single, ec)) {
    c.m_shards.push_back(std::make_shared<SafetensorsFile>(single));
  } else {
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(file_or_dir, ec)) {
      std::error_code entry_ec;  // a dangling link is skipped, not a reason to fail the listing
      if (e.path().extension() == ".safetensors" && e.is_regular_file(entry_ec))
        found.push_back(e.path());
    }
    if (ec) throw IoError(file_msg(file_or_dir, "cannot list folder: " + ec.message()));
    std::sort(found.begin(), found.end());
    if (found.empty()) throw IoError(file_msg(file_or_dir, "no .safetensors file in this folder"));
    if (found.size() > 1) {
      std::string list;
      for (const auto& f : found) list += (list.empty() ? "" : ", ") + f.filename().string();
      throw FormatError(file_msg(file_or_dir,
                                 "several .safetensors files and no model.safetensors.index.json "
                                 "to say how they fit together: " + list));
    }
    c.m_shards.push_back(std::make_shared<SafetensorsFile>(found[0]));
  }

  for (const auto& shard : c.m_shards) {
    c.m_files.push_back(shard->path());
    for (const TensorView& t : shard->tensors()) {
      auto [it, inserted] = c.m_tensors.emplace(t.name, &t);
      if (!inserted)
        throw FormatError(file_msg(file_or_dir, "tensor '" + t.name + "' is in two shards: " +
                                                    it->second->file.filename().string() +
                                                    " and " + t.file.filename().string()));
    }
  }
  return c;
}

const TensorView* Checkpoint::find(std::string_view name) const {
  auto it = m_tensors.find(name);
  return it == m_tensors.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::get(std::string_view name) const {
  if (const TensorView* t = find(name)) return *t;
  throw FormatError(file_msg(m_root, "no tensor '" + std::string(name) + "' in this checkpoint"));
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(m_tensors.size());
  for (const auto& [name, t] : m_tensors) out.push_back(name);
  return out;
}

uint64_t Checkpoint::bytes_on_disk() const {
  uint64_t total = 0;
  for (const auto& s : m_shards) total += s->file_size();
  return total;
}

const std::map<std::string, std::string>& Checkpoint::metadata() const {
  static const std::map<std::string, std::string> empty;
  return m_shards.empty() ? empty : m_shards.front()->metadata();
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
  if (count == 0) return;
  const std::byte* src = t.data;
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out, src, count * 4);
      return;
    case DType::F16:
      return convert<uint16_t>(src, count, out, [](uint16_t h) { return half_to_float(h); });
    case DType::BF16:
      return convert<uint16_t>(src, count, out, [](uint16_t h) { return bf16_to_float(h); });
    case DType::F64: return convert<double>(src, count, out);
    case DType::I8: return convert<int8_t>(src, count, out);
    case DType::U8: return convert<uint8_t>(src, count, out);
    case DType::I16: return convert<int16_t>(src, count, out);
    case DType::U16: return convert<uint16_t>(src, count, out);
    case DType::I32: return convert<int32_t>(src, count, out);
    case DType::U32: return convert<uint32_t>(src, count, out);
    case DType::I64: return convert<int64_t>(src, count, out);
    case DType::U64: return convert<uint64_t>(src, count, out);
    case DType::BOOL:
    case DType::F8_E5M2:
    case DType::F8_E4M3:
      break;  // refused above
  }
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

// ---------------------------------------------------------------------------------------------
// Writer

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

  struct stat st;
  if (::stat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw IoError(file_msg(file, "is a directory, cannot write a safetensors file there"));
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(file_msg(file, "cannot create: " + errno_text(errno)));
  // Only a regular file we wrote is ours to delete on failure; a device (/dev/full in the
  // tests, /dev/null) or a FIFO the user pointed us at must stay.
  bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  auto fail = [&](const std::string& what, int err) {
    if (fd >= 0) ::close(fd);
    if (regular) ::unlink(file.c_str());
    throw IoError(file_msg(file, what + ": " + errno_text(err)));
  };
  if (int err = write_all(fd, len, 8)) fail("write failed", err);
  if (int err = write_all(fd, header.data(), header.size())) fail("write failed", err);
  for (const auto* kv : order)
    if (int err = write_all(fd, kv->second.bytes.data(), kv->second.bytes.size()))
      fail("write failed", err);
  // Some file systems (NFS, quotas, delayed allocation) report a full disk only when the data
  // is flushed: fsync and close are checked for the same reason as every write.
  if (regular && ::fsync(fd) != 0 && errno != EINVAL) fail("flush to disk failed", errno);
  int rc = ::close(fd);
  fd = -1;
  if (rc != 0 && errno != EINTR) fail("close failed", errno);
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
