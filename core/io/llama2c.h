// llama2.c checkpoints (Karpathy's run.c "legacy" export: 7 int32 header values dim,
// hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative: separate classifier),
// seq_len; then fp32 tensors in run.c's order) as a WeightSource. llama2.c applies RoPE to
// interleaved pairs (2i, 2i+1); Hugging Face rotates halves, so q and k rows are permuted
// on load exactly as transformers' convert_llama_weights_to_hf does. The model then runs
// through the same forward pass as a Hugging Face folder.
#pragma once

#include <filesystem>
#include <memory>

#include "io/safetensors.h"
#include "model/weights.h"

namespace gptqw {

class Llama2cCheckpoint : public WeightSource {
 public:
  explicit Llama2cCheckpoint(const std::filesystem::path& file);

  const ModelConfig& config() const override { return m_config; }
  BlockWeights block(int index) const override;
  Matrix embedding() const override;
  Vector final_norm() const override;
  Matrix lm_head() const override;
  std::vector<TensorInfo> tensors() const override;
  uint64_t bytes_on_disk() const override { return m_map->size(); }
  std::string format() const override { return "llama2.c"; }
  std::string dtype() const override { return "F32"; }

 private:
  struct Span {
    std::string name;  // the Hugging Face name it becomes
    std::vector<int64_t> shape;
    size_t offset;  // in floats from the start of the tensor data
  };
  const Span& span(const std::string& name) const;
  const float* floats(const Span& s) const;

  std::unique_ptr<MappedFile> m_map;
  ModelConfig m_config;
  std::vector<Span> m_spans;
};

// Reorders the rows of a q or k projection from the interleaved-pair RoPE layout (llama2.c,
// Meta) to the rotate-half layout (Hugging Face): within each head, row 2j+p moves to
// p*head_dim/2 + j.
Matrix permute_rope_rows(const Matrix& w, int n_heads, int head_dim);

}  // namespace gptqw
