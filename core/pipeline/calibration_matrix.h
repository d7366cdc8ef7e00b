// Calibration sensitivity: the same model and settings quantized with each of several
// calibration corpora, each result evaluated on each of several texts. A corpus unlike what the
// model will read may protect the wrong directions; the matrix shows it as perplexity and KL
// divergence that rise off its diagonal (calibrated on code, evaluated on prose...).
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "common/progress.h"
#include "model/model.h"
#include "pipeline/quality.h"

namespace gptqw {

struct Report;
struct RunSpec;

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

// Runs `base` (its settings, windows counts and evaluation options; base.eval_files are the
// texts) once per corpus. Progress: "calibration i/n: <stage>", each corpus an equal share.
// `first` (optional) receives the first corpus's whole report (layers, memory, timing).
CalibrationMatrix calibration_matrix(const Model& model, const RunSpec& base,
                                     const std::vector<std::filesystem::path>& calibs,
                                     const ProgressFn& progress = {}, Report* first = nullptr);

nlohmann::json to_json(const CalibrationMatrix& m);
class JsonFields;
CalibrationMatrix calibration_matrix_from_json(const JsonFields& f);

}  // namespace gptqw
