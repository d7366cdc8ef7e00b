// The evaluation walk that perplexity() and the divergence evaluator (pipeline/divergence.h)
// share: the text's non-overlapping windows of seqlen tokens, processed in chunks of windows
// whose activations fit a budget; in each chunk every model is walked block by block (one
// block's weights converted at a time), all models in lockstep on the same windows, then each
// window's final hidden states are handed to a callback that computes what it needs from the
// output head, kLogitRows positions at a time.
//
// One walk with one model is perplexity(); the same walk with the original and its quantized
// versions is the divergence evaluator. Keeping the walk, the NLL of a row and the assembly of
// PerplexityResult in one place is what makes the evaluator's perplexities bit-identical to
// perplexity()'s for the same windows.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/progress.h"
#include "model/weights.h"
#include "pipeline/perplexity.h"

namespace gptqw {

// Positions whose logits are held at once: a whole window's would be [seqlen, vocab], 1.24 GB
// for 2048 tokens of Qwen's 151,936-token vocabulary.
inline constexpr Eigen::Index kLogitRows = 256;

// How a text's windows are walked.
struct WindowPlan {
  int64_t windows = 0;    // windows evaluated: perplexity_windows()
  int64_t per_chunk = 0;  // windows whose activations are held at once (for all models together)
  int64_t chunks = 0;
};

// n_models models share opt.activation_budget: a chunk holds budget / (n_models x seqlen x
// hidden x 4 bytes) windows (at least 1); max_per_chunk > 0 caps it (an early stop can only
// save the chunks after the one where it is decided). Throws ConfigError when seqlen < 2 or
// the text is shorter than one window.
WindowPlan plan_windows(const ModelConfig& c, int64_t n_tokens, const PerplexityOptions& opt,
                        int n_models = 1, int64_t max_per_chunk = 0);

// Called once per window of a chunk, possibly on several threads at once (one window per
// thread), so it may only write to its window's own storage. ids: the window's seqlen tokens;
// h[m]: model m's final-normed hidden states [seqlen, hidden]; heads[m]: its output head
// [vocab, hidden]. An exception it throws is rethrown by walk_windows after the chunk (the
// lowest window's first), never across the thread pool.
using WindowFn =
    std::function<void(int64_t window, std::span<const int32_t> ids, const std::vector<Matrix>& h,
                       const std::vector<const Matrix*>& heads)>;
// Called after each chunk with its windows [first, end); returning false ends the walk there.
using ChunkFn = std::function<bool(int64_t first, int64_t end)>;

// Walks models (same config and vocabulary; the first one's config is used) over the plan's
// windows of tokens. Progress: stage, block b of n_blocks, "lm_head" for the output stage, the
// fraction over all chunks; a cancel is honoured between blocks (throws Cancelled).
// Embeddings and output heads equal to an earlier model's are shared, not held twice (a
// QuantizedModel keeps its base's). Throws ConfigError when the models' configs differ.
void walk_windows(std::span<const WeightSource* const> models, std::span<const int32_t> tokens,
                  const PerplexityOptions& opt, const WindowPlan& plan, const std::string& stage,
                  const ProgressFn& progress, const WindowFn& on_window,
                  const ChunkFn& after_chunk = {});

// logits = h[t0, t0 + rows) lm_head^T: one block of rows of a window's logits [rows, vocab].
void logit_rows(const Matrix& h, const Matrix& lm_head, Eigen::Index t0, Eigen::Index rows,
                Matrix& logits);

// The log-sum-exp of one row of logits: the exponentials in fp32 by the deterministic kernel,
// summed in double (linalg/reduce.h), shifted by the row's maximum.
double log_sum_exp(const float* logits, int64_t vocab);
// perplexity()'s next-token loss of one row of logits: its log-sum-exp minus the target's logit.
double row_nll(const float* logits, int64_t vocab, int32_t target);

// One window's losses, summed in position order.
struct WindowLoss {
  double sum = 0;   // sum of the NLLs
  double sum2 = 0;  // sum of their squares (for the standard error)
  int64_t n = 0;
  void add(double nll) {
    sum += nll;
    sum2 += nll * nll;
    ++n;
  }
};

// The perplexity of the windows' losses: nll_mean = mean over windows of each window's mean,
// ppl = exp(nll_mean), and the standard error of the mean over all predictions. Throws Error
// naming `what`, the window and its tokens when a window's loss is not finite.
PerplexityResult perplexity_result(std::span<const WindowLoss> windows, int64_t tokens, int seqlen,
                                   const std::string& what);

}  // namespace gptqw
