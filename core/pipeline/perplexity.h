// Perplexity by the protocol every GPTQ paper table uses (spec section 5): the whole text
// tokenized once with BOS at the start, cut into non-overlapping windows of seqlen tokens (the
// tail dropped), mean next-token NLL per window (seqlen - 1 predictions), ppl = exp(mean over
// windows). The model is walked block by block over all windows, so one block's weights are
// converted at a time, as in the reference's llama_eval (pipeline/window_walk.h, the walk the
// divergence evaluator shares).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "common/progress.h"
#include "model/model.h"

namespace gptqw {

struct PerplexityOptions {
  int seqlen = 2048;
  int max_windows = 0;  // 0: all windows of the text
  // Activations of this many bytes at most are held at once; more windows are processed in
  // chunks (each chunk walks all blocks again).
  size_t activation_budget = size_t(2) << 30;
};

struct PerplexityResult {
  double ppl = 0;
  double nll_mean = 0;  // mean over windows of each window's mean NLL (nats)
  // llama.cpp's "PPL = ppl +/- ppl_se" (pipeline/statistics.h): the standard error of the mean
  // NLL over all N = windows x (seqlen - 1) predictions, sqrt((mean(nll^2) - nll_mean^2) /
  // (N - 1)), and ppl_se = ppl x nll_se (first order). It treats predictions as independent;
  // neighbouring ones are not, so it understates the uncertainty somewhat.
  double nll_se = 0;
  double ppl_se = 0;
  int64_t tokens = 0;   // tokens of the whole text, BOS included
  int windows = 0;
  int seqlen = 0;
  double seconds = 0;
  std::vector<double> window_nll;  // mean NLL of each window
};

// Windows a text of `tokens` tokens gives: tokens / seqlen, at most max_windows (when > 0).
int64_t perplexity_windows(int64_t tokens, const PerplexityOptions& options);

// tokens: the whole tokenized text. Throws ConfigError when fewer than seqlen tokens, and Error
// naming the window when a window's loss is not finite (the result is never NaN or infinite).
PerplexityResult perplexity(const WeightSource& weights, std::span<const int32_t> tokens,
                            const PerplexityOptions& options, const ProgressFn& progress = {});

// Reads and tokenizes the text file (BOS added), then evaluates; errors name the file.
PerplexityResult perplexity_of_file(const Model& model, const std::filesystem::path& text,
                                    const PerplexityOptions& options,
                                    const ProgressFn& progress = {});

}  // namespace gptqw
