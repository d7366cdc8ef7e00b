// A GPTQ checkpoint folder (spec section 6: what AutoGPTQ / GPTQModel write and transformers /
// vLLM load) as a WeightSource: each quantized linear's qweight / qzeros / scales / g_idx are
// unpacked and dequantized to fp32 when its block is asked for,
//   W[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]),
// and everything else (embeddings, norms, lm_head, biases, and the linears listed in
// modules_not_quantized, stored as a plain .weight) is read as in any HF folder.
// Also holds GptqSettings, the quantize_config.json / "quantization_config" content, which the
// exporter writes and the reader parses.
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/weights.h"
#include "quant/packing.h"
#include "quant/quantizer.h"

namespace gptqw {

// The settings a GPTQ checkpoint declares (quantize_config.json, and the same keys under
// "quantization_config" in config.json).
struct GptqSettings {
  QuantConfig quant;            // bits, group_size (-1: none), sym
  bool desc_act = false;        // act-order: g_idx is a permutation-style map, not k / gs
  bool static_groups = false;
  bool true_sequential = true;
  double damp_percent = 0.01;
  // qzeros convention; unset: "gptq" (v1) for symmetric grids, "gptq_v2" for asymmetric ones
  // (v1 cannot store zero 0, see packing.h).
  std::optional<ZeroFormat> format;
  std::string model_file_base_name = "model";
  // Linear modules left unquantized in every block, by their name within the block
  // ("mlp.down_proj": one of the seven linear_name()s, the same list for every block). They are
  // stored as a plain <name>.weight (and .bias) in the float dtype of the export, for a layer
  // whose shape the format's loaders cannot take (K = 172 at 3 bits). Names, not full tensor
  // paths, because every loader matches them against the full module name by suffix
  // (optimum) or substring (vLLM).
  std::vector<std::string> modules_not_quantized;
  // The keys of a read quantize_config that this program does not interpret (optimum's
  // "dataset", "use_exllama", "exllama_config", AutoGPTQ's "model_name_or_path", ...), kept
  // verbatim so that a re-export writes them back; to_json never lets them override its own.
  nlohmann::json extra = nlohmann::json::object();

  ZeroFormat zero_format() const {
    return format.value_or(quant.sym ? ZeroFormat::v1 : ZeroFormat::v2);
  }
  // modules_not_quantized as flags indexed by LinearKind. Throws ConfigError naming the field
  // and the valid names for a name that is not one of the seven.
  std::array<bool, kNumLinears> skipped_kinds() const;
  bool is_skipped(LinearKind kind) const { return skipped_kinds()[static_cast<int>(kind)]; }

  // The quantize_config.json object: bits, group_size, desc_act, sym, true_sequential,
  // damp_percent, static_groups, quant_method "gptq", checkpoint_format and the same value as
  // "format" (optimum's newer key), pack_dtype "int32", model_file_base_name, plus lm_head
  // false and meta.quantizer naming this program (as GPTQModel does), and the `extra` keys.
  // When modules are left unquantized, three keys say so, one for each kind of reader (no key
  // is understood by all of them):
  //   "modules_not_quantized": ["mlp.down_proj"]            ours (the list above), for people
  //                                                          and for this program's reader;
  //   "modules_in_block_to_quantize": [[q, k, v], [o], [gate, up]]
  //                            the quantized ones per true-sequential group: transformers'
  //                            GPTQConfig hands it to optimum, which replaces only the listed
  //                            modules by QuantLinear; vLLM reads it too (flattened);
  //   "dynamic": {"-:.*\.mlp\.down_proj$": {}}
  //                            GPTQModel's per-module rules, "-:" = do not quantize, a regex
  //                            matched against the full module name; GPTQModel's loader and
  //                            vLLM honour it, transformers does not.
  // None of them is written when every module is quantized, so such exports are unchanged.
  // Throws ConfigError for an unknown module name.
  nlohmann::json to_json() const;
  // Parses such an object. Throws FormatError naming `file` and the field: quant_method other
  // than "gptq", unknown checkpoint_format, bits the packing cannot hold, bad types, a module
  // name in modules_not_quantized / modules_in_block_to_quantize that is not one of the seven
  // linear modules, or the two keys disagreeing. modules_in_block_to_quantize is accepted as
  // optimum writes it (a list of lists) or as vLLM also reads it (a flat list); the modules it
  // leaves out become modules_not_quantized. "dynamic" is not read: modules it excludes are
  // recognised by their tensors (a plain .weight, no .qweight) when the folder is opened.
  static GptqSettings from_json(const nlohmann::json& j, const std::filesystem::path& file);
};

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
  std::string dtype() const override;   // "int4", "int3", ...: the packed weights

  // The declared quantization settings (for `gptqw inspect`).
  const GptqSettings& settings() const { return m_settings; }
  // Whether the layer is stored quantized (qweight ...) rather than as a plain weight (listed
  // in modules_not_quantized, or excluded by GPTQModel's "dynamic" rules).
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
