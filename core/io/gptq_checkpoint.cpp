// Reading GPTQ checkpoints: settings from quantize_config.json / config.json, tensors checked
// from the headers at open, unpacked and dequantized one block at a time.
#include "io/gptq_checkpoint.h"

#include "io/hf_checkpoint.h"

#include <cstring>
#include <set>
#include <fstream>

#include "common/error.h"
#include "common/json.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Field access naming the file (and the object inside it) in every error.
struct SettingsFields {
  const json& j;
  const fs::path& file;
  std::string where;  // "" or "quantization_config."

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw FormatError(file_msg(file, "field '" + where + field + "' " + what));
  }
  bool has(const std::string& f) const { return j.contains(f) && !j[f].is_null(); }
  bool get_bool(const std::string& f, bool fallback) const {
    if (!has(f)) return fallback;
    if (!j[f].is_boolean()) fail(f, "must be true or false, got " + j[f].dump());
    return j[f].get<bool>();
  }
  long long get_int(const std::string& f) const {
    if (!j[f].is_number_integer()) fail(f, "must be an integer, got " + j[f].dump());
    return j[f].get<long long>();
  }
  double get_number(const std::string& f, double fallback) const {
    if (!has(f)) return fallback;
    if (!j[f].is_number()) fail(f, "must be a number, got " + j[f].dump());
    return j[f].get<double>();
  }
  std::string get_string(const std::string& f) const {
    if (!j[f].is_string()) fail(f, "must be a string, got " + j[f].dump());
    return j[f].get<std::string>();
  }
};


// One module name of modules_not_quantized / modules_in_block_to_quantize: exactly one of the
// seven, so that a typo cannot silently leave a layer quantized (or not).
LinearKind module_kind(const SettingsFields& f, const std::string& field, const json& entry,
                       const std::string& position) {
  if (!entry.is_string())
    f.fail(field, position + " must be a module name (a string), got " + entry.dump());
  const std::string name = entry.get<std::string>();
  auto kind = linear_kind_of(name);
  if (!kind)
    f.fail(field, position + " is \"" + name + "\", not a linear module of a Llama block (" +
                      linear_names_list() + ")");
  return *kind;
}

// Keys of quantize_config.json that GptqSettings reads or writes itself (the rest goes to
// `extra`). "meta" describes the run that made the tensors, "dynamic" and "lm_head" which
// tensors are quantized: all are rewritten on export, never carried over.
const std::set<std::string> kInterpretedSettingsKeys = {
    "bits", "group_size", "desc_act", "sym", "true_sequential", "damp_percent", "static_groups",
    "quant_method", "checkpoint_format", "format", "model_file_base_name", "lm_head", "meta",
    "modules_not_quantized", "modules_in_block_to_quantize", "dynamic", "pack_dtype",
    "is_marlin_format"};

// The true-sequential groups [q, k, v], [o], [gate, up], [down]: how optimum nests
// modules_in_block_to_quantize (it quantizes one inner list at a time).
const std::vector<std::vector<LinearKind>> kSequentialGroups = {
    {LinearKind::q, LinearKind::k, LinearKind::v},
    {LinearKind::o},
    {LinearKind::gate, LinearKind::up},
    {LinearKind::down}};

// A regex matching the full module name ("model.layers.3.mlp.down_proj") for GPTQModel's
// "dynamic" rules: re.match anchors at the start, hence the leading ".*".
std::string dynamic_skip_rule(LinearKind k) {
  std::string re = "-:.*\\.";
  for (char ch : linear_name(k)) {
    if (ch == '.') re += '\\';
    re += ch;
  }
  return re + "$";
}

std::string dtype_list(const std::vector<DType>& dtypes) {
  std::string s;
  for (DType d : dtypes) s += (s.empty() ? "" : " or ") + std::string(dtype_name(d));
  return s;
}

