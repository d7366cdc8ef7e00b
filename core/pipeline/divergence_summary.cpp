#include "pipeline/divergence_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gptqw {

Percentiles percentiles(std::span<const float> values) {
  std::vector<float> v(values.begin(), values.end());
  std::sort(v.begin(), v.end());
  // llama.cpp's two lists together (KLD and Δp), each at its fraction.
  static constexpr std::pair<double Percentiles::*, double> kAt[] = {
      {&Percentiles::min, 0},      {&Percentiles::p0_1, 0.001}, {&Percentiles::p1, 0.01},
      {&Percentiles::p5, 0.05},    {&Percentiles::p10, 0.10},   {&Percentiles::p25, 0.25},
      {&Percentiles::median, 0.5}, {&Percentiles::p75, 0.75},   {&Percentiles::p90, 0.90},
      {&Percentiles::p95, 0.95},   {&Percentiles::p99, 0.99},   {&Percentiles::p99_9, 0.999},
      {&Percentiles::max, 1}};
  Percentiles p;
  for (const auto& [member, fraction] : kAt) p.*member = percentile(v, fraction);
  return p;
}

namespace {

// ln(PPL_q / PPL_orig) = mean b - mean a. Its error is llama.cpp's sqrt(se_b^2 + se_a^2 -
// 2 cov), computed as what that is in exact arithmetic, the standard error of the paired
// differences d = b - a: the three terms of llama.cpp's form nearly cancel when the models are
// close (identical models gave 5e-9 instead of 0), the differences do not.
Estimate ln_ratio(const DivergenceSums& s) {
  const double n = static_cast<double>(s.n);
  const double d = s.n > 0 ? (s.nll_quant - s.nll_orig) / n : 0;
  return {d, s.n > 0 ? standard_error(d, s.dnll2 / n, s.n) : 0};
}

double nll_cov(const DivergenceSums& s) {
  return mean_covariance(s.nll_orig, s.nll_quant, s.nll_cross, s.n);
}

}  // namespace

PairEstimates pair_estimates(const DivergenceSums& s) {
  if (s.n == 0) return {};  // an empty bucket: zeros, not exp(0) = 1
  const Estimate a = mean_estimate(s.nll_orig, s.nll_orig2, s.n);
  const Estimate b = mean_estimate(s.nll_quant, s.nll_quant2, s.n);
  PairEstimates e;
  e.ppl_orig = exp_estimate(a);
  e.ppl_quant = exp_estimate(b);
  e.ln_ppl_ratio = ln_ratio(s);
  e.kld = mean_estimate(s.kld, s.kld2, s.n);
  return e;
}

DivergenceSummary summarize(const DivergenceStats& stats) {
  const DivergenceSums& s = stats.sums();
  DivergenceSummary r;
  r.tokens = s.n;
  r.windows = static_cast<int>(stats.windows().size());
  const PairEstimates e = pair_estimates(s);
  r.ppl_orig = e.ppl_orig;
  r.ppl_quant = e.ppl_quant;
  r.ln_ppl_ratio = e.ln_ppl_ratio;
  r.kld = e.kld;
  r.ppl_ratio = exp_estimate(r.ln_ppl_ratio);
  const double cov = nll_cov(s);
  const double ppl_cov = r.ppl_quant.value * r.ppl_orig.value * cov;
  r.ppl_diff = {r.ppl_quant.value - r.ppl_orig.value,
                std::sqrt(std::max(0.0, r.ppl_quant.se * r.ppl_quant.se +
                                            r.ppl_orig.se * r.ppl_orig.se - 2 * ppl_cov))};
  const double se_a = mean_estimate(s.nll_orig, s.nll_orig2, s.n).se;
  const double se_b = mean_estimate(s.nll_quant, s.nll_quant2, s.n).se;
  r.nll_correlation = se_a > 0 && se_b > 0 ? cov / (se_a * se_b) : 0;
  r.kld_pct = percentiles(stats.kld_values());
  r.dp = mean_estimate(s.dp, s.dp2, s.n);
  r.dp_rms = sqrt_estimate(mean_estimate(s.dp2, s.dp4, s.n));
  r.dp_pct = percentiles(stats.dp_values());
  for (int k = 0; k < kTopRanks; ++k) {
    r.top_agree_count[k] = s.top_agree[k];
    r.top_agreement[k] = proportion_estimate(s.top_agree[k], s.n);
  }

  const std::vector<int>& starts = stats.position_buckets();
  for (size_t b = 0; b < starts.size(); ++b) {
    PositionBucketSummary p;
    p.first = starts[b];
    p.end = b + 1 < starts.size() ? starts[b + 1] : -1;
    p.tokens = stats.bucket_sums()[b].n;
    p.est = pair_estimates(stats.bucket_sums()[b]);
    r.by_position.push_back(p);
  }

  const std::span<const float> conf = stats.orig_top_prob_values(), kld = stats.kld_values();
  for (size_t b = 0; b + 1 < kConfidenceEdges.size(); ++b) {
    ConfidenceBucketSummary c;
    c.low = kConfidenceEdges[b];
    c.high = kConfidenceEdges[b + 1];
    const bool last = b + 2 == kConfidenceEdges.size();
    std::vector<float> in;
    double sum = 0;
    for (size_t i = 0; i < conf.size(); ++i)
      if (conf[i] >= c.low && (conf[i] < c.high || (last && conf[i] <= c.high))) {
        in.push_back(kld[i]);
        sum += kld[i];
      }
    c.tokens = static_cast<int64_t>(in.size());
    c.share = s.n > 0 ? static_cast<double>(c.tokens) / static_cast<double>(s.n) : 0;
    if (!in.empty()) {
      c.kld_mean = sum / static_cast<double>(in.size());
      std::sort(in.begin(), in.end());
      c.kld_median = percentile(in, 0.5);
    }
    r.by_confidence.push_back(c);
  }
  return r;
}

PrecisionCheck precision_check(const DivergenceStats& stats, PrecisionOf of) {
  const DivergenceSums& s = stats.sums();
  const PairEstimates e = pair_estimates(s);
  const Estimate token = of == PrecisionOf::kld ? e.kld : e.ln_ppl_ratio;
  // The same quantity per window: the mean of each window's values.
  double sum = 0, sum2 = 0;
  int64_t W = 0;
  for (const WindowSums& w : stats.windows()) {
    if (w.n == 0) continue;
    const double m = (of == PrecisionOf::kld ? w.kld : w.dnll) / static_cast<double>(w.n);
    sum += m;
    sum2 += m * m;
    ++W;
  }
  constexpr double kInf = std::numeric_limits<double>::infinity();
  PrecisionCheck c;
  c.value = token.value;
  c.half_width = W < 2 ? kInf
                       : std::max(1.959963984540054 * token.se,
                                  student_t_975(W - 1) * mean_estimate(sum, sum2, W).se);
  c.relative = c.value == 0 ? kInf : c.half_width / std::abs(c.value);
  return c;
}

bool precision_reached(const DivergenceStats& stats, PrecisionOf of, double precision) {
  return precision_check(stats, of).relative < precision;
}

}  // namespace gptqw
