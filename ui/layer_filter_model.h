// The proxy between the layers table model and its view: sorts numerically on the model's raw
// values and shows only the chosen module kinds and layer names.
#pragma once

#include <QSortFilterProxyModel>
#include <set>

#include "model/weights.h"

namespace gptqw::ui {

class LayerFilterModel : public QSortFilterProxyModel {
  Q_OBJECT
 public:
  explicit LayerFilterModel(QObject* parent = nullptr);

  // The module kinds shown; empty shows every kind.
  void setKinds(const std::set<LinearKind>& kinds);
  std::set<LinearKind> kinds() const { return m_kinds; }

  // Case-insensitive substring of the layer's full name ("layers.3.mlp"); empty shows all.
  void setNamePattern(const QString& text);
  QString namePattern() const { return m_pattern; }

 protected:
  bool filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const override;
  // Numeric on LayerTableModel::SortRole, and cells without a value (a method that did not run)
  // sort last in both orders, so that flipping the order never buries the real values.
  bool lessThan(const QModelIndex& left, const QModelIndex& right) const override;

 private:
  std::set<LinearKind> m_kinds;
  QString m_pattern;
};

}  // namespace gptqw::ui
