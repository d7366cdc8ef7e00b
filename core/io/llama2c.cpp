#include "io/llama2c.h"

#include <cstring>

#include "common/error.h"

namespace gptqw {

namespace {

constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);

std::string layer(int i, const char* rest) {
  return layer_prefix(i) + rest;
}

}  // namespace

Matrix permute_rope_rows(const Matrix& w, int n_heads, int head_dim) {
  Matrix out(w.rows(), w.cols());
  int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h)
    for (int j = 0; j < half; ++j)
      for (int p = 0; p < 2; ++p)
        out.row(h * head_dim + p * half + j) = w.row(h * head_dim + 2 * j + p);
  return out;
}

Llama2cCheckpoint::Llama2cCheckpoint(const std::filesystem::path& file)
    : m_map(std::make_unique<MappedFile>(file)) {
  if (m_map->size() < kHeaderBytes)
    throw FormatError(file_msg(file, "too short for a llama2.c header (" +
                                         std::to_string(m_map->size()) + " bytes)"));
  int32_t h[7];
  std::memcpy(h, m_map->data(), sizeof h);
  if (static_cast<uint32_t>(h[0]) == 0x616b3432u)
    throw FormatError(file_msg(file, "llama2.c version-1/2 export (magic \"ak42\"): only the "
                                     "legacy (version 0) fp32 format is supported"));
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                          "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i)
    if ((i == 5 ? std::abs(static_cast<int64_t>(h[i])) : h[i]) <= 0 ||
        std::abs(static_cast<int64_t>(h[i])) > (1 << 24))
      throw FormatError(file_msg(file, std::string("llama2.c header: ") + names[i] + " = " +
                                           std::to_string(h[i]) + " is not plausible"));
  ModelConfig& c = m_config;
  c.model_type = "llama";
  c.architecture = "LlamaForCausalLM";
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_layers = h[2];
  c.num_heads = h[3];
  c.num_kv_heads = h[4];
  c.vocab_size = std::abs(h[5]);
  c.tie_word_embeddings = h[5] > 0;  // run.c: shared_weights = vocab_size > 0
  c.max_position_embeddings = h[6];
  if (c.hidden_size % c.num_heads || c.num_heads % c.num_kv_heads ||
      (c.hidden_size / c.num_heads) % 2)
    throw FormatError(file_msg(file, "llama2.c header: dim " + std::to_string(c.hidden_size) +
                                         ", n_heads " + std::to_string(c.num_heads) +
                                         ", n_kv_heads " + std::to_string(c.num_kv_heads) +
                                         " do not form a valid attention layout"));
  c.head_dim = c.hidden_size / c.num_heads;
  c.rms_norm_eps = 1e-5f;  // run.c's rmsnorm
  c.rope_theta = 10000.f;  // run.c's RoPE base
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  c.torch_dtype = "float32";
  // The Hugging Face config this checkpoint corresponds to, so that an export of it is a
  // complete model folder.
  c.raw = {{"architectures", {c.architecture}}, {"model_type", c.model_type},
           {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
           {"num_hidden_layers", c.num_layers}, {"num_attention_heads", c.num_heads},
           {"num_key_value_heads", c.num_kv_heads}, {"vocab_size", c.vocab_size},
           {"max_position_embeddings", c.max_position_embeddings},
           {"rms_norm_eps", c.rms_norm_eps}, {"rope_theta", c.rope_theta},
           {"tie_word_embeddings", c.tie_word_embeddings}, {"hidden_act", "silu"},
           {"bos_token_id", c.bos_token_id}, {"eos_token_id", c.eos_token_id},
           {"torch_dtype", c.torch_dtype}};

  // run.c's memory_map_weights order.
  int64_t d = c.hidden_size, m = c.intermediate_size, L = c.num_layers, V = c.vocab_size;
  int64_t kv = int64_t(c.num_kv_heads) * c.head_dim;
  // The size the header implies, checked before anything is allocated: a 70-byte file claiming
  // 16 million layers must be refused by its size, not after building 150 million tensor
  // spans. Every dimension is at most 2^24, so the sums are exact in 128 bits (in 64 they could
  // wrap around to the size of a small file, and the spans would then point past its end).
  __extension__ typedef unsigned __int128 u128;  // GCC and clang on 64-bit targets
  const u128 layer_floats = u128(2 * d) + u128(d * d) + u128(2 * kv * d) + u128(d * d) +
                         u128(3 * m * d);  // norms, q, k + v, o, w1 w2 w3
  const u128 floats = u128(V * d) * (c.tie_word_embeddings ? 1 : 2) + u128(L) * layer_floats +
                      u128(d) + u128(c.max_position_embeddings) * u128(c.head_dim);  // freq_cis
  const u128 expected_bytes = kHeaderBytes + floats * sizeof(float);
  if (expected_bytes != m_map->size()) {
    auto str = [](u128 v) {
      std::string s;
      do s.insert(s.begin(), char('0' + int(v % 10))); while ((v /= 10) != 0);
      return s;
    };
    throw FormatError(file_msg(
        file, "llama2.c checkpoint of dim " + std::to_string(d) + ", " + std::to_string(L) +
                  " layers, vocab " + std::to_string(V) + " should be " + str(expected_bytes) +
                  " bytes, file has " + std::to_string(m_map->size())));
  }
  size_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    m_spans.push_back({std::move(name), std::move(shape), off});
    off += static_cast<size_t>(n);
  };
  auto per_layer = [&](const char* rest, std::vector<int64_t> shape) {
    for (int i = 0; i < L; ++i) add(layer(i, rest), shape);
  };
  add("model.embed_tokens.weight", {V, d});
  per_layer("input_layernorm.weight", {d});
  per_layer("self_attn.q_proj.weight", {d, d});
  per_layer("self_attn.k_proj.weight", {kv, d});
  per_layer("self_attn.v_proj.weight", {kv, d});
  per_layer("self_attn.o_proj.weight", {d, d});
  per_layer("post_attention_layernorm.weight", {d});
  per_layer("mlp.gate_proj.weight", {m, d});  // w1
  per_layer("mlp.down_proj.weight", {d, m});  // w2
  per_layer("mlp.up_proj.weight", {m, d});    // w3
  add("model.norm.weight", {d});
  off += static_cast<size_t>(c.max_position_embeddings) * (c.head_dim / 2) * 2;  // freq_cis
  if (!c.tie_word_embeddings) add("lm_head.weight", {V, d});
  if (kHeaderBytes + off * sizeof(float) != m_map->size())  // the same sum as above
    throw Error(file_msg(file, "llama2.c reader: tensor layout does not match the file size"));
}

