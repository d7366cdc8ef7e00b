#include "pipeline/quality.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "pipeline/report.h"

namespace gptqw {

const QuantizedQuality* TextQuality::find(const std::string& model) const {
  for (const QuantizedQuality& q : quantized)
    if (q.model == model) return &q;
  return nullptr;
}

TextQuality evaluate_quality(const WeightSource& original, const std::vector<const WeightSource*>& quantized,
                             const std::vector<std::string>& names, const std::string& text,
                             std::span<const int32_t> tokens, const DivergenceOptions& options,
                             const ProgressFn& progress) {
  if (names.size() != quantized.size())
    throw ConfigError("evaluate_quality: " + std::to_string(quantized.size()) + " models, " +
                      std::to_string(names.size()) + " names");
  const DivergenceResult d = compare_models(original, quantized, tokens, options, progress);
  TextQuality q;
  q.text = text;
  q.seqlen = options.eval.seqlen;
  q.windows = d.windows;
  q.windows_available = d.windows_available;
  q.tokens = static_cast<int64_t>(tokens.size());
  q.stopped_early = d.stopped_early;
  q.precision = options.precision;
  q.seconds = d.seconds;
  q.ppl_original = {d.original.ppl, d.original.ppl_se};
  for (size_t i = 0; i < d.quantized.size(); ++i) {
    const PerplexityResult& p = d.quantized[i].perplexity;
    q.quantized.push_back({names[i], {p.ppl, p.ppl_se}, d.quantized[i].summary});
  }
  return q;
}

PerplexitySummary perplexity_summary(const TextQuality& q) {
  PerplexitySummary p;
  p.text = q.text;
  p.seqlen = q.seqlen;
  p.windows = q.windows;
  p.tokens = q.tokens;
  p.seconds = q.seconds;
  p.original = q.ppl_original.value;
  p.original_se = q.ppl_original.se;
  if (const QuantizedQuality* r = q.find("rtn")) p.rtn = r->ppl.value, p.rtn_se = r->ppl.se;
  if (const QuantizedQuality* g = q.find("gptq")) p.gptq = g->ppl.value, p.gptq_se = g->ppl.se;
  return p;
}

namespace {

nlohmann::json est(const Estimate& e) { return {{"value", e.value}, {"se", e.se}}; }

nlohmann::json pct(const Percentiles& p) {
  return {{"min", p.min},   {"p0.1", p.p0_1}, {"p1", p.p1},   {"p5", p.p5},     {"p10", p.p10},
          {"p25", p.p25},   {"median", p.median}, {"p75", p.p75}, {"p90", p.p90}, {"p95", p.p95},
          {"p99", p.p99},   {"p99.9", p.p99_9},   {"max", p.max}};
}

}  // namespace

nlohmann::json to_json(const DivergenceSummary& s) {
  nlohmann::json top = nlohmann::json::array();
  for (size_t k = 0; k < s.top_agreement.size(); ++k)
    top.push_back({{"k", k + 1}, {"share", est(s.top_agreement[k])}, {"count", s.top_agree_count[k]}});
  nlohmann::json by_position = nlohmann::json::array();
  for (const PositionBucketSummary& b : s.by_position)
    by_position.push_back({{"first", b.first},
                           {"end", b.end},
                           {"tokens", b.tokens},
                           {"ppl_original", est(b.est.ppl_orig)},
                           {"ppl", est(b.est.ppl_quant)},
                           {"ln_ppl_ratio", est(b.est.ln_ppl_ratio)},
                           {"kld", est(b.est.kld)}});
  nlohmann::json by_confidence = nlohmann::json::array();
  for (const ConfidenceBucketSummary& b : s.by_confidence)
    by_confidence.push_back({{"low", b.low},
                             {"high", b.high},
                             {"tokens", b.tokens},
                             {"share", b.share},
                             {"kld_mean", b.kld_mean},
                             {"kld_median", b.kld_median}});
  return {{"tokens", s.tokens},
          {"windows", s.windows},
          {"ppl", est(s.ppl_quant)},
          {"ppl_original", est(s.ppl_orig)},
          {"ln_ppl_ratio", est(s.ln_ppl_ratio)},
          {"ppl_ratio", est(s.ppl_ratio)},
          {"ppl_difference", est(s.ppl_diff)},
          {"nll_correlation", s.nll_correlation},
          {"kld", est(s.kld)},
          {"kld_percentiles", pct(s.kld_pct)},
          {"delta_p", est(s.dp)},
          {"delta_p_rms", est(s.dp_rms)},
          {"delta_p_percentiles", pct(s.dp_pct)},
          {"top_agreement", std::move(top)},
          {"by_position", std::move(by_position)},
          {"by_confidence", std::move(by_confidence)}};
}

nlohmann::json to_json(const TextQuality& q) {
  nlohmann::json models = nlohmann::json::object();
  for (const QuantizedQuality& m : q.quantized) {
    models[m.model] = to_json(m.vs_original);
    models[m.model]["ppl"] = est(m.ppl);
  }
  nlohmann::json j = {{"text", q.text},
                      {"seqlen", q.seqlen},
                      {"windows", q.windows},
                      {"windows_available", q.windows_available},
                      {"tokens", q.tokens},
                      {"stopped_early", q.stopped_early},
                      {"seconds", q.seconds},
                      {"ppl_original", est(q.ppl_original)},
                      {"models", std::move(models)}};
  if (q.precision) j["precision"] = *q.precision;
  return j;
}

}  // namespace gptqw