// An I32 tensor (dtype and shape checked at open) copied into a row-major int32 matrix;
// memcpy because mapped tensor data need not be aligned.
MatrixI32 read_i32(const TensorView& t, int64_t rows, int64_t cols) {
  MatrixI32 m(rows, cols);
  std::memcpy(m.data(), t.data, size_t(rows * cols) * 4);
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Settings

std::array<bool, kNumLinears> GptqSettings::skipped_kinds() const {
  std::array<bool, kNumLinears> skip{};
  for (const std::string& name : modules_not_quantized) {
    auto kind = linear_kind_of(name);
    if (!kind)
      throw ConfigError("GPTQ settings: modules_not_quantized names '" + name +
                        "', which is not a linear module of a Llama block (" +
                        linear_names_list() + ")");
    skip[static_cast<int>(*kind)] = true;
  }
  return skip;
}

json GptqSettings::to_json() const {
  json j;
  j["bits"] = quant.bits;
  j["group_size"] = quant.group_size > 0 ? quant.group_size : -1;
  j["desc_act"] = desc_act;
  j["sym"] = quant.sym;
  j["true_sequential"] = true_sequential;
  j["damp_percent"] = damp_percent;
  j["static_groups"] = static_groups;
  j["quant_method"] = "gptq";
  j["checkpoint_format"] = std::string(checkpoint_format_name(zero_format()));
  // optimum reads "format" (since late 2025; without it a gptq_v2 file is read with v1 zero
  // points), GPTQModel writes both.
  j["format"] = j["checkpoint_format"];
  j["pack_dtype"] = "int32";
  j["model_file_base_name"] = model_file_base_name;
  // GPTQModel's keys: the lm_head stays unquantized; who wrote the file.
  j["lm_head"] = false;
  j["meta"] = {{"quantizer", {std::string("gptq_workbench:") + GPTQW_VERSION}}};
  const auto skip = skipped_kinds();
  bool any = false;
  for (bool b : skip) any = any || b;
  if (any) {
    // In kAllLinears order and without repeats, whatever order the caller listed them in, so
    // that the same choice always gives the same file.
    json skipped = json::array(), in_block = json::array(), dynamic = json::object();
    for (LinearKind k : kAllLinears)
      if (skip[static_cast<int>(k)]) {
        skipped.push_back(std::string(linear_name(k)));
        dynamic[dynamic_skip_rule(k)] = json::object();
      }
    for (const auto& group : kSequentialGroups) {
      json names = json::array();
      for (LinearKind k : group)
        if (!skip[static_cast<int>(k)]) names.push_back(std::string(linear_name(k)));
      if (!names.empty()) in_block.push_back(names);  // optimum would run an empty group
    }
    j["modules_not_quantized"] = skipped;
    j["modules_in_block_to_quantize"] = in_block;
    j["dynamic"] = dynamic;
  }
  if (extra.is_object())
    for (const auto& [k, v] : extra.items())
      if (!j.contains(k)) j[k] = v;
  return j;
}

GptqSettings GptqSettings::from_json(const json& j, const fs::path& file) {
  const std::string where = file.filename() == "config.json" ? "quantization_config." : "";
  if (!j.is_object()) throw FormatError(file_msg(file, where + "expected a JSON object"));
  SettingsFields f{j, file, where};
  GptqSettings s;
  if (f.has("quant_method")) {
    const std::string m = f.get_string("quant_method");
    if (m != "gptq")
      f.fail("quant_method", "is \"" + m + "\": only GPTQ checkpoints (\"gptq\") are read here");
  }
  if (!f.has("bits")) f.fail("bits", "is missing");
  const long long bits = f.get_int("bits");
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    f.fail("bits", "is " + std::to_string(bits) +
                       ": the GPTQ packing holds 2, 3, 4 or 8 bits per weight");
  s.quant.bits = static_cast<int>(bits);
  if (f.has("group_size")) {
    const long long gs = f.get_int("group_size");
    if (gs != -1 && (gs <= 0 || gs > (1LL << 30)))
      f.fail("group_size", "is " + std::to_string(gs) + ": expected -1 (no groups) or > 0");
    s.quant.group_size = static_cast<int>(gs);
  }
  s.quant.sym = f.get_bool("sym", true);
  s.desc_act = f.get_bool("desc_act", false);
  s.static_groups = f.get_bool("static_groups", false);
  s.true_sequential = f.get_bool("true_sequential", true);
  s.damp_percent = f.get_number("damp_percent", 0.01);
  // GPTQModel 1.x-5.x keep the run's settings under "meta" instead.
  if (f.has("meta") && j["meta"].is_object()) {
    SettingsFields m{j["meta"], file, where + "meta."};
    if (!f.has("damp_percent")) s.damp_percent = m.get_number("damp_percent", s.damp_percent);
    if (!f.has("static_groups")) s.static_groups = m.get_bool("static_groups", s.static_groups);
    if (!f.has("true_sequential"))
      s.true_sequential = m.get_bool("true_sequential", s.true_sequential);
  }
  // Everything this reader does not interpret is kept, and written back on re-export.
  for (const auto& [k, v] : j.items())
    if (!kInterpretedSettingsKeys.count(k)) s.extra[k] = v;
  if (f.get_bool("is_marlin_format", false))
    f.fail("is_marlin_format", "is true: Marlin-repacked checkpoints are not read here, only "
                               "the plain GPTQ layout");
  // GPTQModel writes "format" in quantize_config.json and "checkpoint_format" in config.json
  // (5.x writes both in both); optimum reads "format" since late 2025. AutoGPTQ before
  // checkpoint_format existed wrote v1 without saying so. Two that disagree are refused: the
  // readers would dequantize differently.
  if (f.has("checkpoint_format") && f.has("format") &&
      f.get_string("checkpoint_format") != f.get_string("format"))
    f.fail("format", "is \"" + f.get_string("format") + "\" but checkpoint_format is \"" +
                         f.get_string("checkpoint_format") + "\"; loaders read one or the other");
  std::string key = f.has("checkpoint_format") ? "checkpoint_format" : f.has("format") ? "format" : "";
  s.format = ZeroFormat::v1;
  if (!key.empty()) {
    const std::string name = f.get_string(key);
    auto parsed = parse_checkpoint_format(name);
    if (!parsed)
      f.fail(key, "is \"" + name + "\": known are \"gptq\" (zero points stored minus 1) and "
                                   "\"gptq_v2\" (stored as is)");
    s.format = parsed;
  }
  if (f.has("pack_dtype") && f.get_string("pack_dtype") != "int32")
    f.fail("pack_dtype", "is " + j["pack_dtype"].dump() + ": only int32 packing is read here");
  if (f.has("model_file_base_name")) s.model_file_base_name = f.get_string("model_file_base_name");

  // Modules left unquantized: our own list, and/or optimum's list of the quantized ones.
  std::optional<std::array<bool, kNumLinears>> listed, from_in_block;
  if (f.has("modules_not_quantized")) {
    const json& a = j["modules_not_quantized"];
    if (!a.is_array())
      f.fail("modules_not_quantized", "must be a list of module names, got " + a.dump());
    listed.emplace();
    for (size_t i = 0; i < a.size(); ++i)
      (*listed)[static_cast<int>(module_kind(f, "modules_not_quantized", a[i],
                                             "entry " + std::to_string(i)))] = true;
  }
  // An empty list is read as "not stated", as vLLM reads it (it then looks at the tensors);
  // taken literally it would mean that nothing is quantized.
  if (f.has("modules_in_block_to_quantize") && !j["modules_in_block_to_quantize"].empty()) {
    const std::string field = "modules_in_block_to_quantize";
    const json& a = j[field];
    if (!a.is_array()) f.fail(field, "must be a list of lists of module names, got " + a.dump());
    std::array<bool, kNumLinears> quantized{};
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string pos = "entry " + std::to_string(i);
      if (a[i].is_array()) {
        for (size_t m = 0; m < a[i].size(); ++m)
          quantized[static_cast<int>(
              module_kind(f, field, a[i][m], pos + "[" + std::to_string(m) + "]"))] = true;
      } else {
        quantized[static_cast<int>(module_kind(f, field, a[i], pos))] = true;
      }
    }
    from_in_block.emplace();
    for (int k = 0; k < kNumLinears; ++k) (*from_in_block)[k] = !quantized[k];
  }
  if (listed && from_in_block && *listed != *from_in_block) {
    // Loaders read one or the other: a file where they differ loads differently depending on
    // who reads it, so neither is trusted.
    std::string a, b;
    for (LinearKind k : kAllLinears) {
      const std::string n(linear_name(k));
      if ((*listed)[static_cast<int>(k)]) a += (a.empty() ? "" : ", ") + n;
      if ((*from_in_block)[static_cast<int>(k)]) b += (b.empty() ? "" : ", ") + n;
    }
    f.fail("modules_not_quantized",
           "lists [" + a + "] but " + where + "modules_in_block_to_quantize leaves out [" + b +
               "]; the two must name the same unquantized modules");
  }
  if (auto skip = listed ? listed : from_in_block) {
    for (LinearKind k : kAllLinears)
      if ((*skip)[static_cast<int>(k)]) s.modules_not_quantized.emplace_back(linear_name(k));
    if (s.modules_not_quantized.size() == size_t(kNumLinears))
      f.fail(listed ? "modules_not_quantized" : "modules_in_block_to_quantize",
             "leaves every linear module unquantized: this is not a quantized model");
  }
  return s;
}

