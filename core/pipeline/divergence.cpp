#include "pipeline/divergence.h"

#include <omp.h>

#include <chrono>
#include <exception>

#include "common/error.h"
#include "pipeline/window_walk.h"

namespace gptqw {

namespace {

std::string model_label(size_t m) {
  return m == 0 ? "the original model" : "quantized model " + std::to_string(m);
}

// What one window produces: each model's losses (perplexity()'s), and each quantized model's
// comparison with the original.
struct WindowResult {
  std::vector<WindowLoss> loss;
  std::vector<DivergenceStats> stats;
};

}  // namespace

DivergenceResult compare_models(const WeightSource& original,
                                std::span<const WeightSource* const> quantized,
                                std::span<const int32_t> tokens, const DivergenceOptions& opt,
                                const ProgressFn& progress) {
  const auto t_start = std::chrono::steady_clock::now();
  if (quantized.empty()) throw ConfigError("divergence: no quantized model to compare");
  std::vector<const WeightSource*> models = {&original};
  models.insert(models.end(), quantized.begin(), quantized.end());
  const size_t M = models.size();
  const int seqlen = opt.eval.seqlen;
  const DivergenceStats empty(opt.position_buckets);  // checks the buckets before any work
  if (opt.precision && !(*opt.precision > 0))
    throw ConfigError("divergence: the precision must be above 0, got " +
                      std::to_string(*opt.precision));
  const WindowPlan plan =
      plan_windows(original.config(), static_cast<int64_t>(tokens.size()), opt.eval,
                   static_cast<int>(M), opt.precision ? std::max(1, opt.check_chunk) : 0);

  DivergenceResult r;
  r.windows_available = static_cast<int>(plan.windows);
  std::vector<std::vector<WindowLoss>> losses(M);
  std::vector<DivergenceStats> stats(M - 1, empty);
  std::vector<WindowResult> slots;
  int64_t slot0 = 0;

  // "divergence: window 3 (tokens 1536 to 2048), quantized model 1: ", before a model's error.
  auto where = [&](int64_t w, size_t m) {
    return opt.stage + ": window " + std::to_string(w) + " (tokens " + std::to_string(w * seqlen) +
           " to " + std::to_string((w + 1) * seqlen) + "), " + model_label(m) + ": ";
  };
  auto on_window = [&](int64_t w, std::span<const int32_t> ids, const std::vector<Matrix>& h,
                       const std::vector<const Matrix*>& heads) {
    WindowResult& out = slots[static_cast<size_t>(w - slot0)];
    out.loss.assign(M, WindowLoss());
    out.stats.assign(M - 1, empty);
    for (DivergenceStats& s : out.stats) s.start_window();
    std::vector<Matrix> logits(M);
    std::vector<double> nll;
    std::vector<TokenComparison> cmp;
    std::vector<std::exception_ptr> failed;
    const Eigen::Index n = h[0].rows() - 1;
    for (Eigen::Index t0 = 0; t0 < n; t0 += kLogitRows) {
      const Eigen::Index rows = std::min(kLogitRows, n - t0);
      for (size_t m = 0; m < M; ++m) logit_rows(h[m], *heads[m], t0, rows, logits[m]);
      // The rows are compared in parallel unless the walk already runs windows in parallel
      // (small vocabularies), then added in position order: the same sums either way.
      nll.assign(M * rows, 0);
      cmp.assign((M - 1) * rows, TokenComparison());
      failed.assign(rows, nullptr);
#pragma omp parallel for schedule(static) if (!omp_in_parallel())
      for (Eigen::Index t = 0; t < rows; ++t) {
        thread_local std::vector<TokenDistribution> dist;
        dist.resize(M);
        const int32_t target = ids[t0 + t + 1];
        for (size_t m = 0; m < M; ++m) {
          const float* row = logits[m].row(t).data();
          nll[m * rows + t] = row_nll(row, logits[m].cols(), target);
          try {
            dist[m].set({row, static_cast<size_t>(logits[m].cols())});
            if (m > 0) cmp[(m - 1) * rows + t] = compare_tokens(dist[0], dist[m], target);
          } catch (const Error& e) {
            failed[t] = std::make_exception_ptr(Error(where(w, m) + e.what()));
            break;
          }
        }
      }
      for (const std::exception_ptr& e : failed)
        if (e) std::rethrow_exception(e);
      for (Eigen::Index t = 0; t < rows; ++t) {
        for (size_t m = 0; m < M; ++m) out.loss[m].add(nll[m * rows + t]);
        for (size_t q = 0; q + 1 < M; ++q) {
          try {
            out.stats[q].add(cmp[q * rows + t], static_cast<int>(t0 + t));
          } catch (const Error& e) {
            throw Error(where(w, q + 1) + e.what());
          }
        }
      }
    }
  };

  auto after_chunk = [&](int64_t w0, int64_t w1) {
    for (int64_t w = w0; w < w1; ++w) {
      WindowResult& done = slots[static_cast<size_t>(w - slot0)];
      for (size_t m = 0; m < M; ++m) losses[m].push_back(done.loss[m]);
      for (size_t q = 0; q + 1 < M; ++q) stats[q].merge(done.stats[q]);
      ++r.windows;
      if (!opt.precision) continue;
      bool all = true;
      for (const DivergenceStats& s : stats)
        all = all && precision_reached(s, opt.precision_of, *opt.precision);
      if (all) {
        r.stopped_early = w + 1 < plan.windows;
        return false;
      }
    }
    slot0 = w1;
    slots.assign(static_cast<size_t>(std::min(plan.per_chunk, plan.windows - w1)), WindowResult());
    return true;
  };

  slots.resize(static_cast<size_t>(std::min(plan.per_chunk, plan.windows)));
  walk_windows(models, tokens, opt.eval, plan, opt.stage, progress, on_window, after_chunk);

  const int64_t n_tokens = static_cast<int64_t>(tokens.size());
  r.original = perplexity_result(losses[0], n_tokens, seqlen, opt.stage + ": " + model_label(0));
  for (size_t q = 0; q + 1 < M; ++q) {
    ModelDivergence d;
    d.perplexity =
        perplexity_result(losses[q + 1], n_tokens, seqlen, opt.stage + ": " + model_label(q + 1));
    d.summary = summarize(stats[q]);
    d.stats = std::move(stats[q]);
    r.quantized.push_back(std::move(d));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return r;
}

}  // namespace gptqw
