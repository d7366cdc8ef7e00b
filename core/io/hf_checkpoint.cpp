#include "io/hf_checkpoint.h"

#include <map>

#include "common/error.h"

namespace gptqw {

HfCheckpoint::HfCheckpoint(const std::filesystem::path& dir)
    : HfCheckpoint(dir, *read_folder_json(dir, "config.json", true)) {}

HfCheckpoint::HfCheckpoint(const std::filesystem::path& dir, const nlohmann::json& config_json)
    : m_dir(dir),
      m_config(parse_hf_config(config_json, dir / "config.json")),
      m_ckpt(Checkpoint::open(dir)) {
  // Validate every tensor the architecture needs, now, from the headers alone.
  const ModelConfig& c = m_config;
  tensor("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  tensor("model.norm.weight", {c.hidden_size});
  if (!c.tie_word_embeddings) tensor("lm_head.weight", {c.vocab_size, c.hidden_size});
  for (int i = 0; i < c.num_layers; ++i) {
    std::string p = layer_prefix(i);
    tensor(p + "input_layernorm.weight", {c.hidden_size});
    tensor(p + "post_attention_layernorm.weight", {c.hidden_size});
    if (c.qk_norm) {
      tensor(p + "self_attn.q_norm.weight", {c.head_dim});
      tensor(p + "self_attn.k_norm.weight", {c.head_dim});
    }
    for (LinearKind k : kAllLinears) {
      auto [out, in] = linear_shape(c, k);
      std::string name = p + std::string(linear_name(k));
      tensor(name + ".weight", {out, in});
      if (linear_has_bias(c, k)) tensor(name + ".bias", {out});
    }
  }
}

const TensorView& HfCheckpoint::tensor(const std::string& name,
                                       const std::vector<int64_t>& shape) const {
  const TensorView* t = m_ckpt.find(name);
  if (!t)
    throw FormatError(file_msg(m_dir, "tensor '" + name + "' " + shape_str(shape) +
                                          " is missing from the checkpoint (config.json says " +
                                          m_config.model_type + " with " +
                                          std::to_string(m_config.num_layers) + " layers)"));
  if (t->shape != shape)
    throw FormatError(file_msg(t->file, "tensor '" + name + "': config.json implies " +
                                            shape_str(shape) + ", file has " +
                                            shape_str(t->shape)));
  if (t->dtype != DType::F32 && t->dtype != DType::F16 && t->dtype != DType::BF16)
    throw FormatError(file_msg(t->file, "tensor '" + name + "': dtype " +
                                            std::string(dtype_name(t->dtype)) +
                                            " is not a float type (F32, F16 or BF16)"));
  return *t;
}

Matrix HfCheckpoint::matrix(const std::string& name, int64_t rows, int64_t cols) const {
  const TensorView& t = tensor(name, {rows, cols});
  Matrix m(rows, cols);
  to_float(t, m.data());
  release_pages(t);
  return m;
}

Vector HfCheckpoint::vector(const std::string& name, int64_t n) const {
  const TensorView& t = tensor(name, {n});
  Vector v(n);
  to_float(t, v.data());
  release_pages(t);
  return v;
}

BlockWeights HfCheckpoint::block(int index) const {
  const ModelConfig& c = m_config;
  if (index < 0 || index >= c.num_layers)
    throw Error("block " + std::to_string(index) + " out of range [0, " +
                std::to_string(c.num_layers) + ")");
  std::string p = layer_prefix(index);
  BlockWeights b;
  b.attn_norm = vector(p + "input_layernorm.weight", c.hidden_size);
  b.mlp_norm = vector(p + "post_attention_layernorm.weight", c.hidden_size);
  if (c.qk_norm) {
    b.q_norm = vector(p + "self_attn.q_norm.weight", c.head_dim);
    b.k_norm = vector(p + "self_attn.k_norm.weight", c.head_dim);
  }
  for (LinearKind k : kAllLinears) {
    auto [out, in] = linear_shape(c, k);
    std::string name = p + std::string(linear_name(k));
    b[k].W = matrix(name + ".weight", out, in);
    if (m_ckpt.find(name + ".bias")) b[k].b = vector(name + ".bias", out);
  }
  return b;
}

Matrix HfCheckpoint::embedding() const {
  return matrix("model.embed_tokens.weight", m_config.vocab_size, m_config.hidden_size);
}

Vector HfCheckpoint::final_norm() const { return vector("model.norm.weight", m_config.hidden_size); }

Matrix HfCheckpoint::lm_head() const {
  if (m_config.tie_word_embeddings) return embedding();
  return matrix("lm_head.weight", m_config.vocab_size, m_config.hidden_size);
}

std::vector<TensorInfo> tensor_listing(const Checkpoint& ckpt) {
  std::vector<TensorInfo> out;
  for (const auto& name : ckpt.names()) {
    const TensorView& t = *ckpt.find(name);
    out.push_back({name, std::string(dtype_name(t.dtype)), t.shape, t.nbytes});
  }
  return out;
}

std::vector<TensorInfo> HfCheckpoint::tensors() const { return tensor_listing(m_ckpt); }

uint64_t HfCheckpoint::bytes_on_disk() const { return m_ckpt.bytes_on_disk(); }

std::string HfCheckpoint::dtype() const {
  // The dtype of most weight bytes: what "the model's dtype" means to a user.
  std::map<std::string, uint64_t> bytes;
  for (const auto& name : m_ckpt.names()) {
    const TensorView& t = *m_ckpt.find(name);
    bytes[std::string(dtype_name(t.dtype))] += t.nbytes;
  }
  std::string best;
  uint64_t most = 0;
  for (const auto& [d, n] : bytes)
    if (n > most) best = d, most = n;
  return best;
}

}  // namespace gptqw
