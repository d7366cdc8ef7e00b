#include "pipeline/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "common/error.h"
#include "common/text_file.h"
#include "linalg/gemm.h"
#include "linalg/reduce.h"
#include "model/llama.h"
#include "model/rope_scaling.h"

namespace gptqw {

namespace {

// Positions whose logits are held at once: a whole window's would be [seqlen, vocab], 1.24 GB
// for 2048 tokens of Qwen's 151,936-token vocabulary.
constexpr Eigen::Index kLogitRows = 256;

// Mean next-token NLL of one window from its final hidden states h [seqlen, hidden].
double window_nll(const Matrix& h, const Matrix& lm_head, std::span<const int32_t> ids) {
  const Eigen::Index n = h.rows() - 1;
  double sum = 0;
  Matrix logits;
  for (Eigen::Index t0 = 0; t0 < n; t0 += kLogitRows) {
    const Eigen::Index rows = std::min(kLogitRows, n - t0);
    logits.resize(rows, lm_head.rows());
    linalg::matmul_nt(logits, h.middleRows(t0, rows), lm_head);
    for (Eigen::Index t = 0; t < rows; ++t) {
      const float* row = logits.row(t).data();
      const float mx = *std::max_element(row, row + logits.cols());
      const double lse = std::log(linalg::sum_exp_f64(row, logits.cols(), mx)) + mx;
      sum += lse - row[ids[t0 + t + 1]];
    }
  }
  return sum / static_cast<double>(n);
}

}  // namespace

int64_t perplexity_windows(int64_t tokens, const PerplexityOptions& opt) {
  if (opt.seqlen < 2) return 0;
  const int64_t n = tokens / opt.seqlen;
  return opt.max_windows > 0 ? std::min<int64_t>(n, opt.max_windows) : n;
}

PerplexityResult perplexity(const WeightSource& weights, std::span<const int32_t> tokens,
                            const PerplexityOptions& opt, const ProgressFn& progress) {
  auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = weights.config();
  if (opt.seqlen < 2) throw ConfigError("seqlen must be at least 2, got " + std::to_string(opt.seqlen));
  const int64_t n_windows = perplexity_windows(static_cast<int64_t>(tokens.size()), opt);
  if (n_windows == 0)
    throw ConfigError("the text has " + std::to_string(tokens.size()) +
                      " tokens, fewer than one window of seqlen " + std::to_string(opt.seqlen));

  PerplexityResult r;
  r.tokens = static_cast<int64_t>(tokens.size());
  r.windows = static_cast<int>(n_windows);
  r.seqlen = opt.seqlen;
  r.window_nll.resize(n_windows);

  const Rope rope = make_rope(c, opt.seqlen);
  const Matrix embedding = weights.embedding();
  const Vector final_norm = weights.final_norm();
  const OutputHead head(weights, embedding);
  const Matrix& lm_head = head.matrix();
  size_t window_bytes = size_t(opt.seqlen) * c.hidden_size * sizeof(float);
  int64_t per_chunk = std::max<int64_t>(1, static_cast<int64_t>(opt.activation_budget / window_bytes));
  int64_t n_chunks = (n_windows + per_chunk - 1) / per_chunk;
  const double steps = static_cast<double>(n_chunks) * (c.num_layers + 1);

  for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
    int64_t w0 = chunk * per_chunk, w1 = std::min(n_windows, w0 + per_chunk);
    auto ids = tokens.subspan(w0 * opt.seqlen, (w1 - w0) * opt.seqlen);
    Matrix x = embed(embedding, ids);
    for (int b = 0; b < c.num_layers; ++b) {
      report_progress(progress, {"perplexity", b, c.num_layers, "",
                                 (chunk * (c.num_layers + 1) + b) / steps});
      block_forward(c, weights.block(b), rope, x, opt.seqlen);
    }
    report_progress(progress, {"perplexity", c.num_layers, c.num_layers, "lm_head",
                               (chunk * (c.num_layers + 1) + c.num_layers) / steps});
    // Small vocabularies: one window per thread; large ones: one at a time, threads in the GEMM.
    const bool parallel = size_t(opt.seqlen) * c.vocab_size * sizeof(float) < (size_t(64) << 20);
#pragma omp parallel for schedule(dynamic) if (parallel)
    for (int64_t w = w0; w < w1; ++w) {
      Matrix h;
      rms_norm(x.middleRows((w - w0) * opt.seqlen, opt.seqlen), final_norm, c.rms_norm_eps, h);
      r.window_nll[w] = window_nll(h, lm_head, ids.subspan((w - w0) * opt.seqlen, opt.seqlen));
    }
  }
  // A window whose loss is not finite (logits overflowed to infinity or NaN somewhere in the
  // model) makes the perplexity meaningless: an error naming the window, never "nan".
  for (int64_t w = 0; w < n_windows; ++w)
    if (!std::isfinite(r.window_nll[w]))
      throw Error("perplexity: window " + std::to_string(w) + " (tokens " +
                  std::to_string(w * opt.seqlen) + " to " + std::to_string((w + 1) * opt.seqlen) +
                  ") has a non-finite loss (" + std::to_string(r.window_nll[w]) +
                  "): the model's outputs overflow or are NaN there");
  double sum = 0;
  for (double v : r.window_nll) sum += v;
  r.nll_mean = sum / static_cast<double>(n_windows);
  r.ppl = std::exp(r.nll_mean);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report_progress(progress, {"perplexity", c.num_layers, c.num_layers, "", 1.0});
  return r;
}

PerplexityResult perplexity_of_file(const Model& model, const std::filesystem::path& text,
                                    const PerplexityOptions& options, const ProgressFn& progress) {
  std::string s = read_text_file(text);
  std::vector<int32_t> ids = model.tokenizer->encode(s, true);
  try {
    return perplexity(*model.weights, ids, options, progress);
  } catch (const ConfigError& e) {
    throw ConfigError(file_msg(text, e.what()));
  }
}

}  // namespace gptqw
