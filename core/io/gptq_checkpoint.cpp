// Reading GPTQ checkpoints: the settings (io/gptq_settings.h) from quantize_config.json /
// config.json, tensors checked from the headers at open, unpacked and dequantized one block at
// a time.
#include "io/gptq_checkpoint.h"

#include "io/hf_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <fstream>

#include "common/error.h"
#include "common/input_file.h"
#include "common/json.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

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
// Detection

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

// The keys of q's "dynamic" in the order `file` lists them, when that order can matter (two
// rules or more). The first match wins in GPTQModel and vLLM, but nlohmann::json, which every
// file of ours is parsed into (common/json.h), keeps object keys sorted: the order is taken
// from a second, SAX-only pass over the file's text (dynamic_key_order), read again with the
// same bounds. from_json checks that it names the same keys as the parsed value. (Parsing the
// files into nlohmann::ordered_json instead would change every reader of config.json.)
std::vector<std::string> dynamic_order(const fs::path& file, const json& q, bool nested) {
  if (!q.is_object() || !q.contains("dynamic") || !q["dynamic"].is_object() ||
      q["dynamic"].size() < 2)
    return {};
  return dynamic_key_order(read_input_file(file, kConfigInput), nested);
}

GptqSettings read_settings(const fs::path& dir, const ModelConfig& config,
                           const std::optional<json>& quantize_config) {
  const fs::path config_file = dir / "config.json", qc_file = dir / "quantize_config.json";
  std::optional<GptqSettings> from_config, from_qc;
  const int L = config.num_layers;
  if (config.raw.contains("quantization_config") && !config.raw["quantization_config"].is_null()) {
    const json& q = config.raw["quantization_config"];
    from_config = GptqSettings::from_json(q, config_file, L, dynamic_order(config_file, q, true));
  }
  if (quantize_config)
    from_qc = GptqSettings::from_json(*quantize_config, qc_file, L,
                                      dynamic_order(qc_file, *quantize_config, false));
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
    auto modules = [](const GptqSettings& g) {
      std::string s;
      for (const auto& [id, c] : g.per_module)
        s += (s.empty() ? "" : ", ") + id.module() + " " + c.describe();
      return "[" + s + "]";
    };
    differ("dynamic (per-module settings)", modules(a), modules(b));
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
  // Each module with its own bits and group size ("dynamic").
  const QuantConfig q = m_settings.quant_of({block, kind});
  const int bits = q.bits;
  const int64_t G = group_count(K, q.group_size);
  const std::vector<DType> floats = {DType::F16, DType::BF16, DType::F32};
  bool declared = false;
  for (bool b : m_skip) declared = declared || b;
  for (const auto& [id, c] : m_settings.per_module) declared = declared || c.fp16;
  if (!m_settings.is_quantized({block, kind})) {
    // Declared unquantized: loaders build a plain Linear for it and would leave it randomly
    // initialised without the weight, or trip over quantized tensors they do not expect.
    const std::string why =
        " (layer '" + name + "' is " +
        (m_skip[static_cast<int>(kind)] ? "listed in modules_not_quantized"
                                        : "left unquantized by a \"-:\" rule of dynamic") +
        ")";
    try {
      tensor(name + ".weight", {N, K}, floats);
    } catch (const FormatError& e) {
      throw FormatError(e.what() + why);
    }
    if (const TensorView* q = m_ckpt.find(name + ".qweight"))
      throw FormatError(file_msg(q->file, "tensor '" + name + ".qweight' is present, but" + why +
                                              " and stored as a plain weight"));
  } else if (!declared && !m_ckpt.find(name + ".qweight") && m_ckpt.find(name + ".weight")) {
    // Left unquantized without saying so (an exporter that neither lists it nor writes a
    // "dynamic" rule for it): a plain weight, as vLLM finds out from the tensors too.
    tensor(name + ".weight", {N, K}, floats);
  } else {
    // The shapes are stated with what implies them, so that a user can tell a wrong config
    // from a wrong file.
    const std::string why = " (" + std::to_string(bits) + " bits, in_features " +
                            std::to_string(K) + ", out_features " + std::to_string(N) +
                            ", group_size " + std::to_string(q.group_size) +
                            (m_settings.per_module.count({block, kind}) ? ", from dynamic" : "") +
                            ")";
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
  const QuantConfig q = m_settings.quant_of({block, kind});
  const int bits = q.bits;
  const int64_t G = group_count(K, q.group_size);
  if (!stored_quantized) {
    const TensorView* w = m_ckpt.find(name + ".weight");
    const std::string stored =
        w ? "stored as a plain " + std::string(dtype_name(w->dtype)) + " weight " +
                shape_str(w->shape)
          : "no qweight";
    const std::string why = m_skip[static_cast<int>(kind)]
                                ? " (listed in modules_not_quantized, " + stored + ")"
                            : m_settings.per_module.count({block, kind})
                                ? " (left unquantized by a \"-:\" rule of dynamic, " + stored + ")"
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

std::string GptqCheckpoint::dtype() const {
  const std::string global = "int" + std::to_string(m_settings.quant.bits);
  // A mixed checkpoint ("dynamic" overrides): the range of bits of its quantized modules, or
  // that only the group sizes differ. Modules kept in fp16 do not count.
  int lo = 99, hi = 0;
  std::set<int> groups;
  for (int b = 0; b < m_config.num_layers; ++b)
    for (LinearKind k : kAllLinears)
      if (m_settings.is_quantized({b, k})) {
        const QuantConfig q = m_settings.quant_of({b, k});
        lo = std::min(lo, q.bits);
        hi = std::max(hi, q.bits);
        groups.insert(q.group_size > 0 ? q.group_size : -1);
      }
  if (hi == 0 || m_settings.per_module.empty()) return global;
  if (lo != hi)
    return global + " (mixed: " + std::to_string(lo) + "-" + std::to_string(hi) + " bits)";
  const std::string bits = "int" + std::to_string(lo);
  return groups.size() > 1 ? bits + " (mixed group sizes)" : bits;
}

}  // namespace gptqw
