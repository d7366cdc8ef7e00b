#include "pipeline/token_comparison.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"

namespace gptqw {

void TokenDistribution::set(std::span<const float> x) {
  const size_t V = x.size();
  if (V == 0) throw Error("token distribution: the row of logits is empty");
  // The maximum first, so that the exponentials cannot overflow; NaN and +inf are errors, not
  // distributions.
  float mx = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < V; ++i) {
    if (std::isnan(x[i]) || x[i] == std::numeric_limits<float>::infinity())
      throw Error("token distribution: logit of token " + std::to_string(i) + " is " +
                  std::to_string(x[i]));
    mx = std::max(mx, x[i]);
  }
  if (mx == -std::numeric_limits<float>::infinity())
    throw Error("token distribution: every logit of the row is -inf");
  double s = 0;
  for (size_t i = 0; i < V; ++i) s += std::exp(double(x[i]) - double(mx));
  const double lse = double(mx) + std::log(s);
  m_logp.resize(V);
  for (size_t i = 0; i < V; ++i) m_logp[i] = double(x[i]) - lse;

  // Top ranks by insertion into a short sorted list: larger logit first, lower id on ties
  // (a later token enters only when strictly larger than a held one).
  m_ntop = 0;
  const int K = static_cast<int>(std::min<size_t>(kTopRanks, V));
  for (size_t i = 0; i < V; ++i) {
    int at = m_ntop;
    while (at > 0 && x[i] > x[static_cast<size_t>(m_top[at - 1])]) --at;
    if (at >= K) continue;
    const int last = std::min(m_ntop, K - 1);
    for (int j = last; j > at; --j) m_top[j] = m_top[j - 1];
    m_top[at] = static_cast<int32_t>(i);
    m_ntop = std::min(m_ntop + 1, K);
  }
}

double TokenDistribution::top_prob() const {
  return std::exp(m_logp[static_cast<size_t>(m_top[0])]);
}

TokenComparison compare_tokens(const TokenDistribution& orig, const TokenDistribution& quant,
                               int32_t target) {
  const int64_t V = orig.size();
  if (quant.size() != V)
    throw Error("token comparison: the original has " + std::to_string(V) +
                " tokens, the quantized model " + std::to_string(quant.size()));
  if (target < 0 || target >= V)
    throw Error("token comparison: target token " + std::to_string(target) +
                " is outside the vocabulary of " + std::to_string(V));
  const std::span<const double> lp = orig.log_probs(), lq = quant.log_probs();
  TokenComparison c;
  double kld = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double p = std::exp(lp[i]);
    if (p > 0) kld += p * (lp[i] - lq[i]);  // p = 0 contributes nothing (0 log 0 = 0)
  }
  c.kld = kld;
  c.nll_orig = -lp[target];
  c.nll_quant = -lq[target];
  c.p_orig = std::exp(lp[target]);
  c.p_quant = std::exp(lq[target]);
  c.dp = c.p_quant - c.p_orig;
  const std::span<const int32_t> a = orig.top(), b = quant.top();
  while (c.top_agree < static_cast<int>(a.size()) && a[c.top_agree] == b[c.top_agree])
    ++c.top_agree;
  c.orig_top_prob = orig.top_prob();
  return c;
}

}  // namespace gptqw
