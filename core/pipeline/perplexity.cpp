#include "pipeline/perplexity.h"

#include <chrono>

#include "common/error.h"
#include "common/text_file.h"
#include "pipeline/window_walk.h"

namespace gptqw {

int64_t perplexity_windows(int64_t tokens, const PerplexityOptions& opt) {
  if (opt.seqlen < 2) return 0;
  const int64_t n = tokens / opt.seqlen;
  return opt.max_windows > 0 ? std::min<int64_t>(n, opt.max_windows) : n;
}

PerplexityResult perplexity(const WeightSource& weights, std::span<const int32_t> tokens,
                            const PerplexityOptions& opt, const ProgressFn& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const WindowPlan plan = plan_windows(weights.config(), static_cast<int64_t>(tokens.size()), opt);
  std::vector<WindowLoss> losses(plan.windows);
  const WeightSource* models[] = {&weights};
  walk_windows(models, tokens, opt, plan, "perplexity", progress,
               [&](int64_t w, std::span<const int32_t> ids, const std::vector<Matrix>& h,
                   const std::vector<const Matrix*>& heads) {
                 const Eigen::Index n = h[0].rows() - 1;
                 Matrix logits;
                 for (Eigen::Index t0 = 0; t0 < n; t0 += kLogitRows) {
                   const Eigen::Index rows = std::min(kLogitRows, n - t0);
                   logit_rows(h[0], *heads[0], t0, rows, logits);
                   for (Eigen::Index t = 0; t < rows; ++t)
                     losses[w].add(row_nll(logits.row(t).data(), logits.cols(), ids[t0 + t + 1]));
                 }
               });
  PerplexityResult r =
      perplexity_result(losses, static_cast<int64_t>(tokens.size()), opt.seqlen, "perplexity");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
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
