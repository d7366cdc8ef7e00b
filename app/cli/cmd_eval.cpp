// gptqw eval: perplexity of a model on a text file (spec section 5), with its standard error;
// with --against ORIGINAL, the model's quality statistics against the model it came from
// (pipeline/divergence.h), printed in the layout of llama.cpp's `llama-perplexity
// --kl-divergence`, with exllamav3's top-K agreement and KLD by confidence, and this tool's
// damage by position in the window.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "commands.h"
#include "common/error.h"
#include "common/text_file.h"
#include "pipeline/divergence.h"
#include "pipeline/divergence_json.h"
#include "pipeline/perplexity.h"

namespace gptqw::cli {

namespace {

// llama.cpp's percentile lines; `line` formats one ("%s KLD: %10.6f\n"), quartiles adds 75% and
// 25% (its Δp list has them, its KLD list not).
void print_percentiles(const Percentiles& p, const char* line, double scale, bool quartiles) {
  const struct {
    const char* label;
    double value;
    bool quartile;
  } rows[] = {{"Maximum", p.max, false},    {"99.9%  ", p.p99_9, false}, {"99.0%  ", p.p99, false},
              {"95.0%  ", p.p95, false},    {"90.0%  ", p.p90, false},   {"75.0%  ", p.p75, true},
              {"Median ", p.median, false}, {"25.0%  ", p.p25, true},    {"10.0%  ", p.p10, false},
              {" 5.0%  ", p.p5, false},     {" 1.0%  ", p.p1, false},    {" 0.1%  ", p.p0_1, false},
              {"Minimum", p.min, false}};
  for (const auto& r : rows)
    if (quartiles || !r.quartile) std::printf(line, r.label, scale * r.value);
}

void print_summary(const std::string& name, const DivergenceSummary& s) {
  std::printf("\n%s against the original: %lld predictions in %d windows\n", name.c_str(),
              static_cast<long long>(s.tokens), s.windows);
  std::printf("====== Perplexity statistics ======\n");
  std::printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", s.ppl_quant.value,
              s.ppl_quant.se);
  std::printf("Mean PPL(base)                : %10.6f ± %10.6f\n", s.ppl_orig.value, s.ppl_orig.se);
  std::printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * s.nll_correlation);
  std::printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", s.ln_ppl_ratio.value,
              s.ln_ppl_ratio.se);
  std::printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", s.ppl_ratio.value,
              s.ppl_ratio.se);
  std::printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", s.ppl_diff.value, s.ppl_diff.se);
  std::printf("\n====== KL divergence statistics ======\n");
  std::printf("Mean    KLD: %10.6f ± %10.6f\n", s.kld.value, s.kld.se);
  print_percentiles(s.kld_pct, "%s KLD: %10.6f\n", 1, false);
  std::printf("\n====== Token probability statistics ======\n");
  std::printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * s.dp.value, 100 * s.dp.se);
  print_percentiles(s.dp_pct, "%s Δp: %6.3f%%\n", 100, true);
  std::printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * s.dp_rms.value, 100 * s.dp_rms.se);
  std::printf("Same top p: %6.3f ± %5.3f %%\n", 100 * s.top_agreement[0].value,
              100 * s.top_agreement[0].se);
  std::printf("\n====== Top-K agreement (the first K ranks equal) ======\n");
  for (int k = 0; k < kTopRanks; ++k)
    std::printf("K = %d: %6.3f ± %5.3f %%  (%lld)\n", k + 1, 100 * s.top_agreement[k].value,
                100 * s.top_agreement[k].se, static_cast<long long>(s.top_agree_count[k]));
  std::printf("\n====== By position in the window ======\n");
  std::printf(
      "positions        predictions   PPL(base)     PPL(Q)   ln(PPL(Q)/PPL(base))         KLD\n");
  for (const PositionBucketSummary& b : s.by_position) {
    if (b.tokens == 0) continue;
    const std::string range =
        std::to_string(b.first) + (b.end < 0 ? std::string("+") : "-" + std::to_string(b.end - 1));
    std::printf("%-16s %11lld %11.4f %10.4f   %9.6f ± %8.6f   %9.6f ± %8.6f\n", range.c_str(),
                static_cast<long long>(b.tokens), b.est.ppl_orig.value, b.est.ppl_quant.value,
                b.est.ln_ppl_ratio.value, b.est.ln_ppl_ratio.se, b.est.kld.value, b.est.kld.se);
  }
  std::printf("\n====== KLD by the original's top probability ======\n");
  for (const ConfidenceBucketSummary& c : s.by_confidence)
    std::printf("[%.2f, %.2f%s  %5.1f%% of predictions   mean %10.6f   median %10.6f\n", c.low,
                c.high, c.high >= 1 ? "]" : ")", 100 * c.share, c.kld_mean, c.kld_median);
}

