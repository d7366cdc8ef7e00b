// The Quality view: how the quantized models behave against the original on each evaluation
// text. A table of every text and model (perplexity ±, ln PPL ratio, KLD with its percentiles,
// Δp, same top-1 / top-5), and for the text chosen, the KL divergence's distribution
// (percentiles, log scale) and the damage by position within the window. A report of
// `gptqw calibration-matrix` adds the calibration heat map: corpora x texts.
#pragma once

#include <QWidget>

#include "pipeline/report.h"

class QComboBox;
class QLabel;
class QTableView;

namespace gptqw::ui {

class CalibrationMatrixModel;
class QualityTableModel;
class RunSession;
namespace plots {
class GroupedBarChart;
}

class QualityPage : public QWidget {
  Q_OBJECT
 public:
  explicit QualityPage(RunSession* session, QWidget* parent = nullptr);

  QualityTableModel* model() const { return m_model; }
  CalibrationMatrixModel* matrix() const { return m_matrix; }
  plots::GroupedBarChart* distributionChart() const { return m_distribution; }
  plots::GroupedBarChart* positionChart() const { return m_position; }
  void showText(int index);  // the charts' text, an index into the report's quality

 private:
  void setQuality(const std::vector<TextQuality>& quality);

  QualityTableModel* m_model;
  CalibrationMatrixModel* m_matrix;
  QWidget* m_matrix_box;
  QTableView* m_table;
  QComboBox* m_text;
  QLabel* m_note;
  plots::GroupedBarChart *m_distribution, *m_position;
};

}  // namespace gptqw::ui
