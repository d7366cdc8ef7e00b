#include "layer_table_model.h"

#include <QBrush>
#include <QColor>
#include <array>

#include "format.h"
#include "model/weights.h"

namespace gptqw::ui {

namespace {

// A value of -1 in a LayerReport means "that method did not run" (see pipeline/quantize.h).
bool ran(double value) {
  return value >= 0;
}

bool gptqRan(const LayerReport& r) {
  return ran(r.gptq_rel_error);
}

bool hasRatio(const LayerReport& r) {
  return ran(r.gptq_rel_error) && ran(r.rtn_rel_error) && r.rtn_rel_error > 0;
}

// GPTQ is supposed to beat round-to-nearest on its own calibration inputs; a layer where it
// does not (or where it gave up and used RTN) is what the user should look at first.
bool gptqWorse(const LayerReport& r) {
  return ran(r.gptq_rel_error) && ran(r.rtn_rel_error) && r.gptq_rel_error > r.rtn_rel_error;
}

QString rounded(double v) {
  return QString::number(v, 'g', 4);
}

QString moduleName(const LayerReport& r) {
  return QString::fromUtf8(linear_name(r.kind).data(),
                           static_cast<qsizetype>(linear_name(r.kind).size()));
}

// The report's name, or the one the pipeline would have given (synthetic or older reports).
QString fullName(const LayerReport& r) {
  return QString::fromStdString(r.name.empty() ? linear_module(r.block, r.kind) : r.name);
}

struct ColumnInfo {
  const char* title;
  const char* csvName;  // matches the report JSON's names where there is one
  const char* help;
};

// Indexed by LayerTableModel::Column.
const std::array<ColumnInfo, LayerTableModel::ColumnCount> kColumns = {{
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "Block"), "block",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Decoder block (layer index) the linear belongs to.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "Module"), "module",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "The linear layer inside the block.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "Shape"), "shape",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Output features × input features; sorts by the number of weights.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "GPTQ error"), "gptq_rel_error",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Relative output error of the GPTQ weights on the calibration inputs:\n"
                       "||WX - QX||² / ||WX||². Empty when GPTQ did not run.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "RTN error"), "rtn_rel_error",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Relative output error of round-to-nearest on the same inputs.\n"
                       "Empty when the RTN baseline did not run.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "GPTQ/RTN"), "gptq_rtn_ratio",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "GPTQ error divided by RTN error: below 1 GPTQ did better.\n"
                       "Rows where GPTQ did worse are highlighted.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "GPTQ loss"), "gptq_loss",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "The error the reference implementation prints for the layer\n"
                       "(sum of the per-column losses / 2); compare with its logs.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "Damping"), "damp_fraction",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "The damping that succeeded, as a fraction of mean(diag(H)) added to the\n"
                       "Hessian's diagonal (0.01: 1%). Raised when the Cholesky factorisation\n"
                       "failed.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "H min"), "hessian_min",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Smallest Hessian diagonal entry (before damping): 0 means an input\n"
                       "channel that never fired on the calibration data.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "H median"), "hessian_median",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Median Hessian diagonal entry (before damping).")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "H max"), "hessian_max",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Largest Hessian diagonal entry (before damping): a large max/median\n"
                       "ratio means a few input channels dominate.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "Time (s)"), "seconds",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Seconds spent quantizing the layer (GPTQ + RTN); the tooltip splits it.")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "FP16"), "bytes_fp16",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Size of the layer's weights in fp16 (and bias).")},
    {QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel", "Quantized"), "bytes_quantized",
     QT_TRANSLATE_NOOP("gptqw::ui::LayerTableModel",
                       "Size in the GPTQ checkpoint format: packed codes, fp16 scales, packed\n"
                       "zeros and g_idx (and bias).")},
}};

}  // namespace

LayerTableModel::LayerTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void LayerTableModel::setLayers(std::vector<LayerReport> layers) {
  beginResetModel();
  m_layers = std::move(layers);
  endResetModel();
}

void LayerTableModel::appendLayer(const LayerReport& layer) {
  const int row = static_cast<int>(m_layers.size());
  beginInsertRows(QModelIndex(), row, row);
  m_layers.push_back(layer);
  endInsertRows();
}

void LayerTableModel::clear() {
  if (m_layers.empty()) return;
  beginResetModel();
  m_layers.clear();
  endResetModel();
}