bool is_gptq_config(const json& j, bool has_quantize_config) {
  if (has_quantize_config) return true;
  const json* q = j.is_object() && j.contains("quantization_config") ? &j["quantization_config"]
                                                                     : nullptr;
  return q && q->is_object() && q->contains("quant_method") && (*q)["quant_method"] == "gptq";
}

bool is_gptq_checkpoint(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(fs::symlink_status(dir / "quantize_config.json", ec))) return true;
  try {
    return is_gptq_config(*read_folder_json(dir, "config.json", true), false);
  } catch (const Error&) {
    return false;  // a broken folder is reported by the constructors
  }
}

// ---------------------------------------------------------------------------------------------
// Reader

namespace {

GptqSettings read_settings(const fs::path& dir, const ModelConfig& config,
                           const std::optional<json>& quantize_config) {
  const fs::path config_file = dir / "config.json", qc_file = dir / "quantize_config.json";
  std::optional<GptqSettings> from_config, from_qc;
  if (config.raw.contains("quantization_config") && !config.raw["quantization_config"].is_null())
    from_config = GptqSettings::from_json(config.raw["quantization_config"], config_file);
  if (quantize_config) from_qc = GptqSettings::from_json(*quantize_config, qc_file);
  if (!from_config && !from_qc)
    throw FormatError(file_msg(dir, "not a GPTQ checkpoint: config.json has no "
                                    "quantization_config and there is no quantize_config.json"));
  if (from_config && from_qc) {
    // Both describe the same tensors; a disagreement means one was edited and the other not,
    // and a guess would dequantize with the wrong grid.
    const GptqSettings &a = *from_config, &b = *from_qc;
    auto differ = [&](const std::string& field, const std::string& va, const std::string& vb) {
      if (va != vb)
        throw FormatError(file_msg(dir, "config.json quantization_config." + field + " is " + va +
                                            " but quantize_config.json " + field + " is " + vb));
    };
    differ("bits", std::to_string(a.quant.bits), std::to_string(b.quant.bits));
    differ("group_size", std::to_string(a.quant.group_size), std::to_string(b.quant.group_size));
    differ("sym", a.quant.sym ? "true" : "false", b.quant.sym ? "true" : "false");
    differ("desc_act", a.desc_act ? "true" : "false", b.desc_act ? "true" : "false");
    differ("checkpoint_format", std::string(checkpoint_format_name(a.zero_format())),
           std::string(checkpoint_format_name(b.zero_format())));
    auto names = [](const GptqSettings& g) {
      std::string s;
      for (const std::string& n : g.modules_not_quantized) s += (s.empty() ? "" : ", ") + n;
      return "[" + s + "]";
    };
    differ("modules_not_quantized", names(a), names(b));
  }
  return from_config ? *from_config : *from_qc;
}

}  // namespace

