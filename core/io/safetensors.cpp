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
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "common/cancel.h"
#include "common/error.h"
#include "common/half.h"
#include "common/input_file.h"
#include "common/json.h"
#include "common/output_file.h"
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

FormatError tensor_error(const fs::path& file, const std::string& name, const std::string& msg) {
  return FormatError(file_msg(file, "tensor '" + name + "': " + msg));
}

std::string json_type(const json& j) { return j.type_name(); }

std::string range_str(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

// Headers and indexes: duplicate keys are refused (nlohmann would keep the last silently; in a
// header that would hide a tensor whose bytes are still in the buffer, in an index a conflicting
// shard assignment), and so is nesting deeper than kMaxJsonDepth (they nest 3 levels).
json parse_json_strict(std::string_view text, const fs::path& file, const std::string& what) {
  return parse_json(text, file, JsonRules{what, /*unique_keys=*/true});
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

// ---------------------------------------------------------------------------------------------
// Checkpoint

namespace {

// A sharded checkpoint: the index names which shard holds each tensor. Shard names are
// resolved once per spelling and must stay inside the folder; each file is mapped and parsed
// once (by its identity on disk), so that many names for one file cost a map entry each, not a
// mapping of the file each.
void open_index(const fs::path& dir, const fs::path& index,
                std::vector<std::shared_ptr<SafetensorsFile>>& shards) {
  const json j = read_json_file(index, kIndexInput, JsonRules{"index", /*unique_keys=*/true});
  if (!j.is_object() || !j.contains("weight_map"))
    throw FormatError(file_msg(index, "no \"weight_map\" object"));
  const json& wm = j["weight_map"];
  if (!wm.is_object())
    throw FormatError(file_msg(index, "\"weight_map\" is " + json_type(wm) + ", expected an object"));
  if (wm.empty()) throw FormatError(file_msg(index, "\"weight_map\" lists no tensors"));

  std::map<std::string, const SafetensorsFile*> by_spelling;
  std::map<fs::path, const SafetensorsFile*> by_path;  // resolved path -> file
  std::map<std::pair<uint64_t, uint64_t>, const SafetensorsFile*> by_identity;
  std::map<const SafetensorsFile*, std::vector<std::string>> spellings;
  CancelPoll poll;
  for (const auto& [tensor, shard] : wm.items()) {
    poll.tick();
    if (!shard.is_string() || shard.get_ref<const std::string&>().empty())
      throw FormatError(file_msg(index, "tensor '" + tensor + "': shard is " + shard.dump() +
                                            ", expected a file name"));
    const std::string& s = shard.get_ref<const std::string&>();
    if (by_spelling.count(s)) continue;
    if (fs::path(s).is_absolute())
      throw FormatError(file_msg(index, "tensor '" + tensor + "': shard '" + s +
                                            "' must be a file name relative to the index"));
    fs::path resolved;
    try {
      resolved = resolve_inside(dir, s);
    } catch (const FormatError& e) {
      throw FormatError(file_msg(index, "tensor '" + tensor + "': shard '" + s + "': " + e.what()));
    }
    const SafetensorsFile* file = nullptr;
    if (auto it = by_path.find(resolved); it != by_path.end()) {
      file = it->second;
    } else {
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(resolved, ec)))
        throw IoError(file_msg(index, "shard '" + s + "' (listed for tensor '" + tensor +
                                          "') does not exist: " + (dir / s).string()));
      // Opened under the name the index gives (messages quote it), now known to stay inside.
      auto map = std::make_unique<MappedFile>(dir / s);
      if (auto it = by_identity.find(map->identity()); it != by_identity.end()) {
        file = it->second;  // a hard link or another path to a file mapped already
      } else {
        const auto id = map->identity();
        shards.push_back(std::make_shared<SafetensorsFile>(std::move(map)));
        file = shards.back().get();
        by_identity.emplace(id, file);
      }
      by_path.emplace(resolved, file);
    }
    std::vector<std::string>& names = spellings[file];
    names.push_back(s);
    if (names.size() > size_t(kMaxShardAliases))
      throw FormatError(file_msg(index, "names the shard file " + file->path().string() +
                                            " in more than " + std::to_string(kMaxShardAliases) +
                                            " ways ('" + names[0] + "', '" + names[1] + "', ..., '" +
                                            s + "'); an index names each shard once"));
    by_spelling.emplace(s, file);
  }
  for (const auto& [tensor, shard] : wm.items()) {
    poll.tick();
    const SafetensorsFile* f = by_spelling.at(shard.get_ref<const std::string&>());
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

  const fs::path& dir = file_or_dir;
  if (!fs::is_directory(st)) {
    c.m_shards.push_back(std::make_shared<SafetensorsFile>(file_or_dir));
  } else if (fs::path index = dir / "model.safetensors.index.json";
             fs::exists(fs::symlink_status(index, ec))) {
    resolve_inside(dir, index.filename());  // refuses a link out of the folder
    open_index(dir, index, c.m_shards);
  } else if (fs::path single = dir / "model.safetensors";
             fs::exists(fs::symlink_status(single, ec))) {
    resolve_inside(dir, single.filename());
    c.m_shards.push_back(std::make_shared<SafetensorsFile>(single));
  } else {
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::error_code entry_ec;  // a dangling link is skipped, not a reason to fail the listing
      if (e.path().extension() == ".safetensors" && e.is_regular_file(entry_ec))
        found.push_back(e.path());
    }
    if (ec) throw IoError(file_msg(dir, "cannot list folder: " + ec.message()));
    std::sort(found.begin(), found.end());
    if (found.empty()) throw IoError(file_msg(dir, "no .safetensors file in this folder"));
    if (found.size() > 1) {
      std::string list;
      for (const auto& f : found) list += (list.empty() ? "" : ", ") + f.filename().string();
      throw FormatError(file_msg(dir,
                                 "several .safetensors files and no model.safetensors.index.json "
                                 "to say how they fit together: " + list));
    }
    resolve_inside(dir, found[0].filename());
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

  // The one way outputs are written (common/output_file.h): a temporary beside the file,
  // flushed, then renamed into place; a failure (a full disk) leaves the destination as it was.
  AtomicFile out(file);
  out.write(len, 8);
  out.write(header);
  for (const auto* kv : order) out.write(kv->second.bytes.data(), kv->second.bytes.size());
  out.commit();
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
