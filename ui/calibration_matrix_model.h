// The calibration heat map: one row per calibration corpus, one column per evaluation text, each
// cell GPTQ's perplexity, mean KL divergence or ln PPL ratio after calibrating on that corpus
// (RTN uses no calibration: its row would be the same for every corpus). The cell's
// colour says how much worse it is than the best corpus for that text (white: the best; the
// deeper the red, the worse), so an unrepresentative corpus stands out as a red row.
#pragma once

#include <QAbstractTableModel>
#include <optional>

#include "pipeline/calibration_matrix.h"

namespace gptqw::ui {

class CalibrationMatrixModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum class Quantity { GptqPerplexity, GptqKld, GptqLnRatio };
  // SortRole: the raw value of a cell; ShadeRole: its shade, 0 (the column's best) to 1 (twice
  // as bad or worse, in ratio to the best).
  static constexpr int ValueRole = Qt::UserRole + 1;
  static constexpr int ShadeRole = Qt::UserRole + 2;

  explicit CalibrationMatrixModel(QObject* parent = nullptr);

  void setMatrix(std::optional<CalibrationMatrix> m);
  void setQuantity(Quantity q);
  bool empty() const { return !m_matrix; }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  void recompute();

  std::optional<CalibrationMatrix> m_matrix;
  Quantity m_quantity = Quantity::GptqKld;
  std::vector<std::vector<double>> m_values;
  std::vector<double> m_best;  // per column
};

}  // namespace gptqw::ui