GptqCheckpoint::GptqCheckpoint(const fs::path& dir)
    : GptqCheckpoint(dir, *read_folder_json(dir, "config.json", true),
                     read_folder_json(dir, "quantize_config.json", false)) {}

GptqCheckpoint::GptqCheckpoint(const fs::path& dir, const json& config_json,
                               const std::optional<json>& quantize_config_json)
    : m_dir(dir),
      m_config(parse_hf_config(config_json, dir / "config.json")),
      m_settings(read_settings(dir, m_config, quantize_config_json)),
      m_skip(m_settings.skipped_kinds()),
      m_ckpt(Checkpoint::open(dir)) {
  const ModelConfig& c = m_config;
  const std::vector<DType> floats = {DType::F16, DType::BF16, DType::F32};
  tensor("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, floats);
  tensor("model.norm.weight", {c.hidden_size}, floats);
  if (!c.tie_word_embeddings) tensor("lm_head.weight", {c.vocab_size, c.hidden_size}, floats);
  for (int i = 0; i < c.num_layers; ++i) {
    tensor(layer_prefix(i) + "input_layernorm.weight", {c.hidden_size}, floats);
    tensor(layer_prefix(i) + "post_attention_layernorm.weight", {c.hidden_size}, floats);
    if (c.qk_norm) {
      tensor(layer_prefix(i) + "self_attn.q_norm.weight", {c.head_dim}, floats);
      tensor(layer_prefix(i) + "self_attn.k_norm.weight", {c.head_dim}, floats);
    }
    for (LinearKind k : kAllLinears) check_linear(i, k);
  }
}

const TensorView& GptqCheckpoint::tensor(const std::string& name,
                                         const std::vector<int64_t>& shape,
                                         const std::vector<DType>& dtypes) const {
  const TensorView* t = m_ckpt.find(name);
  if (!t)
    throw FormatError(file_msg(m_dir, "tensor '" + name + "' " + shape_str(shape) +
                                          " is missing from the checkpoint"));
  if (t->shape != shape)
    throw FormatError(file_msg(t->file, "tensor '" + name + "': expected " + shape_str(shape) +
                                            ", file has " + shape_str(t->shape)));
  bool ok = false;
  for (DType d : dtypes) ok = ok || t->dtype == d;
  if (!ok)
    throw FormatError(file_msg(t->file, "tensor '" + name + "': dtype " +
                                            std::string(dtype_name(t->dtype)) + ", expected " +
                                            dtype_list(dtypes)));
  return *t;
}

void GptqCheckpoint::check_linear(int block, LinearKind kind) const {
  const ModelConfig& c = m_config;
  const auto [N, K] = linear_shape(c, kind);
  const std::string name = linear_module(block, kind);
  const int bits = m_settings.quant.bits;
  const int64_t G = group_count(K, m_settings.quant.group_size);
  const std::vector<DType> floats = {DType::F16, DType::BF16, DType::F32};
  bool declared = false;
  for (bool b : m_skip) declared = declared || b;
  if (m_skip[static_cast<int>(kind)]) {
    // Declared unquantized: loaders build a plain Linear for it and would leave it randomly
    // initialised without the weight, or trip over quantized tensors they do not expect.
    const std::string why = " (layer '" + name + "' is listed in modules_not_quantized)";
    try {
      tensor(name + ".weight", {N, K}, floats);
    } catch (const FormatError& e) {
      throw FormatError(e.what() + why);
    }
    if (const TensorView* q = m_ckpt.find(name + ".qweight"))
      throw FormatError(file_msg(q->file, "tensor '" + name + ".qweight' is present, but" + why +
                                              " and stored as a plain weight"));
  } else if (!declared && !m_ckpt.find(name + ".qweight") && m_ckpt.find(name + ".weight")) {
    // Left unquantized without our list (GPTQModel's per-module "dynamic" exclusions, which
    // are regexes not evaluated here): a plain weight.
    tensor(name + ".weight", {N, K}, floats);
  } else {
    // The shapes are stated with what implies them, so that a user can tell a wrong config
    // from a wrong file.
    const std::string why = " (" + std::to_string(bits) + " bits, in_features " +
                            std::to_string(K) + ", out_features " + std::to_string(N) +
                            ", group_size " + std::to_string(m_settings.quant.group_size) + ")";
    auto check = [&](const std::string& suffix, std::vector<int64_t> shape,
                     std::vector<DType> dtypes) {
      try {
        tensor(name + suffix, shape, dtypes);
      } catch (const FormatError& e) {
        throw FormatError(e.what() + why);
      }
    };
    check(".qweight", {packed_words(K, bits), N}, {DType::I32});
    check(".qzeros", {G, packed_words(N, bits)}, {DType::I32});
    check(".scales", {G, N}, {DType::F16, DType::BF16, DType::F32});
    check(".g_idx", {K}, {DType::I32, DType::I64});
  }
  if (linear_has_bias(c, kind) || m_ckpt.find(name + ".bias"))
    tensor(name + ".bias", {N}, {DType::F16, DType::BF16, DType::F32});
}

bool GptqCheckpoint::is_quantized(int block, LinearKind kind) const {
  if (block < 0 || block >= m_config.num_layers)
    throw Error("block " + std::to_string(block) + " out of range [0, " +
                std::to_string(m_config.num_layers) + ")");
  // Which one was checked when the folder was opened.
  return m_ckpt.find(linear_module(block, kind) + ".qweight");
}

QuantizedWeights GptqCheckpoint::quantized(int block, LinearKind kind) const {
  const ModelConfig& c = m_config;
  const bool stored_quantized = is_quantized(block, kind);  // checks the block index
  const auto [N, K] = linear_shape(c, kind);
  const std::string name = linear_module(block, kind);
  const int bits = m_settings.quant.bits;
  const int64_t G = group_count(K, m_settings.quant.group_size);
  if (!stored_quantized) {
    const TensorView* w = m_ckpt.find(name + ".weight");
    const std::string stored =
        w ? "stored as a plain " + std::string(dtype_name(w->dtype)) + " weight " +
                shape_str(w->shape)
          : "no qweight";
    const std::string why = m_skip[static_cast<int>(kind)]
                                ? " (listed in modules_not_quantized, " + stored + ")"
                                : " (" + stored + ")";
    throw FormatError(file_msg(m_dir, "layer '" + name + "' is not quantized" + why +
                                          ": it has no codes, scales or zero points"));
  }
  // Shapes and dtypes were checked when the folder was opened.
  const TensorView& tq = m_ckpt.get(name + ".qweight");
  const TensorView& tz = m_ckpt.get(name + ".qzeros");
  const TensorView& ts = m_ckpt.get(name + ".scales");
  const TensorView& tg = m_ckpt.get(name + ".g_idx");

  QuantizedWeights w;
  w.codes = unpack_qweight(read_i32(tq, tq.shape[0], N), K, bits);
  w.zeros = unpack_qzeros(read_i32(tz, G, tz.shape[1]), N, bits, m_settings.zero_format());
  w.scales.resize(G, N);
  to_float(ts, w.scales.data());
  w.g_idx.resize(K);
  for (int64_t k = 0; k < K; ++k) {
    int64_t g;
    if (tg.dtype == DType::I32) {
      int32_t v;
      std::memcpy(&v, tg.data + k * 4, 4);
      g = v;
    } else {
      std::memcpy(&g, tg.data + k * 8, 8);
    }
    if (g < 0 || g >= G)
      throw FormatError(file_msg(tg.file, "tensor '" + name + ".g_idx': entry " +
                                              std::to_string(k) + " is " + std::to_string(g) +
                                              ", outside the " + std::to_string(G) +
                                              " groups of scales " + shape_str(ts.shape)));
    w.g_idx[k] = static_cast<int32_t>(g);
  }
  for (const TensorView* t : {&tq, &tz, &ts, &tg}) release_pages(*t);
  // The scales were read from F16, so casting them again changes nothing.
  w.Q = dequantize_as_stored(w);
  return w;
}

Matrix GptqCheckpoint::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const TensorView& t = tensor(name, {rows, cols}, {DType::F16, DType::BF16, DType::F32});
  Matrix m(rows, cols);
  to_float(t, m.data());
  release_pages(t);
  return m;
}

