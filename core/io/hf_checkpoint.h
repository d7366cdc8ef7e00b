// A Hugging Face Llama-family model folder (config.json + *.safetensors) as a WeightSource.
// Every tensor the config implies is checked against the file headers when the folder is
// opened (names, shapes, numeric dtypes), so a config that contradicts the tensors is
// reported before any work starts; the data stays memory-mapped until a block is asked for.
#pragma once

#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/weights.h"

namespace gptqw {

// Every tensor of a checkpoint (name, dtype, shape, bytes) in name order, for model summaries.
std::vector<TensorInfo> tensor_listing(const Checkpoint& ckpt);

class HfCheckpoint : public WeightSource {
 public:
  explicit HfCheckpoint(const std::filesystem::path& dir);
  // With config.json read already (open_weights reads it once to tell the formats apart).
  HfCheckpoint(const std::filesystem::path& dir, const nlohmann::json& config_json);

  const ModelConfig& config() const override { return m_config; }
  BlockWeights block(int index) const override;
  Matrix embedding() const override;
  Vector final_norm() const override;
  Matrix lm_head() const override;
  std::vector<TensorInfo> tensors() const override;
  uint64_t bytes_on_disk() const override;
  std::string format() const override { return "safetensors"; }
  std::string dtype() const override;

  const Checkpoint& checkpoint() const { return m_ckpt; }

 private:
  // The named tensor, checked to have the expected shape.
  const TensorView& tensor(const std::string& name, const std::vector<int64_t>& shape) const;
  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const;
  Vector vector(const std::string& name, int64_t n) const;

  std::filesystem::path m_dir;
  ModelConfig m_config;
  Checkpoint m_ckpt;
};

}  // namespace gptqw
