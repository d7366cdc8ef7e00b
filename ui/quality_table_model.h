// The Quality view's table: for every evaluation text, the original's perplexity and, for each
// quantized model, its perplexity and its comparison with the original on the same windows
// (ln PPL ratio, KLD with its percentiles, Δp, same top-1 and top-5), each "±" its standard
// error. Rows change as a whole: a finished run or an opened report replaces them.
#pragma once

#include <QAbstractTableModel>
#include <vector>

#include "pipeline/quality.h"

namespace gptqw::ui {

class QualityTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column {
    Text,
    Model,
    Perplexity,
    LnRatio,
    KldMean,
    KldMedian,
    KldP99,
    KldMax,
    DeltaP,
    SameTop1,
    SameTop5,
    Windows,
    ColumnCount
  };
  // SortRole: the raw value of the cell (its estimate's value), for sorting and tests.
  static constexpr int SortRole = Qt::UserRole + 1;

  explicit QualityTableModel(QObject* parent = nullptr);

  void setQuality(std::vector<TextQuality> quality);
  void clear() { setQuality({}); }
  const std::vector<TextQuality>& quality() const { return m_quality; }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  struct Row {
    size_t text;
    int model;  // -1: the original
  };
  std::vector<TextQuality> m_quality;
  std::vector<Row> m_rows;
};

}  // namespace gptqw::ui
