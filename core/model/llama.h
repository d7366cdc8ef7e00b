// The Llama-family decoder forward pass in fp32 (Llama, Mistral, Qwen2): RMSNorm, RoPE in the
// rotate-half convention, grouped-query causal attention, SwiGLU MLP. It works one decoder
// block at a time on a stack of sequences, which is what both the GPTQ driver (capture a
// block's inputs, quantize it, re-run it) and layer-by-layer perplexity need.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "common/tensor.h"
#include "model/config.h"
#include "model/weights.h"

namespace gptqw {

// cos/sin tables for positions [0, max_len) of one head; computed in double so that long
// contexts do not accumulate fp32 error in the angle. make_rope() (model/rope_scaling.h) makes
// one from a config's frequencies, plain or scaled.
class Rope {
 public:
  // inv_freq: one frequency per rotated pair (head_dim / 2 of them); cos and sin are
  // multiplied by scaling (YaRN's attention factor, 1 otherwise).
  Rope(const std::vector<double>& inv_freq, double scaling, int max_len);
  // x: [T, n_heads * head_dim], row t at position t. Rotates each head's halves in place.
  void apply(Eigen::Ref<Matrix> x, int n_heads) const;
  int max_len() const { return static_cast<int>(m_cos.rows()); }

 private:
  int m_head_dim;
  Matrix m_cos, m_sin;  // [max_len, head_dim / 2]
};

// Sees the input X ([tokens, in_features]) of each linear layer before it is applied: the
// calibration inputs GPTQ accumulates its Hessians from.
// X holds whole sequences: X.rows() / seqlen of them.
using LinearInputHook = std::function<void(LinearKind, const Matrix& X)>;

// y = x / sqrt(mean(x^2) + eps) * w, row by row (fp32, as transformers computes it).
void rms_norm(const Matrix& x, const Vector& w, float eps, Matrix& y);

// Y = X W^T (+ b).
void linear_forward(const Linear& lin, const Matrix& X, Matrix& Y);

// rms_norm of every head of x = [T, n_heads * w.size()] on its own, in place (Qwen3's q_norm /
// k_norm: RMSNorm over head_dim).
void rms_norm_heads(Matrix& x, const Vector& w, float eps);

// Runs one decoder block in place on x = [n_seq * seqlen, hidden] (n_seq sequences stacked,
// each starting at position 0). Sequences are processed in chunks of about 8192 tokens: the
// linear layers run on a whole chunk at once, attention on each (sequence, head) in parallel.
// The hook is called once per linear and chunk, never concurrently, with the chunk's inputs
// (whole sequences).
// With stop_after, the pass ends as soon as that linear's inputs have gone to the hook: GPTQ's
// driver needs only the part of the block up to the group it calibrates, not the whole block.
// x is then left in an unspecified state.
void block_forward(const ModelConfig& c, const BlockWeights& w, const Rope& rope, Matrix& x,
                   int seqlen, const LinearInputHook& hook = {},
                   std::optional<LinearKind> stop_after = {});

// block_forward in parts that end at the inputs of GPTQ's true-sequential groups, for a caller
// that changes the block's weights between them: the sequential driver then runs each part
// once, instead of running the block from its start for every group. Run in order on the same
// rows they give block_forward's result bit for bit. All matrices hold whole sequences of
// seqlen tokens (n_seq * seqlen rows).
//   h  = rms_norm(x)                     the input of q, k, v
//   a  = attention(q(h), k(h), v(h))     the input of o (q/k norm, RoPE, causal attention)
//   x1 = x + o(a), h2 = rms_norm(x1)     h2: the input of gate and up
//   g  = silu(gate(h2)) * up(h2)         the input of down
//   out = x1 + down(g)                   the block's output
void block_attention_input(const ModelConfig& c, const BlockWeights& w, const Matrix& x, Matrix& h);
void block_attention(const ModelConfig& c, const BlockWeights& w, const Rope& rope, const Matrix& h,
                     int seqlen, Matrix& a);
void block_mlp_input(const ModelConfig& c, const BlockWeights& w, const Matrix& x, const Matrix& a,
                     Matrix& x1, Matrix& h2);
void block_mlp_hidden(const BlockWeights& w, const Matrix& h2, Matrix& g);
void block_output(const BlockWeights& w, const Matrix& x1, const Matrix& g, Matrix& out);

// Rows of one chunk of block_forward for sequences of seqlen tokens (about 8192 tokens, whole
// sequences): a caller that feeds a Hessian with the same batches as the hook would uses it.
int64_t forward_chunk_rows(int seqlen);

// Token embeddings of ids: [ids.size(), hidden]. Throws when an id is outside the vocabulary.
Matrix embed(const Matrix& embedding, std::span<const int32_t> ids);

}  // namespace gptqw
