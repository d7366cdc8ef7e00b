// The quality statistics as JSON, for `gptqw eval --against --json` and for the report: one
// layout, written once. An Estimate is {"value": v, "se": s}; percentiles are named as in
// Percentiles ("p99_9", "median", ...); a position bucket's "end" is null for the open one.
#pragma once

#include <nlohmann/json.hpp>

#include "common/json_fields.h"
#include "pipeline/divergence.h"

namespace gptqw {

nlohmann::json to_json(const Estimate& e);
nlohmann::json to_json(const Percentiles& p);
nlohmann::json to_json(const DivergenceSummary& s);
// The whole evaluation: windows (evaluated, available, stopped_early), the original's and each
// quantized model's perplexity with its standard error, each one's summary under `names`
// (names.size() == r.quantized.size()).
nlohmann::json to_json(const DivergenceResult& r, const std::vector<std::string>& names);

// Read back (a report's): every field checked, a problem names the file and the field.
Estimate estimate_from_json(const JsonFields& f);
Percentiles percentiles_from_json(const JsonFields& f);
DivergenceSummary summary_from_json(const JsonFields& f);

}  // namespace gptqw