const Llama2cCheckpoint::Span& Llama2cCheckpoint::span(const std::string& name) const {
  for (const auto& s : m_spans)
    if (s.name == name) return s;
  throw FormatError(file_msg(m_map->path(), "no tensor '" + name + "'"));
}

const float* Llama2cCheckpoint::floats(const Span& s) const {
  const float* p = reinterpret_cast<const float*>(m_map->data() + kHeaderBytes) + s.offset;
  size_t n = 1;
  for (int64_t d : s.shape) n *= static_cast<size_t>(d);
  require_finite(p, n, m_map->path(), s.name);  // as every weights reader does (to_float)
  return p;
}

BlockWeights Llama2cCheckpoint::block(int index) const {
  const ModelConfig& c = m_config;
  if (index < 0 || index >= c.num_layers)
    throw Error("block " + std::to_string(index) + " out of range");
  auto vec = [&](const char* rest) {
    const Span& s = span(layer(index, rest));
    return Vector(Eigen::Map<const Vector>(floats(s), s.shape[0]));
  };
  BlockWeights b;
  b.attn_norm = vec("input_layernorm.weight");
  b.mlp_norm = vec("post_attention_layernorm.weight");
  for (LinearKind k : kAllLinears) {
    const Span& s = span(layer(index, (std::string(linear_name(k)) + ".weight").c_str()));
    b[k].W = ConstMatrixMap(floats(s), s.shape[0], s.shape[1]);
  }
  b[LinearKind::q].W = permute_rope_rows(b[LinearKind::q].W, c.num_heads, c.head_dim);
  b[LinearKind::k].W = permute_rope_rows(b[LinearKind::k].W, c.num_kv_heads, c.head_dim);
  return b;
}

Matrix Llama2cCheckpoint::embedding() const {
  const Span& s = span("model.embed_tokens.weight");
  return ConstMatrixMap(floats(s), s.shape[0], s.shape[1]);
}

Vector Llama2cCheckpoint::final_norm() const {
  const Span& s = span("model.norm.weight");
  return Eigen::Map<const Vector>(floats(s), s.shape[0]);
}

Matrix Llama2cCheckpoint::lm_head() const {
  if (m_config.tie_word_embeddings) return embedding();
  const Span& s = span("lm_head.weight");
  return ConstMatrixMap(floats(s), s.shape[0], s.shape[1]);
}

std::vector<TensorInfo> Llama2cCheckpoint::tensors() const {
  std::vector<TensorInfo> out;
  for (const auto& s : m_spans) {
    uint64_t n = 1;
    for (auto x : s.shape) n *= static_cast<uint64_t>(x);
    out.push_back({s.name, "F32", s.shape, n * sizeof(float)});
  }
  return out;
}

}  // namespace gptqw
