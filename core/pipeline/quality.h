// What a run's evaluation records per text: the original's perplexity with its standard error
// and, for each quantized model (RTN, GPTQ), its perplexity and its whole comparison with the
// original on the same windows (pipeline/divergence.h: KLD, Δp, top-K agreement, ln PPL ratio,
// by position and by confidence). The report holds one per evaluation text.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/divergence.h"

namespace gptqw {

struct QuantizedQuality {
  std::string model;  // "rtn", "gptq", or a checkpoint's name
  // perplexity()'s value for these windows (the same bits as a run of the model alone), ± its
  // standard error; vs_original's ppl_quant is the same quantity summed position by position.
  Estimate ppl;
  DivergenceSummary vs_original;
};

struct TextQuality {
  std::string text;  // the file as given
  int seqlen = 0;
  int windows = 0;            // evaluated
  int windows_available = 0;  // of the text at this seqlen and window limit
  int64_t tokens = 0;         // of the whole text
  bool stopped_early = false;  // --eval-precision was reached after `windows` windows
  std::optional<double> precision;
  double seconds = 0;
  Estimate ppl_original;
  std::vector<QuantizedQuality> quantized;

  const QuantizedQuality* find(const std::string& model) const;
};

// The evaluation of `quantized` (named by `names`) against `original` on one tokenized text.
TextQuality evaluate_quality(const WeightSource& original, const std::vector<const WeightSource*>& quantized,
                             const std::vector<std::string>& names, const std::string& text,
                             std::span<const int32_t> tokens, const DivergenceOptions& options,
                             const ProgressFn& progress = {});

// The chart's bars of one evaluated text: the original's, RTN's and GPTQ's perplexity with ±
// (PerplexitySummary is the report's, pipeline/report.h).
struct PerplexitySummary;
PerplexitySummary perplexity_summary(const TextQuality& q);

// The report's layout of one text (the summaries as divergence_json.h writes them), and back.
nlohmann::json to_json(const TextQuality& q);
class JsonFields;
TextQuality text_quality_from_json(const JsonFields& f);

}  // namespace gptqw
