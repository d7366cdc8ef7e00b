// Does the quantized model still behave? The original model and one or more quantized versions
// of it run over the same evaluation windows, in lockstep, and every prediction of every window
// is compared over the whole vocabulary (pipeline/token_comparison.h for the definitions,
// divergence_summary.h for the statistics, llama.cpp's and exllamav3's).
//
// How the original's distributions are kept: not at all beyond the moment they are used. The
// models are walked together (pipeline/window_walk.h, perplexity()'s walk): per chunk of
// windows each model's activations go through block 0, then block 1, ... (one block's weights
// of one model converted at a time), and at the output head each window's logits are computed
// for all models, kLogitRows (256) positions at a time, compared, and dropped. There is no
// base-logits file as llama.cpp writes one (about V x 2 bytes per position: 300 KB per token
// at Qwen's 151,936) and no second pass.
//
// What it costs, with M = 1 + quantized models, hidden size H, vocabulary V:
//   activations  M x per_chunk x seqlen x H x 4 bytes: the chunk is cut so that this stays
//                within eval.activation_budget (one model alone would get M times as many
//                windows per chunk as here)
//   logits       M x 256 x V x 4 bytes per window in flight (one window per thread for small
//                vocabularies, one at a time with the threads in the GEMM for large ones:
//                Qwen 151,936 x 3 models = 467 MB), plus one float64 log-softmax row (8 V
//                bytes) per model and thread
//   embeddings   one copy per distinct embedding / output head (a QuantizedModel shares its
//                base's)
//   statistics   12 bytes per compared position and quantized model (divergence_stats.h)
//   time         the forward passes of the M models (as M perplexity runs) plus, per position
//                and quantized model, two float64 log-softmaxes and the KLD sum (a few
//                exponentials per vocabulary entry)
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "common/progress.h"
#include "model/weights.h"
#include "pipeline/divergence_stats.h"
#include "pipeline/divergence_summary.h"
#include "pipeline/perplexity.h"

namespace gptqw {

struct DivergenceOptions {
  PerplexityOptions eval;  // seqlen, max_windows, activation_budget (shared by all models)
  std::vector<int> position_buckets = kDefaultPositionBuckets;
  // --eval-precision P: stop after the first window at which every quantized model's
  // precision_check(of) has a relative half-width below P (divergence_summary.h). Windows are
  // then walked in chunks of at most check_chunk windows, so that the stop saves the rest.
  std::optional<double> precision;
  PrecisionOf precision_of = PrecisionOf::ln_ppl_ratio;
  int check_chunk = 8;
  std::string stage = "divergence";  // the progress stage
};

struct ModelDivergence {
  // perplexity()'s result (the same bits) for the windows evaluated; its seconds are 0: the
  // models run together, DivergenceResult::seconds is their time.
  PerplexityResult perplexity;
  DivergenceStats stats;
  DivergenceSummary summary;
};

struct DivergenceResult {
  PerplexityResult original;               // as ModelDivergence::perplexity
  std::vector<ModelDivergence> quantized;  // in the order given
  int windows = 0;                         // windows evaluated
  int windows_available = 0;               // windows of the text (perplexity_windows())
  bool stopped_early = false;              // the precision was reached after `windows` windows
  double seconds = 0;
};

// tokens: the whole tokenized text (BOS first where the tokenizer adds one). Throws ConfigError
// for no quantized model, models that do not match the original (vocabulary, hidden size,
// layers), or a text shorter than one window; Error naming the window and the model when a
// model's outputs are not finite there; Cancelled when progress asks to stop.
DivergenceResult compare_models(const WeightSource& original,
                                std::span<const WeightSource* const> quantized,
                                std::span<const int32_t> tokens, const DivergenceOptions& options,
                                const ProgressFn& progress = {});

}  // namespace gptqw
