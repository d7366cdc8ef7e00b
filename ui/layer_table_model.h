// The layers table's model: one row per quantized linear layer (a LayerReport), one column per
// measurement. Rows arrive all at once (a loaded report) or one by one while a run streams them.
// Display text is rounded for reading; SortRole carries the raw number so that sorting is
// numeric and the CSV export keeps full precision.
#pragma once

#include <QAbstractTableModel>
#include <vector>

#include "csv_export.h"
#include "pipeline/quantize.h"

namespace gptqw::ui {

class LayerTableModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column {
    Block,
    Module,
    Shape,
    GptqError,
    RtnError,
    Ratio,
    GptqLoss,
    Damping,
    HessMin,
    HessMedian,
    HessMax,
    Seconds,
    BytesFp16,
    BytesQuantized,
    ColumnCount
  };

  // SortRole: the raw value (int, double, float or unsigned), invalid where there is none (a
  // method that did not run). KindRole: the row's LinearKind as int, on every column.
  // ExportRole: what the CSV export writes where SortRole would not fit (module name, shape);
  // on the horizontal header, the CSV column name. NameRole: the layer's full module name
  // ("model.layers.3.mlp.down_proj"), on every column, for filtering.
  static constexpr int SortRole = kCsvSortRole;
  static constexpr int KindRole = Qt::UserRole + 1;
  static constexpr int ExportRole = kCsvExportRole;
  static constexpr int NameRole = Qt::UserRole + 3;

  explicit LayerTableModel(QObject* parent = nullptr);

  void setLayers(std::vector<LayerReport> layers);
  void appendLayer(const LayerReport& layer);
  void clear();
  // Throws std::out_of_range for a row that does not exist.
  const LayerReport& layer(int row) const;
  const std::vector<LayerReport>& layers() const { return m_layers; }

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation,
                      int role = Qt::DisplayRole) const override;

 private:
  QVariant display(const LayerReport& r, int column) const;
  QVariant sortValue(const LayerReport& r, int column) const;
  QString toolTip(const LayerReport& r, int column) const;

  std::vector<LayerReport> m_layers;
};

}  // namespace gptqw::ui
