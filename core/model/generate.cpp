#include "model/generate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>

#include "common/error.h"
#include "linalg/gemm.h"
#include "model/llama.h"
#include "model/rope_scaling.h"

namespace gptqw {

std::string SamplingOptions::describe() const {
  if (greedy()) return "greedy";
  char buf[128];
  std::snprintf(buf, sizeof buf, "sampled: temperature %g, top-k %d, top-p %g, seed %llu", temperature,
                top_k, top_p, static_cast<unsigned long long>(seed));
  return buf;
}

int32_t pick_token(const float* logits, int64_t vocab, const SamplingOptions& s, double u) {
  if (vocab <= 0) throw ConfigError("cannot pick a token from an empty vocabulary");
  if (s.greedy()) return static_cast<int32_t>(std::max_element(logits, logits + vocab) - logits);
  // Tokens by decreasing logit, the lower id first on ties: an order that depends on the
  // values only, never on the sort's implementation.
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] != logits[b] ? logits[a] > logits[b] : a < b;
  });
  size_t keep = order.size();
  if (s.top_k > 0) keep = std::min(keep, static_cast<size_t>(s.top_k));
  // Softmax of logit / temperature over the kept tokens, in float64, from the largest down.
  std::vector<double> p(keep);
  const double top = logits[order[0]];
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) sum += p[i] = std::exp((logits[order[i]] - top) / s.temperature);
  // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
  if (s.top_p < 1) {
    double acc = 0;
    size_t n = 0;
    while (n < keep && acc < s.top_p * sum) acc += p[n++];
    keep = std::max<size_t>(n, 1);
    sum = std::accumulate(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(keep), 0.0);
  }
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (u * sum < acc) return order[i];
  }
  return order[keep - 1];  // u * sum at the very top of the range, by rounding
}

std::vector<int32_t> generate(const WeightSource& weights, std::vector<int32_t> ids, int n_new,
                              const std::vector<int32_t>& stop_ids, const SamplingOptions& sampling,
                              const ProgressFn& progress) {
  const ModelConfig& c = weights.config();
  if (ids.empty()) throw ConfigError("generation needs at least one token (BOS) to start from");
  if (!sampling.greedy() && !(sampling.top_p > 0 && sampling.top_p <= 1))
    throw ConfigError("top_p must be in (0, 1], got " + std::to_string(sampling.top_p));
  std::vector<BlockWeights> blocks;
  for (int b = 0; b < c.num_layers; ++b) blocks.push_back(weights.block(b));
  const Matrix embedding = weights.embedding();
  const Vector final_norm = weights.final_norm();
  const OutputHead head(weights, embedding);
  const Matrix& lm_head = head.matrix();
  // The positions this run can reach (the prompt plus the new tokens, never past the model's
  // context), not the context the config claims: max_position_embeddings 2^30 would ask for a
  // 32 GB RoPE table. Sequences stay below max_position_embeddings, so dynamic NTK scaling never
  // grows here (as in transformers, whose generation stays within it).
  const int64_t prompt = static_cast<int64_t>(ids.size());
  const int64_t max_len = std::max<int64_t>(
      prompt, std::min<int64_t>(c.max_position_embeddings, prompt + std::max(n_new, 0)));
  if (max_len > std::numeric_limits<int>::max())
    throw ConfigError("generation of " + std::to_string(max_len) + " positions is too long");
  const Rope rope = make_rope(c, static_cast<int>(max_len));
  // mt19937_64 is specified bit for bit by the standard; the uniform draw is made from its top
  // 53 bits here rather than by a distribution, whose algorithm each library chooses.
  std::mt19937_64 rng(sampling.seed);

  for (int step = 0; step < n_new && static_cast<int64_t>(ids.size()) < max_len; ++step) {
    report_progress(progress, {"generate", -1, 0, "", double(step) / n_new});
    Matrix x = embed(embedding, ids);
    for (const auto& b : blocks) block_forward(c, b, rope, x, static_cast<int>(x.rows()));
    Matrix h;
    rms_norm(x.bottomRows(1), final_norm, c.rms_norm_eps, h);
    Matrix logits(1, lm_head.rows());
    linalg::matmul_nt(logits, h, lm_head);
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    const int32_t next = pick_token(logits.data(), logits.cols(), sampling, u);
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) break;
    ids.push_back(next);
  }
  return ids;
}

}  // namespace gptqw
