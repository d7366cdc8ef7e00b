// What DivergenceStats (pipeline/divergence_stats.h) adds up to: the statistics llama.cpp's
// `llama-perplexity --kl-divergence` prints, exllamav3's top-K agreement and KLD by the
// original's confidence, and this tool's perplexity and KLD by position within the window.
// Each "±" is a standard error by pipeline/statistics.h. Over the n compared positions, with
// a_i = -log p(c_i) (original) and b_i = -log q(c_i) (quantized):
//
//   PPL(orig)        exp(mean a) ± exp(mean a) se(a)                   "Mean PPL(base)"
//   PPL(quant)       exp(mean b) ± exp(mean b) se(b)                   "Mean PPL(Q)"
//   cov              (mean(a b) - mean a mean b) / (n - 1)
//   correlation      cov / (se(a) se(b))                       "Cor(ln(PPL(Q)), ln(PPL(base)))"
//   ln ratio         mean b - mean a ± sqrt(se(b)^2 + se(a)^2 - 2 cov) "Mean ln(PPL(Q)/PPL(base))"
//                    (computed as the equal standard error of the differences b_i - a_i, which
//                    does not cancel when the models are close)
//   PPL ratio        exp(ln ratio) ± exp(ln ratio) se(ln ratio)        "Mean PPL(Q)/PPL(base)"
//   PPL difference   PPL(quant) - PPL(orig) ± sqrt(se_q^2 + se_o^2 - 2 PPL(q) PPL(o) cov)
//                                                                      "Mean PPL(Q)-PPL(base)"
//   KLD              mean of KL(p || q) ± se; percentiles (max, 99.9, 99, 95, 90, median, 10,
//                    5, 1, 0.1, min: "Maximum KLD" ... "Minimum KLD")
//   Δp               mean of q(c) - p(c) ± se; percentiles (llama.cpp's list adds 75 and 25)
//   RMS Δp           sqrt(mean Δp^2) ± se(Δp^2) / (2 RMS)              "RMS Δp"
//   top-K agreement  share of positions whose top-K lists agree ± sqrt(p (1 - p) / (n - 1)),
//                    K = 1..5; K = 1 is llama.cpp's "Same top p"
//   by position      per bucket of position within the window: PPL of both models, ln ratio
//                    and KLD, each ± as above over the bucket's positions
//   by confidence    exllamav3's buckets of the original's top probability [0, .25), [.25, .5),
//                    [.5, .75), [.75, .95), [.95, 1]: share of positions, mean and median KLD
//
// llama.cpp scores only the second half of each window (its context is half a window at
// least); here every prediction of the window counts, as in this tool's perplexity, and the
// position buckets show the early positions separately.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "pipeline/divergence_stats.h"
#include "pipeline/statistics.h"

namespace gptqw {

struct Percentiles {
  double min = 0, p0_1 = 0, p1 = 0, p5 = 0, p10 = 0, p25 = 0, median = 0, p75 = 0, p90 = 0, p95 = 0,
         p99 = 0, p99_9 = 0, max = 0;
};
// Sorts a copy of the values.
Percentiles percentiles(std::span<const float> values);

// The two perplexities, their ratio and the KLD over a set of positions (all 0 when empty).
struct PairEstimates {
  Estimate ppl_orig, ppl_quant, ln_ppl_ratio, kld;
};
PairEstimates pair_estimates(const DivergenceSums& s);

struct PositionBucketSummary {
  int first = 0;
  int end = -1;  // one past the bucket's last position; -1 for the open last bucket
  int64_t tokens = 0;
  PairEstimates est;
};

// exllamav3's buckets of the original's top probability; the last one includes 1.
inline constexpr std::array<double, 6> kConfidenceEdges = {0.0, 0.25, 0.5, 0.75, 0.95, 1.0};
struct ConfidenceBucketSummary {
  double low = 0, high = 0;
  int64_t tokens = 0;
  double share = 0;  // of all positions
  double kld_mean = 0, kld_median = 0;
};

struct DivergenceSummary {
  int64_t tokens = 0;  // positions compared
  int windows = 0;
  Estimate ppl_orig, ppl_quant, ln_ppl_ratio, ppl_ratio, ppl_diff;
  double nll_correlation = 0;  // 0 when a standard error is 0
  Estimate kld;
  Percentiles kld_pct;
  Estimate dp, dp_rms;
  Percentiles dp_pct;
  std::array<Estimate, kTopRanks> top_agreement;  // [K-1]; [0]: same top-1
  std::array<int64_t, kTopRanks> top_agree_count{};
  std::vector<PositionBucketSummary> by_position;
  std::vector<ConfidenceBucketSummary> by_confidence;
};

DivergenceSummary summarize(const DivergenceStats& stats);

// The honest early stop of `--eval-precision P`: the 95% interval of the watched quantity is
// narrow enough when its half-width is below P |value|. The half-width is the larger of
//   1.959964 x the per-position standard error (llama.cpp's ±, which treats positions as
//   independent), and
//   t_{0.975}(W - 1) x the standard error of the W per-window means (windows are far apart in
//   the text, so nearly independent; Student's t makes a few windows count for little),
// so correlated neighbouring tokens cannot make it stop early. Never reached before 2 windows,
// nor while the value is 0 (identical models run to the end).
enum class PrecisionOf { ln_ppl_ratio, kld };
struct PrecisionCheck {
  double value = 0;
  double half_width = 0;  // +inf below 2 windows
  double relative = 0;    // half_width / |value|; +inf when value == 0
};
PrecisionCheck precision_check(const DivergenceStats& stats, PrecisionOf of);
bool precision_reached(const DivergenceStats& stats, PrecisionOf of, double precision);

}  // namespace gptqw
