// A safetensors checkpoint as a model names it: one file, or a folder with model.safetensors,
// or a sharded folder whose model.safetensors.index.json says which shard holds each tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/safetensors_file.h"
#include "io/tensor_view.h"

namespace gptqw {

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

}  // namespace gptqw