const LayerReport& LayerTableModel::layer(int row) const {
  return m_layers.at(static_cast<size_t>(row));
}

int LayerTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : static_cast<int>(m_layers.size());
}

int LayerTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant LayerTableModel::data(const QModelIndex& index, int role) const {
  if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
    return {};
  const LayerReport& r = m_layers[static_cast<size_t>(index.row())];
  const int column = index.column();
  switch (role) {
    case Qt::DisplayRole:
      return display(r, column);
    case SortRole:
      return sortValue(r, column);
    case KindRole:
      return static_cast<int>(r.kind);
    case NameRole:
      return fullName(r);
    case ExportRole:
      if (column == Module) return moduleName(r);
      if (column == Shape) return QStringLiteral("%1x%2").arg(r.out_features).arg(r.in_features);
      return {};
    case Qt::ToolTipRole:
      return toolTip(r, column);
    case Qt::TextAlignmentRole:
      if (column == Module) return static_cast<int>(Qt::AlignLeft | Qt::AlignVCenter);
      return static_cast<int>(Qt::AlignRight | Qt::AlignVCenter);
    // Fixed light tints with dark text rather than palette roles, so that the highlight reads
    // the same (and stays legible) under light and dark themes.
    case Qt::BackgroundRole:
      if (r.fell_back_to_rtn) return QBrush(QColor(255, 224, 178));
      if (gptqWorse(r)) return QBrush(QColor(255, 205, 210));
      return {};
    case Qt::ForegroundRole:
      if (r.fell_back_to_rtn || gptqWorse(r)) return QBrush(QColor(33, 33, 33));
      return {};
    default:
      return {};
  }
}

QVariant LayerTableModel::display(const LayerReport& r, int column) const {
  switch (column) {
    case Block:
      return QString::number(r.block);
    case Module:
      return moduleName(r);
    case Shape:
      return QStringLiteral("%1 × %2").arg(r.out_features).arg(r.in_features);
    case GptqError:
      return ran(r.gptq_rel_error) ? rounded(r.gptq_rel_error) : QString();
    case RtnError:
      return ran(r.rtn_rel_error) ? rounded(r.rtn_rel_error) : QString();
    case Ratio:
      return hasRatio(r) ? QString::number(r.gptq_rel_error / r.rtn_rel_error, 'f', 3) : QString();
    case GptqLoss:
      return ran(r.gptq_loss) ? rounded(r.gptq_loss) : QString();
    case Damping: {
      if (!gptqRan(r)) return QString();
      const QString damp = QString::number(r.damp_fraction, 'g', 3);
      return r.damp_raises > 0 ? tr("%1 (raised ×%2)").arg(damp).arg(r.damp_raises) : damp;
    }
    case HessMin:
      return rounded(r.hessian.min);
    case HessMedian:
      return rounded(r.hessian.median);
    case HessMax:
      return rounded(r.hessian.max);
    case Seconds:
      return QString::number(r.gptq_seconds + r.rtn_seconds, 'f', 3);
    case BytesFp16:
      return formatBytes(r.bytes_fp16);
    case BytesQuantized:
      return formatBytes(r.bytes_quantized);
    default:
      return {};
  }
}

// Typed values, not text: QSortFilterProxyModel compares numbers numerically, and the CSV
// export writes them at full precision. Invalid where the value does not exist.
QVariant LayerTableModel::sortValue(const LayerReport& r, int column) const {
  auto ifRan = [](double v) { return ran(v) ? QVariant(v) : QVariant(); };
  switch (column) {
    case Block:
      return r.block;
    case Module:
      return static_cast<int>(r.kind);  // block order (q, k, v, o, gate, up, down)
    case Shape:
      return static_cast<qlonglong>(r.out_features * r.in_features);
    case GptqError:
      return ifRan(r.gptq_rel_error);
    case RtnError:
      return ifRan(r.rtn_rel_error);
    case Ratio:
      return hasRatio(r) ? QVariant(r.gptq_rel_error / r.rtn_rel_error) : QVariant();
    case GptqLoss:
      return ifRan(r.gptq_loss);
    case Damping:
      return gptqRan(r) ? QVariant(r.damp_fraction) : QVariant();
    case HessMin:
      return r.hessian.min;
    case HessMedian:
      return r.hessian.median;
    case HessMax:
      return r.hessian.max;
    case Seconds:
      return r.gptq_seconds + r.rtn_seconds;
    case BytesFp16:
      return static_cast<qulonglong>(r.bytes_fp16);
    case BytesQuantized:
      return static_cast<qulonglong>(r.bytes_quantized);
    default:
      return {};
  }
}

