// GptqSettings: what a GPTQ checkpoint declares about its quantization (quantize_config.json,
// and the same keys under "quantization_config" in config.json), which the exporter writes and
// the checkpoint reader parses.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/layers.h"
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
  // GptqOptions::damp_fraction under the name AutoGPTQ and GPTQModel give it in
  // quantize_config.json: a fraction (0.01 for 1%) despite the name, kept for their readers.
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
  // Single modules whose setting differs from `quant` (a mixed-precision plan), as GPTQModel's
  // "dynamic" stores them: "+:" rules override bits and group_size, "-:" rules leave a module
  // unquantized (choice.fp16). Keyed by (block, kind); a module not listed takes `quant` (or is
  // skipped by modules_not_quantized).
  std::map<LayerId, PrecisionChoice> per_module;
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
  // Whether the module is stored quantized, and with which config (`quant` with its per-module
  // bits and group size).
  bool is_quantized(LayerId id) const;
  QuantConfig quant_of(LayerId id) const;

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

}  // namespace gptqw
