#include "pipeline/window_walk.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>

#include "common/error.h"
#include "linalg/gemm.h"
#include "linalg/reduce.h"
#include "model/llama.h"
#include "model/rope_scaling.h"
#include "pipeline/statistics.h"

namespace gptqw {

WindowPlan plan_windows(const ModelConfig& c, int64_t n_tokens, const PerplexityOptions& opt,
                        int n_models, int64_t max_per_chunk) {
  if (opt.seqlen < 2)
    throw ConfigError("seqlen must be at least 2, got " + std::to_string(opt.seqlen));
  WindowPlan p;
  p.windows = perplexity_windows(n_tokens, opt);
  if (p.windows == 0)
    throw ConfigError("the text has " + std::to_string(n_tokens) +
                      " tokens, fewer than one window of seqlen " + std::to_string(opt.seqlen));
  const size_t window_bytes =
      size_t(opt.seqlen) * c.hidden_size * sizeof(float) * std::max(1, n_models);
  p.per_chunk = std::max<int64_t>(1, static_cast<int64_t>(opt.activation_budget / window_bytes));
  if (max_per_chunk > 0) p.per_chunk = std::min(p.per_chunk, max_per_chunk);
  p.chunks = (p.windows + p.per_chunk - 1) / p.per_chunk;
  return p;
}

namespace {

// A matrix equal to one already held is shared instead of held twice.
std::shared_ptr<const Matrix> share_equal(Matrix m,
                                          const std::vector<std::shared_ptr<const Matrix>>& held) {
  for (const auto& h : held)
    if (h && h->rows() == m.rows() && h->cols() == m.cols() && *h == m) return h;
  return std::make_shared<const Matrix>(std::move(m));
}

}  // namespace

void walk_windows(std::span<const WeightSource* const> models, std::span<const int32_t> tokens,
                  const PerplexityOptions& opt, const WindowPlan& plan, const std::string& stage,
                  const ProgressFn& progress, const WindowFn& on_window,
                  const ChunkFn& after_chunk) {
  const size_t M = models.size();
  if (M == 0) throw ConfigError(stage + ": no model to evaluate");
  const ModelConfig& c = models[0]->config();
  for (size_t m = 1; m < M; ++m) {
    const ModelConfig& o = models[m]->config();
    if (o.vocab_size != c.vocab_size || o.hidden_size != c.hidden_size ||
        o.num_layers != c.num_layers)
      throw ConfigError(
          stage + ": model " + std::to_string(m) + " (vocab " + std::to_string(o.vocab_size) +
          ", hidden " + std::to_string(o.hidden_size) + ", " + std::to_string(o.num_layers) +
          " layers) does not match model 0 (vocab " + std::to_string(c.vocab_size) + ", hidden " +
          std::to_string(c.hidden_size) + ", " + std::to_string(c.num_layers) + " layers)");
  }
  const Rope rope = make_rope(c, opt.seqlen);
  std::vector<std::shared_ptr<const Matrix>> embeddings, heads;
  std::vector<Vector> final_norms;
  std::vector<const Matrix*> head_ptrs;
  for (const WeightSource* w : models) {
    embeddings.push_back(share_equal(w->embedding(), embeddings));
    // Tied: the head is the embedding itself (OutputHead's rule), never a second copy.
    heads.push_back(w->config().tie_word_embeddings ? embeddings.back()
                                                    : share_equal(w->lm_head(), heads));
    final_norms.push_back(w->final_norm());
    head_ptrs.push_back(heads.back().get());
  }
  const double steps = static_cast<double>(plan.chunks) * (c.num_layers + 1);
  // Small vocabularies: one window per thread; large ones: one at a time, threads in the GEMM.
  const bool parallel = size_t(opt.seqlen) * c.vocab_size * sizeof(float) < (size_t(64) << 20);

  for (int64_t chunk = 0; chunk < plan.chunks; ++chunk) {
    const int64_t w0 = chunk * plan.per_chunk, w1 = std::min(plan.windows, w0 + plan.per_chunk);
    const auto ids = tokens.subspan(w0 * opt.seqlen, (w1 - w0) * opt.seqlen);
    std::vector<Matrix> x(M);
    for (size_t m = 0; m < M; ++m) x[m] = embed(*embeddings[m], ids);
    for (int b = 0; b < c.num_layers; ++b) {
      report_progress(progress,
                      {stage, b, c.num_layers, "", (chunk * (c.num_layers + 1) + b) / steps});
      for (size_t m = 0; m < M; ++m) block_forward(c, models[m]->block(b), rope, x[m], opt.seqlen);
    }
    report_progress(progress, {stage, c.num_layers, c.num_layers, "lm_head",
                               (chunk * (c.num_layers + 1) + c.num_layers) / steps});
    std::vector<std::exception_ptr> failed(w1 - w0);
#pragma omp parallel for schedule(dynamic) if (parallel)
    for (int64_t w = w0; w < w1; ++w) {
      try {
        std::vector<Matrix> h(M);
        for (size_t m = 0; m < M; ++m)
          rms_norm(x[m].middleRows((w - w0) * opt.seqlen, opt.seqlen), final_norms[m],
                   c.rms_norm_eps, h[m]);
        on_window(w, ids.subspan((w - w0) * opt.seqlen, opt.seqlen), h, head_ptrs);
      } catch (...) {
        failed[w - w0] = std::current_exception();
      }
    }
    for (const std::exception_ptr& e : failed)
      if (e) std::rethrow_exception(e);
    if (after_chunk && !after_chunk(w0, w1)) break;
  }
  report_progress(progress, {stage, c.num_layers, c.num_layers, "", 1.0});
}

void logit_rows(const Matrix& h, const Matrix& lm_head, Eigen::Index t0, Eigen::Index rows,
                Matrix& logits) {
  logits.resize(rows, lm_head.rows());
  linalg::matmul_nt(logits, h.middleRows(t0, rows), lm_head);
}

double log_sum_exp(const float* row, int64_t vocab) {
  const float mx = *std::max_element(row, row + vocab);
  return std::log(linalg::sum_exp_f64(row, vocab, mx)) + mx;
}

double row_nll(const float* row, int64_t vocab, int32_t target) { return log_sum_exp(row, vocab) - row[target]; }

PerplexityResult perplexity_result(std::span<const WindowLoss> windows, int64_t tokens, int seqlen,
                                   const std::string& what) {
  PerplexityResult r;
  r.tokens = tokens;
  r.windows = static_cast<int>(windows.size());
  r.seqlen = seqlen;
  r.window_nll.resize(windows.size());
  for (size_t w = 0; w < windows.size(); ++w)
    r.window_nll[w] = windows[w].sum / static_cast<double>(windows[w].n);
  // A window whose loss is not finite (logits overflowed to infinity or NaN somewhere in the
  // model) makes the perplexity meaningless: an error naming the window, never "nan".
  for (size_t w = 0; w < windows.size(); ++w)
    if (!std::isfinite(r.window_nll[w]) || !std::isfinite(windows[w].sum2))
      throw Error(what + ": window " + std::to_string(w) + " (tokens " +
                  std::to_string(w * seqlen) + " to " + std::to_string((w + 1) * seqlen) +
                  ") has a non-finite loss (" + std::to_string(r.window_nll[w]) +
                  "): the model's outputs overflow or are NaN there");
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  for (size_t w = 0; w < windows.size(); ++w) {
    sum += r.window_nll[w];
    sum2 += windows[w].sum2;
    n += windows[w].n;
  }
  r.nll_mean = sum / static_cast<double>(windows.size());
  r.ppl = std::exp(r.nll_mean);
  // Windows have equal lengths, so the mean of the window means is the mean over predictions.
  r.nll_se = standard_error(r.nll_mean, sum2 / static_cast<double>(n), n);
  r.ppl_se = r.ppl * r.nll_se;
  return r;
}

}  // namespace gptqw