QString LayerTableModel::toolTip(const LayerReport& r, int column) const {
  QStringList lines;
  switch (column) {
    case Block:
    case Module:
      lines << fullName(r);
      break;
    case Shape:
      lines << tr("%1 outputs × %2 inputs (%3 weights)")
                   .arg(r.out_features)
                   .arg(r.in_features)
                   .arg(r.out_features * r.in_features);
      break;
    case GptqError:
      lines << (gptqRan(r) ? tr("GPTQ relative error %1").arg(exactNumber(r.gptq_rel_error))
                           : tr("GPTQ did not run"));
      break;
    case RtnError:
      lines << (ran(r.rtn_rel_error) ? tr("RTN relative error %1").arg(exactNumber(r.rtn_rel_error))
                                     : tr("RTN did not run"));
      break;
    case Ratio:
      if (hasRatio(r))
        lines << tr("GPTQ %1 / RTN %2 = %3")
                     .arg(exactNumber(r.gptq_rel_error), exactNumber(r.rtn_rel_error),
                          exactNumber(r.gptq_rel_error / r.rtn_rel_error));
      else
        lines << tr("Needs both GPTQ and RTN errors");
      break;
    case GptqLoss:
      lines << (ran(r.gptq_loss) ? tr("GPTQ loss %1").arg(exactNumber(r.gptq_loss))
                                 : tr("GPTQ did not run"));
      break;
    case Damping:
      if (gptqRan(r))
        lines << tr("Damping %1 (%2% of mean diag(H)): added %3 to the diagonal; raised %4 "
                    "times")
                     .arg(exactNumber(r.damp_fraction), QString::number(100 * r.damp_fraction, 'g', 3),
                          exactNumber(r.damp_abs))
                     .arg(r.damp_raises);
      else
        lines << tr("GPTQ did not run");
      break;
    case HessMin:
    case HessMedian:
    case HessMax:
      lines << tr("diag(H): min %1, median %2, mean %3, max %4")
                   .arg(exactNumber(r.hessian.min), exactNumber(r.hessian.median),
                        exactNumber(r.hessian.mean), exactNumber(r.hessian.max))
            << tr("%1% of input channels never fired (H[i,i] = 0)")
                   .arg(QString::number(r.hessian.dead_fraction * 100, 'g', 3));
      break;
    case Seconds:
      lines
          << tr("GPTQ %1 s, RTN %2 s").arg(exactNumber(r.gptq_seconds), exactNumber(r.rtn_seconds));
      break;
    case BytesFp16:
      lines << tr("%1 bytes").arg(r.bytes_fp16);
      break;
    case BytesQuantized:
      lines << tr("%1 bytes, %2 bits per weight")
                   .arg(r.bytes_quantized)
                   .arg(r.bits_per_weight, 0, 'g', 4);
      if (r.bytes_fp16 > 0)
        lines << tr("%1% of fp16")
                     .arg(QString::number(100.0 * static_cast<double>(r.bytes_quantized) /
                                              static_cast<double>(r.bytes_fp16),
                                          'f', 1));
      break;
    default:
      break;
  }
  // What went wrong on the row, on every cell: the highlight alone does not say why.
  if (r.fell_back_to_rtn)
    lines << tr("GPTQ failed on this layer; it was quantized with RTN.");
  else if (gptqWorse(r))
    lines << tr("GPTQ's error is higher than RTN's on this layer.");
  if (!r.note.empty()) lines << QString::fromStdString(r.note);
  return lines.join(u'\n');
}

QVariant LayerTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
    return QAbstractTableModel::headerData(section, orientation, role);
  const ColumnInfo& info = kColumns[static_cast<size_t>(section)];
  switch (role) {
    case Qt::DisplayRole:
      return tr(info.title);
    case Qt::ToolTipRole:
      return tr(info.help);
    case ExportRole:
      return QString::fromLatin1(info.csvName);
    default:
      return QAbstractTableModel::headerData(section, orientation, role);
  }
}

}  // namespace gptqw::ui
