// One position of a text seen by two models: the original's and the quantized model's next-token
// distributions, compared as llama.cpp's `llama-perplexity --kl-divergence` and exllamav3's
// eval/model_diff.py compare them. Everything is computed in float64 from the float logits, over
// the whole vocabulary (llama.cpp instead stores the base model's log-probabilities as 16-bit
// codes and drops the terms with log p < -16; nothing is dropped or rounded here).
//
// With logits x (original) and y (quantized) of a row, V tokens, and the correct next token c:
//   log p_i = x_i - log sum_j exp(x_j),  log q_i = y_i - log sum_j exp(y_j)   (log-softmax)
//   KLD      = KL(p || q) = sum_i p_i (log p_i - log q_i)     (nats; terms with p_i = 0 are 0)
//   NLL      = -log p_c (original), -log q_c (quantized)
//   dp       = q_c - p_c                 (llama.cpp's Δp: quantized minus original probability
//                                         of the correct token)
//   top      = the min(5, V) tokens of largest logit, most likely first; equal logits are ranked
//              by token id, lower first (llama.cpp's argmax keeps the first maximum as well)
//   agreement K (K = 1..5): the two models' top-K lists are identical, rank by rank (exllamav3:
//              torch.eq(top_a[:, :K], top_b[:, :K]).all(dim=1)); K = 1 is llama.cpp's "same top".
//              For K > V the min(K, V) ranks that exist are compared.
//   confidence the original's top probability max_i p_i (exllamav3 buckets KLD by it)
//
// The log-sum-exp uses the C library's double exp and log, which may differ in the last bit
// between CPUs; these statistics are pinned with a tolerance, unlike perplexity's bits.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace gptqw {

inline constexpr int kTopRanks = 5;

// The float64 log-softmax of one row of logits and its top tokens.
class TokenDistribution {
 public:
  TokenDistribution() = default;
  // Throws Error when the row is empty, holds a NaN or +inf, or is -inf everywhere.
  explicit TokenDistribution(std::span<const float> logits) { set(logits); }
  void set(std::span<const float> logits);  // reuses the storage: one per thread and model

  int64_t size() const { return static_cast<int64_t>(m_logp.size()); }
  double log_prob(int64_t token) const { return m_logp[static_cast<size_t>(token)]; }
  std::span<const double> log_probs() const { return m_logp; }
  std::span<const int32_t> top() const { return {m_top.data(), static_cast<size_t>(m_ntop)}; }
  double top_prob() const;

 private:
  std::vector<double> m_logp;
  std::array<int32_t, kTopRanks> m_top{};
  int m_ntop = 0;
};

// One position's comparison (definitions above).
struct TokenComparison {
  double kld = 0;
  double nll_orig = 0, nll_quant = 0;
  double p_orig = 0, p_quant = 0;  // of the correct token
  double dp = 0;                   // p_quant - p_orig
  int top_agree = 0;               // the longest K (0..5) for which the top-K lists agree
  double orig_top_prob = 0;
};

// Throws Error when the sizes differ or the target is outside the vocabulary.
TokenComparison compare_tokens(const TokenDistribution& orig, const TokenDistribution& quant,
                               int32_t target);

}  // namespace gptqw
