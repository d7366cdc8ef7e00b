// A GPTQ checkpoint folder (spec section 6: what AutoGPTQ / GPTQModel write and transformers /
// vLLM load) as a WeightSource: each quantized linear's qweight / qzeros / scales / g_idx are
// unpacked and dequantized to fp32 when its block is asked for,
//   W[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]),
// and everything else (embeddings, norms, lm_head, biases, and the linears listed in
// modules_not_quantized or excluded by a "-:" rule of "dynamic", stored as a plain .weight) is
// read as in any HF folder. Each module is checked and dequantized with its own bits and group
// size: the settings' "dynamic" rules resolved per module (GptqSettings::per_module, quant_of).
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/gptq_settings.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "quant/packing.h"
#include "quant/quantizer.h"

namespace gptqw {

// True when the folder declares a GPTQ checkpoint: config.json's quantization_config has
// quant_method "gptq", or there is a quantize_config.json. Never throws (a broken folder is
// reported by the GptqCheckpoint constructor).
bool is_gptq_checkpoint(const std::filesystem::path& dir);
// The same decision from the files' content: config.json's quantization_config names
// quant_method "gptq", or there is a quantize_config.json.
bool is_gptq_config(const nlohmann::json& config_json, bool has_quantize_config);

class GptqCheckpoint : public WeightSource {
 public:
  // Reads config.json (+ quantize_config.json; both, when present, must agree on bits,
  // group_size, sym, desc_act and checkpoint_format) and checks every tensor the architecture
  // implies from the safetensors headers: names, dtypes and shapes of qweight, qzeros, scales,
  // g_idx, bias, norms and embeddings. Throws FormatError / ConfigError naming the file, the
  // tensor or field, and the expected and found shapes.
  explicit GptqCheckpoint(const std::filesystem::path& dir);
  // With the two files read already (open_weights reads each once); quantize_config_json is
  // nullopt when the folder has none.
  GptqCheckpoint(const std::filesystem::path& dir, const nlohmann::json& config_json,
                 const std::optional<nlohmann::json>& quantize_config_json);

  const ModelConfig& config() const override { return m_config; }
  BlockWeights block(int index) const override;  // dequantized to fp32 now
  Matrix embedding() const override;
  Vector final_norm() const override;
  Matrix lm_head() const override;
  std::vector<TensorInfo> tensors() const override;
  uint64_t bytes_on_disk() const override;
  std::string format() const override;  // "gptq" or "gptq_v2"
  // "int4", "int3", ...: the packed weights; a mixed checkpoint "int4 (mixed: 2-8 bits)" (the
  // global bits, then the range over the quantized modules) or "int4 (mixed group sizes)".
  std::string dtype() const override;

  // The declared quantization settings (for `gptqw inspect`).
  const GptqSettings& settings() const { return m_settings; }
  // Whether the layer is stored quantized (qweight ...) rather than as a plain weight (listed
  // in modules_not_quantized, or excluded by GPTQModel's "dynamic" rules); checked at open to
  // agree with settings().is_quantized.
  bool is_quantized(int block, LinearKind kind) const;
  // The layer as stored: codes [N, K], scales [G, N] (F16 values as fp32), zeros [G, N] as a
  // loader reads them (v1: stored + 1), g_idx [K], and Q [N, K] dequantized. Throws FormatError
  // for a g_idx entry outside [0, G), and Error naming the layer for one that is not quantized
  // (block() gives its weight).
  QuantizedWeights quantized(int block, LinearKind kind) const;
  const Checkpoint& checkpoint() const { return m_ckpt; }

 private:
  const TensorView& tensor(const std::string& name, const std::vector<int64_t>& shape,
                           const std::vector<DType>& dtypes) const;
  Matrix matrix(const std::string& name, int64_t rows, int64_t cols) const;
  Vector vector(const std::string& name, int64_t n) const;
  void check_linear(int block, LinearKind kind) const;

  std::filesystem::path m_dir;
  ModelConfig m_config;
  GptqSettings m_settings;
  std::array<bool, kNumLinears> m_skip{};  // m_settings.modules_not_quantized as flags
  Checkpoint m_ckpt;
};

}  // namespace gptqw
