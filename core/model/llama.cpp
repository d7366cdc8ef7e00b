#include "model/llama.h"

#include <algorithm>
#include <cmath>
#include <omp.h>
#include <vector>

#include "common/error.h"
#include "linalg/gemm.h"
#include "linalg/reduce.h"

namespace gptqw {

Rope::Rope(const std::vector<double>& inv_freq, double scaling, int max_len)
    : m_head_dim(static_cast<int>(inv_freq.size()) * 2),
      m_cos(max_len, inv_freq.size()),
      m_sin(max_len, inv_freq.size()) {
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    for (int t = 0; t < max_len; ++t) {
      double a = t * inv_freq[i];
      m_cos(t, i) = static_cast<float>(std::cos(a) * scaling);
      m_sin(t, i) = static_cast<float>(std::sin(a) * scaling);
    }
  }
}

void Rope::apply(Eigen::Ref<Matrix> x, int n_heads) const {
  int half = m_head_dim / 2;
  if (x.rows() > m_cos.rows())
    throw Error("sequence of " + std::to_string(x.rows()) + " tokens exceeds the RoPE table of " +
                std::to_string(m_cos.rows()));
#pragma omp parallel for schedule(static) if (x.size() > (1 << 16))
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    float* row = x.row(t).data();
    const float* c = m_cos.row(t).data();
    const float* s = m_sin.row(t).data();
    for (int h = 0; h < n_heads; ++h) {
      float* q = row + h * m_head_dim;
      for (int i = 0; i < half; ++i) {
        float a = q[i], b = q[i + half];
        q[i] = a * c[i] - b * s[i];  // rotate_half: (-x2, x1)
        q[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void rms_norm(const Matrix& x, const Vector& w, float eps, Matrix& y) {
  y.resize(x.rows(), x.cols());
#pragma omp parallel for schedule(static) if (x.size() > (1 << 16))
  for (Eigen::Index t = 0; t < x.rows(); ++t) {
    const float* xt = x.row(t).data();
    float* yt = y.row(t).data();
    const float var = linalg::sum_squares(xt, x.cols()) / static_cast<float>(x.cols());
    const float r = 1.0f / std::sqrt(var + eps);
    for (Eigen::Index i = 0; i < x.cols(); ++i) yt[i] = (xt[i] * r) * w[i];
  }
}

void rms_norm_heads(Matrix& x, const Vector& w, float eps) {
  // Row-major [T, n_heads * hd] has the same layout as [T * n_heads, hd]: one row per head.
  const Eigen::Index hd = w.size(), n = x.size() / hd;
  Matrix heads = Eigen::Map<const Matrix>(x.data(), n, hd), y;
  rms_norm(heads, w, eps, y);
  x = Eigen::Map<const Matrix>(y.data(), x.rows(), x.cols());
}

void linear_forward(const Linear& lin, const Matrix& X, Matrix& Y) {
  Y.resize(X.rows(), lin.W.rows());
  linalg::matmul_nt(Y, X, lin.W);
  if (lin.b.size()) Y.rowwise() += lin.b.transpose();
}

namespace {

// Sequences per chunk: linears run on whole chunks (large GEMMs use the threads well), and the
// chunk bounds the activations held at once (the MLP's [tokens, intermediate] matrices).
constexpr int64_t kChunkTokens = 8192;
// Query rows per causal attention tile: small enough to skip most of the masked triangle,
// large enough for the GEMMs to stay efficient.
constexpr int kAttentionTile = 64;

// Causal grouped-query attention of n_seq sequences of T tokens stacked in q [n_seq*T, nh*hd]
// and k/v [n_seq*T, nkv*hd] -> out [n_seq*T, nh*hd]. Every (sequence, head) pair is
// independent, so the pairs are spread over the threads.
void attention(const ModelConfig& c, const Matrix& q, const Matrix& k, const Matrix& v,
               Matrix& out, int T) {
  const int hd = c.head_dim, group = c.num_heads / c.num_kv_heads;
  const int n_seq = static_cast<int>(q.rows() / T);
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  out.resize(q.rows(), int64_t(c.num_heads) * hd);
#pragma omp parallel for schedule(dynamic) collapse(2)
  for (int s = 0; s < n_seq; ++s) {
    for (int h = 0; h < c.num_heads; ++h) {
      const int kvh = h / group;
      const int64_t base = int64_t(s) * T;
      // Row tiles of the causal score matrix: tile rows [r0, r0 + rows) attend to keys
      // [0, r0 + rows) only, so the masked upper triangle is (almost) never computed.
      for (int r0 = 0; r0 < T; r0 += kAttentionTile) {
        const int rows = std::min(kAttentionTile, T - r0), cols = r0 + rows;
        Matrix S(rows, cols);
        linalg::matmul_nt(S, q.block(base + r0, h * hd, rows, hd), k.block(base, kvh * hd, cols, hd));
        for (int i = 0; i < rows; ++i) {
          // Softmax over the causal prefix [0, r0 + i].
          float* row = S.row(i).data();
          const int n = r0 + i + 1;
          const float mx = *std::max_element(row, row + n);
          for (int j = 0; j < n; ++j) row[j] = (row[j] - mx) * scale;
          linalg::exp_inplace(row, n);
          const float total = linalg::sum(row, n);
          for (int j = 0; j < n; ++j) row[j] /= total;
          std::fill(row + n, row + cols, 0.0f);
        }
        linalg::matmul(out.block(base + r0, h * hd, rows, hd), S, v.block(base, kvh * hd, cols, hd));
      }
    }
  }
}

// SwiGLU in place: g = silu(g) * u, silu(x) = x / (1 + e^-x), row by row on the threads.
void swiglu(Matrix& g, const Matrix& u) {
#pragma omp parallel if (g.size() > (1 << 16))
  {
    std::vector<float> e(g.cols());
#pragma omp for schedule(static)
    for (Eigen::Index t = 0; t < g.rows(); ++t) {
      float* gt = g.row(t).data();
      const float* ut = u.row(t).data();
      for (Eigen::Index i = 0; i < g.cols(); ++i) e[i] = -gt[i];
      linalg::exp_inplace(e.data(), g.cols());
      for (Eigen::Index i = 0; i < g.cols(); ++i) gt[i] = gt[i] / (1.0f + e[i]) * ut[i];
    }
  }
}

// One block on whole sequences of T tokens stacked in x, in place, through the parts. Returns
// false when it stopped early at stop_after.
bool block_forward_chunk(const ModelConfig& c, const BlockWeights& w, const Rope& rope, Matrix& x,
                         int T, const LinearInputHook& hook, std::optional<LinearKind> stop_after) {
  using K = LinearKind;
  // Hands the input shared by `kinds` to the hook; true when the pass should stop there.
  auto feed = [&](std::initializer_list<LinearKind> kinds, const Matrix& in) {
    bool stop = false;
    for (LinearKind k : kinds) {
      if (hook) hook(k, in);
      stop = stop || stop_after == k;
    }
    return stop;
  };
  Matrix h, a, x1;
  block_attention_input(c, w, x, h);
  if (feed({K::q, K::k, K::v}, h)) return false;
  block_attention(c, w, rope, h, T, a);
  if (feed({K::o}, a)) return false;
  block_mlp_input(c, w, x, a, x1, h);
  if (feed({K::gate, K::up}, h)) return false;
  block_mlp_hidden(w, h, a);
  if (feed({K::down}, a)) return false;
  block_output(w, x1, a, x);
  return true;
}

}  // namespace

void block_attention_input(const ModelConfig& c, const BlockWeights& w, const Matrix& x, Matrix& h) {
  rms_norm(x, w.attn_norm, c.rms_norm_eps, h);
}

void block_attention(const ModelConfig& c, const BlockWeights& w, const Rope& rope, const Matrix& h,
                     int T, Matrix& a) {
  using K = LinearKind;
  if (c.sliding_window > 0 && T > c.sliding_window)
    throw ConfigError("sequences of " + std::to_string(T) + " tokens are longer than the "
                      "model's sliding_window (" + std::to_string(c.sliding_window) +
                      "), which is not implemented: use a seqlen up to " +
                      std::to_string(c.sliding_window));
  Matrix q, k, v;
  linear_forward(w[K::q], h, q);
  linear_forward(w[K::k], h, k);
  linear_forward(w[K::v], h, v);
  if (c.qk_norm) {  // Qwen3: per head, before RoPE
    rms_norm_heads(q, w.q_norm, c.rms_norm_eps);
    rms_norm_heads(k, w.k_norm, c.rms_norm_eps);
  }
  for (int64_t r0 = 0; r0 < h.rows(); r0 += T) {  // every sequence starts at position 0
    rope.apply(q.middleRows(r0, T), c.num_heads);
    rope.apply(k.middleRows(r0, T), c.num_kv_heads);
  }
  attention(c, q, k, v, a, T);
}

void block_mlp_input(const ModelConfig& c, const BlockWeights& w, const Matrix& x, const Matrix& a,
                     Matrix& x1, Matrix& h2) {
  Matrix o;
  linear_forward(w[LinearKind::o], a, o);
  x1 = x + o;
  rms_norm(x1, w.mlp_norm, c.rms_norm_eps, h2);
}

void block_mlp_hidden(const BlockWeights& w, const Matrix& h2, Matrix& g) {
  Matrix u;
  linear_forward(w[LinearKind::gate], h2, g);
  linear_forward(w[LinearKind::up], h2, u);
  swiglu(g, u);
}

void block_output(const BlockWeights& w, const Matrix& x1, const Matrix& g, Matrix& out) {
  Matrix d;
  linear_forward(w[LinearKind::down], g, d);
  out = x1 + d;
}

int64_t forward_chunk_rows(int seqlen) {
  return std::max<int64_t>(1, kChunkTokens / seqlen) * seqlen;
}

void block_forward(const ModelConfig& c, const BlockWeights& w, const Rope& rope, Matrix& x,
                   int seqlen, const LinearInputHook& hook, std::optional<LinearKind> stop_after) {
  if (seqlen <= 0 || x.rows() % seqlen)
    throw Error("block_forward: " + std::to_string(x.rows()) +
                " rows are not whole sequences of " + std::to_string(seqlen));
  if (seqlen > rope.max_len())
    throw Error("sequence of " + std::to_string(seqlen) + " tokens exceeds the RoPE table of " +
                std::to_string(rope.max_len()));
  const int64_t per_chunk = forward_chunk_rows(seqlen);
  if (x.rows() <= per_chunk) {
    block_forward_chunk(c, w, rope, x, seqlen, hook, stop_after);
    return;
  }
  for (int64_t r0 = 0; r0 < x.rows(); r0 += per_chunk) {
    Matrix xs = x.middleRows(r0, std::min(per_chunk, x.rows() - r0));
    if (block_forward_chunk(c, w, rope, xs, seqlen, hook, stop_after))
      x.middleRows(r0, xs.rows()) = xs;
  }
}

Matrix embed(const Matrix& embedding, std::span<const int32_t> ids) {
  Matrix x(static_cast<Eigen::Index>(ids.size()), embedding.cols());
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || ids[t] >= embedding.rows())
      throw Error("token id " + std::to_string(ids[t]) + " at position " + std::to_string(t) +
                  " is outside the vocabulary of " + std::to_string(embedding.rows()));
    x.row(static_cast<Eigen::Index>(t)) = embedding.row(ids[t]);
  }
  return x;
}

}  // namespace gptqw
