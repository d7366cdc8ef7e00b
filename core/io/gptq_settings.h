// GptqSettings: what a GPTQ checkpoint declares about its quantization (quantize_config.json,
// and the same keys under "quantization_config" in config.json), which the exporter writes and
// the checkpoint reader parses.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/layers.h"
#include "quant/packing.h"
#include "quant/quantizer.h"

namespace gptqw {

// A module's quantizer config under per-module settings (a plan: GptqSettings::per_module,
// QuantizeOptions::per_module): `base` with the module's own bits and group size, or `base`
// when it has none; and whether the settings keep it in fp16.
QuantConfig module_quant(const std::map<LayerId, PrecisionChoice>& per_module, LayerId id,
                         const QuantConfig& base);
bool kept_in_fp16(const std::map<LayerId, PrecisionChoice>& per_module, LayerId id);

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
  // per_module adds its own "dynamic" rules (dynamic_rules() below); it does not change the two
  // lists, which are kind-wide. Throws ConfigError for an unknown module name, and as
  // dynamic_rules() does.
  nlohmann::json to_json() const;
  // The "dynamic" rules for per_module, as (key, value) pairs sorted by key (the order
  // nlohmann::json writes them in; it does not matter, see below). One rule per loader unit of a
  // block whose setting differs from `quant`: q/k/v together, gate/up together, o and down
  // alone, because vLLM loads q/k/v as one fused layer (qkv_proj) and gate/up as another
  // (gate_up_proj) and looks the FUSED name up in "dynamic", while GPTQModel looks up the
  // unfused module names; the rule names both ("+:.*\.layers\.3\.self_attn\.(q_proj|k_proj|
  // v_proj|qkv_proj)$" with {"bits": 3, "group_size": 64}; "-:..." with {} for fp16). No two
  // rules, ours or the kind-wide "-:" ones of modules_not_quantized, match the same module
  // name, so that GPTQModel (which moves every "-:" rule first) and vLLM (file order) resolve
  // every module alike whatever the order. Throws ConfigError naming the block and modules
  // when members of one unit differ (vLLM refuses shards of different precision in a fused
  // layer), and for a quantized per_module entry of a kind listed in modules_not_quantized.
  std::vector<std::pair<std::string, nlohmann::json>> dynamic_rules() const;
  // Parses such an object. Throws FormatError naming `file` and the field: quant_method other
  // than "gptq", unknown checkpoint_format, bits the packing cannot hold, bad types, a module
  // name in modules_not_quantized / modules_in_block_to_quantize that is not one of the seven
  // linear modules, or the two keys disagreeing. modules_in_block_to_quantize is accepted as
  // optimum writes it (a list of lists) or as vLLM also reads it (a flat list); the modules it
  // leaves out become modules_not_quantized.
  // "dynamic" (GPTQModel's per-module rules) is checked and, for blocks [0, num_layers),
  // resolved into per_module (only entries that differ from `quant`, and none for a kind of
  // modules_not_quantized) for every module name "model.layers.B.<linear_name>", as GPTQModel
  // resolves it (see gptq_settings.cpp). Rules are applied in file order; nlohmann::json
  // sorts object keys, so `dynamic_order` gives the keys in the file's order
  // (dynamic_key_order of the file's text). Without it (empty) the order is only known for
  // one rule, and a file whose resolution depends on it is refused. FormatError naming `file`
  // and the key for: a pattern PCRE2 cannot compile, an override of bits the packing cannot
  // hold or of a group size that is not -1 or > 0 (or not an integer), a sym override that
  // differs from "sym" (per_module has no per-module sym), a value that is not an object, and
  // a module that GPTQModel (every "-:" rule first) and vLLM (file order) would resolve
  // differently.
  static GptqSettings from_json(const nlohmann::json& j, const std::filesystem::path& file,
                                int num_layers = 0,
                                const std::vector<std::string>& dynamic_order = {});
};

// The keys of the "dynamic" object (top level, or under "quantization_config" when `nested`)
// in the order the JSON text lists them, each once (a repeated key keeps its first place, as
// Python's dict does; a repeated "dynamic" object: the last one, as nlohmann keeps it). A SAX
// pass over the text, which builds nothing, so any input is read in linear time and bounded
// memory. Empty when there is no such object or the text is not valid JSON.
std::vector<std::string> dynamic_key_order(std::string_view text, bool nested);

}  // namespace gptqw
