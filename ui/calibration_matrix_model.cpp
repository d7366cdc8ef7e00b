#include "calibration_matrix_model.h"

#include <QBrush>
#include <QColor>
#include <QFileInfo>
#include <cmath>

#include "format.h"

namespace gptqw::ui {

CalibrationMatrixModel::CalibrationMatrixModel(QObject* parent) : QAbstractTableModel(parent) {}

void CalibrationMatrixModel::setMatrix(std::optional<CalibrationMatrix> m) {
  beginResetModel();
  m_matrix = std::move(m);
  recompute();
  endResetModel();
}

void CalibrationMatrixModel::setQuantity(Quantity q) {
  m_quantity = q;
  recompute();
  if (rowCount() > 0 && columnCount() > 0)
    emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

void CalibrationMatrixModel::recompute() {
  m_values.clear();
  m_best.clear();
  if (!m_matrix) return;
  m_values = m_matrix->values("gptq", m_quantity == Quantity::GptqPerplexity ? "ppl"
                                      : m_quantity == Quantity::GptqKld      ? "kld"
                                                                             : "ln_ratio");
  m_best.assign(m_matrix->texts.size(), std::numeric_limits<double>::infinity());
  for (const auto& row : m_values)
    for (size_t t = 0; t < row.size() && t < m_best.size(); ++t)
      if (std::isfinite(row[t])) m_best[t] = std::min(m_best[t], row[t]);
}

int CalibrationMatrixModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() || !m_matrix ? 0 : int(m_values.size());
}

int CalibrationMatrixModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() || !m_matrix ? 0 : int(m_matrix->texts.size());
}

QVariant CalibrationMatrixModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || size_t(index.row()) >= m_values.size() ||
      size_t(index.column()) >= m_values[size_t(index.row())].size())
    return {};
  const double v = m_values[size_t(index.row())][size_t(index.column())];
  const double best = m_best[size_t(index.column())];
  // The shade: the ratio to the column's best on a log scale, 0 at the best, 1 at twice (a ln
  // ratio can be 0 or negative: measured from the best by its distance instead).
  const double shade = !std::isfinite(v)  ? 0.0
                       : best > 0         ? std::clamp(std::log2(v / best), 0.0, 1.0)
                                          : std::clamp((v - best) / std::max(std::abs(best), 1e-3), 0.0, 1.0);
  switch (role) {
    case Qt::DisplayRole:
      if (!std::isfinite(v)) return tr("—");
      return m_quantity == Quantity::GptqPerplexity ? QString::number(v, 'f', 3) : QString::number(v, 'f', 5);
    case ValueRole: return v;
    case ShadeRole: return shade;
    case Qt::BackgroundRole: {
      // From white through to a strong red; text stays black on it.
      const int g = int(255 - 170 * shade);
      return QBrush(QColor(255, g, g));
    }
    case Qt::ForegroundRole: return QBrush(Qt::black);
    case Qt::TextAlignmentRole: return int(Qt::AlignCenter);
    case Qt::ToolTipRole:
      return tr("Calibrated on %1, evaluated on %2: %3 (%4× the best corpus for this text)")
          .arg(QFileInfo(qstr(m_matrix->calibs[size_t(index.row())])).fileName(),
               QFileInfo(qstr(m_matrix->texts[size_t(index.column())])).fileName())
          .arg(v, 0, 'g', 6)
          .arg(best > 0 ? v / best : 1.0, 0, 'f', 3);
    default: return {};
  }
}

QVariant CalibrationMatrixModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole || !m_matrix) return {};
  const auto& names = orientation == Qt::Horizontal ? m_matrix->texts : m_matrix->calibs;
  if (section < 0 || size_t(section) >= names.size()) return {};
  const QString name = QFileInfo(qstr(names[size_t(section)])).fileName();
  return orientation == Qt::Horizontal ? tr("eval: %1").arg(name) : tr("calib: %1").arg(name);
}

}  // namespace gptqw::ui