// The quantized model (--model) against its original (--against) on the same windows.
int eval_against(const Args& args, const std::string& text, const PerplexityOptions& eval,
                 int threads, bool json) {
  DivergenceOptions opt;
  opt.eval = eval;
  if (args.get("--eval-precision"))
    opt.precision = args.get_double("--eval-precision", 0, kMinPrecision, kMaxPrecision);
  const std::string of = args.get_or("--precision-of", "ln-ppl-ratio");
  if (of == "kld")
    opt.precision_of = PrecisionOf::kld;
  else if (of != "ln-ppl-ratio")
    throw UsageError("--precision-of must be ln-ppl-ratio or kld, got '" + of + "'");
  const std::string against = args.require("--against");
  Model quant = open_model(args);
  Model original = load_model(against);
  const std::string s = read_text_file(text);
  const std::vector<int32_t> ids = original.tokenizer->encode(s, true);
  // Both models must read the same tokens, or the comparison means nothing.
  if (quant.tokenizer && quant.tokenizer->encode(s, true) != ids)
    throw ConfigError(file_msg(quant.path, "its tokenizer reads " + text + " differently from " +
                                               against + "'s: the models cannot be compared"));
  if (perplexity_windows(static_cast<int64_t>(ids.size()), eval) == 0)
    throw ConfigError(file_msg(text, "has " + std::to_string(ids.size()) +
                                         " tokens, fewer than one window of seqlen " +
                                         std::to_string(eval.seqlen)));
  TerminalProgress bar(json || args.flag("--quiet"));
  const WeightSource* models[] = {quant.weights.get()};
  const DivergenceResult r = compare_models(*original.weights, models, ids, opt, bar.callback());
  bar.finish();
  const ModelDivergence& q = r.quantized[0];
  const PrecisionCheck check = precision_check(q.stats, opt.precision_of);
  const char* of_name = opt.precision_of == PrecisionOf::kld ? "mean KLD" : "ln(PPL(Q)/PPL(base))";
  if (json) {
    nlohmann::json j = to_json(r, {quant.path.string()});
    j["model"] = quant.path.string();
    j["against"] = against;
    j["text"] = text;
    j["threads"] = threads;
    if (opt.precision)
      j["precision"] = {
          {"of", of}, {"target", *opt.precision}, {"relative_half_width", check.relative}};
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s against %s on %s\n", quant.path.c_str(), against.c_str(), text.c_str());
  std::printf("%d windows x %d tokens of %lld (%.2f s, %d threads)\n", r.windows, r.original.seqlen,
              static_cast<long long>(r.original.tokens), r.seconds, threads);
  if (opt.precision) {
    if (r.stopped_early)
      std::printf(
          "stopped early after %d of %d windows: the 95%% interval of %s is within "
          "±%.4g of its value (relative half-width %.4g)\n",
          r.windows, r.windows_available, of_name, *opt.precision, check.relative);
    else
      std::printf(
          "all %d windows evaluated: the 95%% interval of %s has a relative half-width "
          "of %.4g, not below %.4g\n",
          r.windows, of_name, check.relative, *opt.precision);
  }
  std::printf("perplexity: original %.4f ± %.4f, quantized %.4f ± %.4f\n", r.original.ppl,
              r.original.ppl_se, q.perplexity.ppl, q.perplexity.ppl_se);
  print_summary(quant.path.filename().string(), q.summary);
  return 0;
}

}  // namespace

int cmd_eval(const std::vector<std::string>& words) {
  Args args(words, {"--json", "--quiet"},
            {"--model", "--tokenizer", "--text", "--seqlen", "--max-windows", "--threads",
             "--against", "--eval-precision", "--precision-of"});
  std::string text = args.require("--text");
  PerplexityOptions opt;  // the core's defaults for what is not given
  opt.seqlen = static_cast<int>(args.get_int("--seqlen", opt.seqlen, 2, kMaxSeqlen));
  opt.max_windows = static_cast<int>(args.get_int("--max-windows", opt.max_windows, 0, kMaxWindows));
  int threads = apply_threads(args);
  bool json = args.flag("--json");
  if (args.get("--against")) return eval_against(args, text, opt, threads, json);
  if (args.get("--eval-precision") || args.get("--precision-of"))
    throw UsageError(
        "--eval-precision and --precision-of compare with an original: give --against ORIGINAL");
  Model model = open_model(args);
  TerminalProgress bar(json || args.flag("--quiet"));
  PerplexityResult r = perplexity_of_file(model, text, opt, bar.callback());
  bar.finish();
  if (json) {
    nlohmann::json j = {
        {"model", model.path.string()}, {"text", text},           {"ppl", r.ppl},
        {"ppl_se", r.ppl_se},           {"nll_mean", r.nll_mean}, {"nll_se", r.nll_se},
        {"tokens", r.tokens},           {"windows", r.windows},   {"seqlen", r.seqlen},
        {"seconds", r.seconds},         {"threads", threads}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f ± %.4f  (%d windows x %d tokens of %lld, %.2f s, %d threads)\n",
                r.ppl, r.ppl_se, r.windows, r.seqlen, static_cast<long long>(r.tokens), r.seconds,
                threads);
  }
  return 0;
}

}  // namespace gptqw::cli
