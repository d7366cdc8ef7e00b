#include "pipeline/divergence_stats.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

#include "common/error.h"

namespace gptqw {

void DivergenceSums::add(const TokenComparison& c) {
  const double d = c.nll_quant - c.nll_orig, dp2_ = c.dp * c.dp;
  DivergenceSums one;
  one.n = 1;
  one.nll_orig = c.nll_orig;
  one.nll_orig2 = c.nll_orig * c.nll_orig;
  one.nll_quant = c.nll_quant;
  one.nll_quant2 = c.nll_quant * c.nll_quant;
  one.nll_cross = c.nll_orig * c.nll_quant;
  one.dnll2 = d * d;
  one.kld = c.kld;
  one.kld2 = c.kld * c.kld;
  one.dp = c.dp;
  one.dp2 = dp2_;
  one.dp4 = dp2_ * dp2_;
  for (int k = 0; k < c.top_agree; ++k) one.top_agree[k] = 1;
  add(one);
}

void DivergenceSums::add(const DivergenceSums& o) {
  static constexpr double DivergenceSums::*kSums[] = {
      &DivergenceSums::nll_orig,   &DivergenceSums::nll_orig2, &DivergenceSums::nll_quant,
      &DivergenceSums::nll_quant2, &DivergenceSums::nll_cross, &DivergenceSums::dnll2,
      &DivergenceSums::kld,        &DivergenceSums::kld2,      &DivergenceSums::dp,
      &DivergenceSums::dp2,        &DivergenceSums::dp4};
  // A field added to DivergenceSums must be added to the list above.
  static_assert(sizeof(DivergenceSums) ==
                sizeof(int64_t) + std::size(kSums) * sizeof(double) + sizeof(top_agree));
  n += o.n;
  for (double DivergenceSums::*sum : kSums) this->*sum += o.*sum;
  for (int k = 0; k < kTopRanks; ++k) top_agree[k] += o.top_agree[k];
}

DivergenceStats::DivergenceStats(std::vector<int> starts) : m_bucket_starts(std::move(starts)) {
  if (m_bucket_starts.empty() || m_bucket_starts[0] != 0 ||
      !std::is_sorted(m_bucket_starts.begin(), m_bucket_starts.end(), std::less_equal<int>()))
    throw ConfigError("position buckets must start at 0 and rise strictly");
  m_buckets.resize(m_bucket_starts.size());
}

void DivergenceStats::start_window() {
  m_windows.emplace_back();
}

void DivergenceStats::add(const TokenComparison& c, int position) {
  const double values[] = {c.kld, c.nll_orig, c.nll_quant, c.dp, c.orig_top_prob};
  for (double v : values)
    if (!std::isfinite(v))
      throw Error("divergence: position " + std::to_string(position) +
                  " has a non-finite value (KLD " + std::to_string(c.kld) + ", NLL original " +
                  std::to_string(c.nll_orig) + ", quantized " + std::to_string(c.nll_quant) +
                  "): a model's outputs overflow or are NaN there");
  if (position < 0) throw Error("divergence: negative position " + std::to_string(position));
  if (m_windows.empty()) start_window();
  m_sums.add(c);
  const auto bucket = std::upper_bound(m_bucket_starts.begin(), m_bucket_starts.end(), position) -
                      m_bucket_starts.begin() - 1;
  m_buckets[static_cast<size_t>(bucket)].add(c);
  WindowSums& w = m_windows.back();
  ++w.n;
  w.dnll += c.nll_quant - c.nll_orig;
  w.kld += c.kld;
  m_kld.push_back(static_cast<float>(c.kld));
  m_dp.push_back(static_cast<float>(c.dp));
  m_conf.push_back(static_cast<float>(c.orig_top_prob));
}

void DivergenceStats::add(std::span<const float> orig_logits, std::span<const float> quant_logits,
                          int32_t target, int position) {
  add(compare_tokens(TokenDistribution(orig_logits), TokenDistribution(quant_logits), target),
      position);
}

void DivergenceStats::merge(const DivergenceStats& o) {
  if (o.m_bucket_starts != m_bucket_starts)
    throw ConfigError("divergence: merging statistics with different position buckets");
  m_sums.add(o.m_sums);
  for (size_t b = 0; b < m_buckets.size(); ++b) m_buckets[b].add(o.m_buckets[b]);
  m_windows.insert(m_windows.end(), o.m_windows.begin(), o.m_windows.end());
  m_kld.insert(m_kld.end(), o.m_kld.begin(), o.m_kld.end());
  m_dp.insert(m_dp.end(), o.m_dp.begin(), o.m_dp.end());
  m_conf.insert(m_conf.end(), o.m_conf.begin(), o.m_conf.end());
}

}  // namespace gptqw
