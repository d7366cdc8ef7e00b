// Calibration sensitivity: the same model and settings quantized with each of several
// calibration corpora, each result evaluated on each of several texts (run.h's
// calibration_matrix() makes one; the report keeps it). A corpus unlike what the
// model will read may protect the wrong directions; the matrix shows it as perplexity and KL
// divergence that rise off its diagonal (calibrated on code, evaluated on prose...).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "pipeline/quality.h"

namespace gptqw {

struct CalibrationMatrix {
  std::vector<std::string> calibs;  // the corpora, as given
  std::vector<std::string> texts;   // the evaluation texts, as given
  // cells[c][t]: corpus c's RTN and GPTQ against the original on text t.
  std::vector<std::vector<TextQuality>> cells;
  double seconds = 0;

  // A quantity of one method in every cell, [calib][text]: "ppl" (the quantized model's
  // perplexity), "kld" (mean KLD), "ln_ratio" (ln PPL ratio); nan where the method did not run.
  std::vector<std::vector<double>> values(const std::string& method, const std::string& quantity) const;
};

nlohmann::json to_json(const CalibrationMatrix& m);
class JsonFields;
CalibrationMatrix calibration_matrix_from_json(const JsonFields& f);

}  // namespace gptqw