Vector GptqCheckpoint::vector(const std::string& name, int64_t n) const {
  const TensorView& t = tensor(name, {n}, {DType::F16, DType::BF16, DType::F32});
  Vector v(n);
  to_float(t, v.data());
  release_pages(t);
  return v;
}

BlockWeights GptqCheckpoint::block(int index) const {
  const ModelConfig& c = m_config;
  if (index < 0 || index >= c.num_layers)
    throw Error("block " + std::to_string(index) + " out of range [0, " +
                std::to_string(c.num_layers) + ")");
  const std::string p = layer_prefix(index);
  BlockWeights b;
  b.attn_norm = vector(p + "input_layernorm.weight", c.hidden_size);
  b.mlp_norm = vector(p + "post_attention_layernorm.weight", c.hidden_size);
  if (c.qk_norm) {
    b.q_norm = vector(p + "self_attn.q_norm.weight", c.head_dim);
    b.k_norm = vector(p + "self_attn.k_norm.weight", c.head_dim);
  }
  for (LinearKind k : kAllLinears) {
    const auto [N, K] = linear_shape(c, k);
    const std::string name = p + std::string(linear_name(k));
    if (is_quantized(index, k))
      b[k].W = std::move(quantized(index, k).Q);
    else  // modules_not_quantized: no dequantization, the stored weight as is
      b[k].W = matrix(name + ".weight", N, K);
    if (m_ckpt.find(name + ".bias")) b[k].b = vector(name + ".bias", N);
  }
  return b;
}

Matrix GptqCheckpoint::embedding() const {
  return matrix("model.embed_tokens.weight", m_config.vocab_size, m_config.hidden_size);
}

Vector GptqCheckpoint::final_norm() const {
  return vector("model.norm.weight", m_config.hidden_size);
}

Matrix GptqCheckpoint::lm_head() const {
  if (m_config.tie_word_embeddings) return embedding();
  return matrix("lm_head.weight", m_config.vocab_size, m_config.hidden_size);
}

std::vector<TensorInfo> GptqCheckpoint::tensors() const { return tensor_listing(m_ckpt); }

uint64_t GptqCheckpoint::bytes_on_disk() const { return m_ckpt.bytes_on_disk(); }

std::string GptqCheckpoint::format() const {
  return std::string(checkpoint_format_name(m_settings.zero_format()));
}

std::string GptqCheckpoint::dtype() const { return "int" + std::to_string(m_settings.quant.bits); }

}  // namespace gptqw
