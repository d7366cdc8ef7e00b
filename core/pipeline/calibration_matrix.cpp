#include "pipeline/calibration_matrix.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/json_fields.h"

namespace gptqw {

std::vector<std::vector<double>> CalibrationMatrix::values(const std::string& method,
                                                           const std::string& quantity) const {
  std::vector<std::vector<double>> out;
  for (const auto& row : cells) {
    std::vector<double>& r = out.emplace_back();
    for (const TextQuality& q : row) {
      const QuantizedQuality* m = q.find(method);
      double v = std::numeric_limits<double>::quiet_NaN();
      if (m && quantity == "ppl") v = m->ppl.value;
      else if (m && quantity == "kld") v = m->vs_original.kld.value;
      else if (m && quantity == "ln_ratio") v = m->vs_original.ln_ppl_ratio.value;
      r.push_back(v);
    }
  }
  return out;
}

nlohmann::json to_json(const CalibrationMatrix& m) {
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& row : m.cells) {
    nlohmann::json r = nlohmann::json::array();
    for (const TextQuality& q : row) r.push_back(to_json(q));
    cells.push_back(std::move(r));
  }
  return {{"calibs", m.calibs}, {"texts", m.texts}, {"cells", std::move(cells)}, {"seconds", m.seconds}};
}

CalibrationMatrix calibration_matrix_from_json(const JsonFields& f) {
  CalibrationMatrix m;
  m.calibs = f.strings("calibs");
  m.texts = f.strings("texts");
  m.seconds = f.real("seconds");
  const nlohmann::json* cells = f.find("cells");
  if (!cells || !cells->is_array() || cells->size() != m.calibs.size())
    f.fail("cells", "must hold one row per calibration corpus (" + std::to_string(m.calibs.size()) + ")");
  for (size_t c = 0; c < cells->size(); ++c) {
    const nlohmann::json& row = (*cells)[c];
    if (!row.is_array() || row.size() != m.texts.size())
      f.fail("cells", "row " + std::to_string(c) + " must hold one entry per text (" + std::to_string(m.texts.size()) + ")");
    std::vector<TextQuality>& out = m.cells.emplace_back();
    for (size_t t = 0; t < row.size(); ++t) {
      if (!row[t].is_object()) f.fail("cells", "entry " + std::to_string(c) + "," + std::to_string(t) + " must be an object");
      out.push_back(text_quality_from_json(f.nested(row[t], "cells." + std::to_string(c) + "." + std::to_string(t) + ".")));
    }
  }
  return m;
}

}  // namespace gptqw
