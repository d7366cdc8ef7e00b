// The running statistics of one quantized model against its original, position by position
// (each position compared by compare_tokens(), pipeline/token_comparison.h): the sums llama.cpp's
// kl_divergence_result keeps (NLLs of both models and their cross product, KLD, Δp, Δp^2,
// Δp^4), the top-K agreement counts, sums per bucket of position within the window, sums per
// window, and each position's KLD, Δp and the original's top probability as floats, from which
// summarize() (pipeline/divergence_summary.h) takes percentiles and confidence buckets.
//
// Memory: 12 bytes per position (a 1M-token text: 12 MB per quantized model), plus 24 bytes
// per window; the sums are a few hundred bytes.
//
// Sums are added in position order within a window and windows in window order (merge()), so
// the result does not depend on how many threads computed the windows.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "pipeline/token_comparison.h"

namespace gptqw {

// The default buckets of position within the window: [0, 128), [128, 512), [512, 2048),
// [2048, ...): long-prompt damage shows in the later ones.
inline const std::vector<int> kDefaultPositionBuckets = {0, 128, 512, 2048};

// Sums over a set of positions.
struct DivergenceSums {
  int64_t n = 0;
  double nll_orig = 0, nll_orig2 = 0;    // sum of -log p_c and of its square
  double nll_quant = 0, nll_quant2 = 0;  // sum of -log q_c and of its square
  double nll_cross = 0;                  // sum of (-log p_c)(-log q_c)
  double dnll2 = 0;  // sum of (log p_c - log q_c)^2: the ln ratio's error without cancellation
  double kld = 0, kld2 = 0;
  double dp = 0, dp2 = 0, dp4 = 0;
  std::array<int64_t, kTopRanks> top_agree{};  // [K-1]: positions whose top-K lists agree
  void add(const TokenComparison& c);
  void add(const DivergenceSums& o);
};

// One window's sums of the two quantities the early stop watches (their spread between windows).
struct WindowSums {
  int64_t n = 0;
  double dnll = 0;  // sum of nll_quant - nll_orig: ln(PPL_q / PPL_orig) when divided by n
  double kld = 0;
};

class DivergenceStats {
 public:
  // position_buckets: the first position of each bucket, ascending, starting at 0 (a bucket runs
  // to the next one's start; the last one is open). Throws ConfigError otherwise.
  explicit DivergenceStats(std::vector<int> position_buckets = kDefaultPositionBuckets);

  // Starts a window: the positions added next belong to it (the first add starts one when none
  // was started).
  void start_window();
  // One position: `position` within its window (0 = the first prediction, made from the
  // window's first token). Throws Error naming the position when a value is not finite.
  void add(const TokenComparison& c, int position);
  // The same from the two models' logits rows (length V) and the correct next token.
  void add(std::span<const float> orig_logits, std::span<const float> quant_logits, int32_t target,
           int position);
  // Appends other's positions and windows after this one's (same buckets; ConfigError if not).
  void merge(const DivergenceStats& other);

  const DivergenceSums& sums() const { return m_sums; }
  const std::vector<int>& position_buckets() const { return m_bucket_starts; }
  const std::vector<DivergenceSums>& bucket_sums() const { return m_buckets; }
  const std::vector<WindowSums>& windows() const { return m_windows; }
  // Per position, in the order added.
  std::span<const float> kld_values() const { return m_kld; }
  std::span<const float> dp_values() const { return m_dp; }
  std::span<const float> orig_top_prob_values() const { return m_conf; }

 private:
  std::vector<int> m_bucket_starts;
  DivergenceSums m_sums;
  std::vector<DivergenceSums> m_buckets;
  std::vector<WindowSums> m_windows;
  std::vector<float> m_kld, m_dp, m_conf;
};

}  // namespace gptqw
