#include "pipeline/divergence_json.h"

namespace gptqw {

using nlohmann::json;

json to_json(const Estimate& e) {
  return {{"value", e.value}, {"se", e.se}};
}

json to_json(const Percentiles& p) {
  return {{"min", p.min}, {"p0_1", p.p0_1},     {"p1", p.p1},   {"p5", p.p5},   {"p10", p.p10},
          {"p25", p.p25}, {"median", p.median}, {"p75", p.p75}, {"p90", p.p90}, {"p95", p.p95},
          {"p99", p.p99}, {"p99_9", p.p99_9},   {"max", p.max}};
}

json to_json(const DivergenceSummary& s) {
  json top = json::array();
  for (int k = 0; k < kTopRanks; ++k)
    top.push_back(
        {{"k", k + 1}, {"count", s.top_agree_count[k]}, {"share", to_json(s.top_agreement[k])}});
  json positions = json::array();
  for (const PositionBucketSummary& b : s.by_position)
    positions.push_back({{"first", b.first},
                         {"end", b.end < 0 ? json(nullptr) : json(b.end)},
                         {"tokens", b.tokens},
                         {"ppl_orig", to_json(b.est.ppl_orig)},
                         {"ppl_quant", to_json(b.est.ppl_quant)},
                         {"ln_ppl_ratio", to_json(b.est.ln_ppl_ratio)},
                         {"kld", to_json(b.est.kld)}});
  json confidence = json::array();
  for (const ConfidenceBucketSummary& c : s.by_confidence)
    confidence.push_back({{"low", c.low},
                          {"high", c.high},
                          {"tokens", c.tokens},
                          {"share", c.share},
                          {"kld_mean", c.kld_mean},
                          {"kld_median", c.kld_median}});
  return {{"tokens", s.tokens},
          {"windows", s.windows},
          {"ppl_orig", to_json(s.ppl_orig)},
          {"ppl_quant", to_json(s.ppl_quant)},
          {"ln_ppl_ratio", to_json(s.ln_ppl_ratio)},
          {"ppl_ratio", to_json(s.ppl_ratio)},
          {"ppl_diff", to_json(s.ppl_diff)},
          {"nll_correlation", s.nll_correlation},
          {"kld", to_json(s.kld)},
          {"kld_percentiles", to_json(s.kld_pct)},
          {"dp", to_json(s.dp)},
          {"dp_rms", to_json(s.dp_rms)},
          {"dp_percentiles", to_json(s.dp_pct)},
          {"top_agreement", top},
          {"by_position", positions},
          {"by_confidence", confidence}};
}

namespace {

json perplexity_json(const PerplexityResult& p) {
  return {{"ppl", p.ppl}, {"ppl_se", p.ppl_se}, {"nll_mean", p.nll_mean}, {"nll_se", p.nll_se}};
}

}  // namespace

json to_json(const DivergenceResult& r, const std::vector<std::string>& names) {
  json models = json::array();
  for (size_t i = 0; i < r.quantized.size(); ++i)
    models.push_back({{"name", i < names.size() ? names[i] : "quantized " + std::to_string(i + 1)},
                      {"perplexity", perplexity_json(r.quantized[i].perplexity)},
                      {"divergence", to_json(r.quantized[i].summary)}});
  return {{"windows", r.windows},
          {"windows_available", r.windows_available},
          {"stopped_early", r.stopped_early},
          {"seqlen", r.original.seqlen},
          {"tokens", r.original.tokens},
          {"seconds", r.seconds},
          {"original", {{"perplexity", perplexity_json(r.original)}}},
          {"quantized", models}};
}

Estimate estimate_from_json(const JsonFields& f) { return {f.real("value"), f.real("se")}; }

Percentiles percentiles_from_json(const JsonFields& f) {
  return {f.real("min"),   f.real("p0_1"), f.real("p1"),  f.real("p5"),  f.real("p10"),
          f.real("p25"),   f.real("median"), f.real("p75"), f.real("p90"), f.real("p95"),
          f.real("p99"),   f.real("p99_9"), f.real("max")};
}

DivergenceSummary summary_from_json(const JsonFields& f) {
  DivergenceSummary s;
  s.tokens = f.integer<int64_t>("tokens", 0);
  s.windows = f.integer<int>("windows", 0);
  s.ppl_orig = estimate_from_json(f.object("ppl_orig"));
  s.ppl_quant = estimate_from_json(f.object("ppl_quant"));
  s.ln_ppl_ratio = estimate_from_json(f.object("ln_ppl_ratio"));
  s.ppl_ratio = estimate_from_json(f.object("ppl_ratio"));
  s.ppl_diff = estimate_from_json(f.object("ppl_diff"));
  s.nll_correlation = f.real("nll_correlation");
  s.kld = estimate_from_json(f.object("kld"));
  s.kld_pct = percentiles_from_json(f.object("kld_percentiles"));
  s.dp = estimate_from_json(f.object("dp"));
  s.dp_rms = estimate_from_json(f.object("dp_rms"));
  s.dp_pct = percentiles_from_json(f.object("dp_percentiles"));
  const std::vector<JsonFields> top = f.objects("top_agreement");
  if (top.size() != size_t(kTopRanks))
    f.fail("top_agreement", "must list " + std::to_string(kTopRanks) + " ranks, got " + std::to_string(top.size()));
  for (int k = 0; k < kTopRanks; ++k) {
    s.top_agreement[size_t(k)] = estimate_from_json(top[size_t(k)].object("share"));
    s.top_agree_count[size_t(k)] = top[size_t(k)].integer<int64_t>("count", 0);
  }
  for (const JsonFields& b : f.objects("by_position"))
    s.by_position.push_back({b.integer<int>("first", 0), b.integer_or<int>("end", -1, -1),
                             b.integer<int64_t>("tokens", 0),
                             {estimate_from_json(b.object("ppl_orig")), estimate_from_json(b.object("ppl_quant")),
                              estimate_from_json(b.object("ln_ppl_ratio")), estimate_from_json(b.object("kld"))}});
  for (const JsonFields& c : f.objects("by_confidence"))
    s.by_confidence.push_back({c.real("low"), c.real("high"), c.integer<int64_t>("tokens", 0), c.real("share"),
                               c.real("kld_mean"), c.real("kld_median")});
  return s;
}

}  // namespace gptqw
