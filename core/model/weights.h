// The weights of a Llama-family decoder as the engine uses them (fp32, row-major), and the
// interface of the places they come from (a safetensors checkpoint, a llama2.c file, later a
// GPTQ checkpoint). Blocks are converted when asked for, one at a time, so that a model larger
// than memory can be walked block by block.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/tensor.h"
#include "model/config.h"
#include "model/layers.h"

namespace gptqw {

struct Linear {
  Matrix W;  // [out_features, in_features]
  Vector b;  // [out_features], or empty when the layer has no bias
};

struct BlockWeights {
  Vector attn_norm;  // input_layernorm
  Vector mlp_norm;   // post_attention_layernorm
  Vector q_norm, k_norm;  // Qwen3's self_attn.q_norm / k_norm [head_dim]; empty otherwise
  std::array<Linear, kNumLinears> linears;
  Linear& operator[](LinearKind k) { return linears[static_cast<int>(k)]; }
  const Linear& operator[](LinearKind k) const { return linears[static_cast<int>(k)]; }
};

// [out, in] of each linear for a config.
std::pair<int64_t, int64_t> linear_shape(const ModelConfig& c, LinearKind kind);

// Whether the architecture gives this linear a bias (Qwen2: q, k, v; Llama's attention_bias:
// q, k, v, o; mlp_bias: the MLP).
bool linear_has_bias(const ModelConfig& c, LinearKind kind);

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const ModelConfig& config() const = 0;
  virtual BlockWeights block(int index) const = 0;  // converted to fp32 now
  virtual Matrix embedding() const = 0;             // [vocab, hidden]
  virtual Vector final_norm() const = 0;            // [hidden]
  virtual Matrix lm_head() const = 0;               // [vocab, hidden]; the embedding when tied
  virtual std::vector<TensorInfo> tensors() const = 0;
  virtual uint64_t bytes_on_disk() const = 0;
  virtual std::string format() const = 0;  // "safetensors", "llama2.c"
  virtual std::string dtype() const = 0;   // of the stored weights: "F32", "BF16", ...
};

// The output projection [vocab, hidden] beside an embedding already read: the embedding itself
// when the head is tied (no second copy: 622 MB at Qwen3's 151,936 x 1,024), else lm_head().
class OutputHead {
 public:
  OutputHead(const WeightSource& w, const Matrix& embedding)
      : m_untied(w.config().tie_word_embeddings ? Matrix() : w.lm_head()),
        m_head(w.config().tie_word_embeddings ? embedding : m_untied) {}
  OutputHead(const OutputHead&) = delete;
  OutputHead& operator=(const OutputHead&) = delete;
  const Matrix& matrix() const { return m_head; }

 private:
  Matrix m_untied;       // empty when tied
  const Matrix& m_head;  // m_untied or the embedding
};

}  // namespace gptqw
