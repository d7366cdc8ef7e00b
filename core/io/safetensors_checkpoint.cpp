// A safetensors checkpoint: one file, a folder's model.safetensors or single *.safetensors
// file, or the shards a model.safetensors.index.json lists, each mapped and parsed once.
#include "io/safetensors_checkpoint.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <system_error>

#include "common/cancel.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json.h"
#include "io/safetensors_detail.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::json_type;

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

}  // namespace gptqw
