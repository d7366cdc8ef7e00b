#include "layer_filter_model.h"

#include <cmath>

#include "layer_table_model.h"

namespace gptqw::ui {

namespace {

// No value to order by: invalid, or NaN (which compares unordered with everything and would
// break the sort's strict weak ordering).
bool missing(const QVariant& v) {
  if (!v.isValid()) return true;
  const int type = v.metaType().id();
  if (type == QMetaType::Double || type == QMetaType::Float) return std::isnan(v.toDouble());
  return false;
}

}  // namespace

LayerFilterModel::LayerFilterModel(QObject* parent) : QSortFilterProxyModel(parent) {
  setSortRole(LayerTableModel::SortRole);
}

void LayerFilterModel::setKinds(const std::set<LinearKind>& kinds) {
  if (kinds == m_kinds) return;
  m_kinds = kinds;
  invalidateRowsFilter();
}

void LayerFilterModel::setNamePattern(const QString& text) {
  if (text == m_pattern) return;
  m_pattern = text;
  invalidateRowsFilter();
}

bool LayerFilterModel::filterAcceptsRow(int sourceRow, const QModelIndex& sourceParent) const {
  const QModelIndex index = sourceModel()->index(sourceRow, 0, sourceParent);
  if (!m_kinds.empty()) {
    const QVariant kind = index.data(LayerTableModel::KindRole);
    if (!kind.isValid() || !m_kinds.count(static_cast<LinearKind>(kind.toInt()))) return false;
  }
  if (!m_pattern.isEmpty()) {
    const QString name = index.data(LayerTableModel::NameRole).toString();
    if (!name.contains(m_pattern, Qt::CaseInsensitive)) return false;
  }
  return true;
}

bool LayerFilterModel::lessThan(const QModelIndex& left, const QModelIndex& right) const {
  const QVariant l = left.data(sortRole()), r = right.data(sortRole());
  const bool lMissing = missing(l), rMissing = missing(r);
  // A descending sort calls lessThan(right, left), so "missing is last" flips with the order.
  if (lMissing || rMissing) {
    if (lMissing == rMissing) return false;
    return lMissing == (sortOrder() == Qt::DescendingOrder);
  }
  return QVariant::compare(l, r) == QPartialOrdering::Less;
}

}  // namespace gptqw::ui
