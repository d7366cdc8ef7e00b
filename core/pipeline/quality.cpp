#include "pipeline/quality.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "pipeline/divergence_json.h"
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

nlohmann::json to_json(const TextQuality& q) {
  nlohmann::json models = nlohmann::json::object();
  for (const QuantizedQuality& m : q.quantized)
    models[m.model] = {{"ppl", to_json(m.ppl)}, {"divergence", to_json(m.vs_original)}};
  nlohmann::json j = {{"text", q.text},
                      {"seqlen", q.seqlen},
                      {"windows", q.windows},
                      {"windows_available", q.windows_available},
                      {"tokens", q.tokens},
                      {"stopped_early", q.stopped_early},
                      {"seconds", q.seconds},
                      {"ppl_original", to_json(q.ppl_original)},
                      {"models", std::move(models)}};
  if (q.precision) j["precision"] = *q.precision;
  return j;
}

TextQuality text_quality_from_json(const JsonFields& f) {
  TextQuality q;
  q.text = f.string("text");
  q.seqlen = f.integer<int>("seqlen", 0);
  q.windows = f.integer<int>("windows", 0);
  q.windows_available = f.integer<int>("windows_available", 0);
  q.tokens = f.integer<int64_t>("tokens", 0);
  q.stopped_early = f.boolean("stopped_early");
  q.seconds = f.real("seconds");
  if (f.has("precision")) q.precision = f.real("precision");
  q.ppl_original = estimate_from_json(f.object("ppl_original"));
  // The models in the order written (nlohmann's object keeps its keys sorted: rtn, gptq read
  // back as gptq, rtn would reorder the window's rows; the order of the methods is fixed).
  const JsonFields models = f.object("models");
  for (const char* name : {"rtn", "gptq"}) {
    if (!models.has(name)) continue;
    const JsonFields m = models.object(name, std::string("models.") + name + ".");
    q.quantized.push_back({name, estimate_from_json(m.object("ppl")), summary_from_json(m.object("divergence"))});
  }
  return q;
}

}  // namespace gptqw
