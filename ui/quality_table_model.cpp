#include "quality_table_model.h"

#include <QFileInfo>

#include "format.h"

namespace gptqw::ui {

namespace {

QString pm(const Estimate& e, int digits, double scale = 1, const char* suffix = "") {
  return QStringLiteral("%1 ± %2%3")
      .arg(e.value * scale, 0, 'f', digits)
      .arg(e.se * scale, 0, 'f', digits)
      .arg(QLatin1String(suffix));
}

}  // namespace

QualityTableModel::QualityTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void QualityTableModel::setQuality(std::vector<TextQuality> quality) {
  beginResetModel();
  m_quality = std::move(quality);
  m_rows.clear();
  for (size_t t = 0; t < m_quality.size(); ++t) {
    m_rows.push_back({t, -1});
    for (size_t m = 0; m < m_quality[t].quantized.size(); ++m) m_rows.push_back({t, int(m)});
  }
  endResetModel();
}

int QualityTableModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : int(m_rows.size());
}

int QualityTableModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() ? 0 : ColumnCount;
}

QVariant QualityTableModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || index.row() >= int(m_rows.size())) return {};
  if (role != Qt::DisplayRole && role != SortRole && role != Qt::ToolTipRole &&
      role != Qt::TextAlignmentRole)
    return {};
  const Row& row = m_rows[size_t(index.row())];
  const TextQuality& q = m_quality[row.text];
  const int col = index.column();
  if (role == Qt::TextAlignmentRole)
    return col <= Model ? QVariant(Qt::AlignLeft | Qt::AlignVCenter) : QVariant(Qt::AlignRight | Qt::AlignVCenter);
  if (role == Qt::ToolTipRole) {
    if (col == Text) return qstr(q.text);
    if (col == Windows && q.stopped_early)
      return tr("Stopped once the 95% interval of ln(PPL/PPL original) was within %1 of its value")
          .arg(q.precision.value_or(0));
    return {};
  }
  const bool sort = role == SortRole;
  if (col == Text) return QFileInfo(qstr(q.text)).fileName();
  if (col == Windows) {
    if (sort) return q.windows;
    return q.stopped_early ? tr("%1 of %2 (early stop)").arg(q.windows).arg(q.windows_available)
                           : tr("%1 of %2").arg(q.windows).arg(q.windows_available);
  }
  if (row.model < 0) {
    if (col == Model) return tr("original");
    if (col == Perplexity) return sort ? QVariant(q.ppl_original.value) : QVariant(pm(q.ppl_original, 4));
    return {};
  }
  const QuantizedQuality& m = q.quantized[size_t(row.model)];
  const DivergenceSummary& s = m.vs_original;
  switch (col) {
    case Model: return methodTitle(m.model);
    case Perplexity: return sort ? QVariant(m.ppl.value) : QVariant(pm(m.ppl, 4));
    case LnRatio: return sort ? QVariant(s.ln_ppl_ratio.value) : QVariant(pm(s.ln_ppl_ratio, 5));
    case KldMean: return sort ? QVariant(s.kld.value) : QVariant(pm(s.kld, 5));
    case KldMedian: return sort ? QVariant(s.kld_pct.median) : QVariant(QString::number(s.kld_pct.median, 'f', 5));
    case KldP99: return sort ? QVariant(s.kld_pct.p99) : QVariant(QString::number(s.kld_pct.p99, 'f', 4));
    case KldMax: return sort ? QVariant(s.kld_pct.max) : QVariant(QString::number(s.kld_pct.max, 'f', 3));
    case DeltaP: return sort ? QVariant(s.dp.value) : QVariant(pm(s.dp, 3, 100, " %"));
    case SameTop1:
      return sort ? QVariant(s.top_agreement[0].value) : QVariant(pm(s.top_agreement[0], 2, 100, " %"));
    case SameTop5: {
      const Estimate& e = s.top_agreement[kTopRanks - 1];
      return sort ? QVariant(e.value) : QVariant(pm(e, 2, 100, " %"));
    }
    default: return {};
  }
}

QVariant QualityTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount) return {};
  static const char* const names[ColumnCount] = {
      QT_TR_NOOP("Text"),        QT_TR_NOOP("Model"),     QT_TR_NOOP("Perplexity"),
      QT_TR_NOOP("ln(PPL/PPL₀)"), QT_TR_NOOP("KLD mean"),  QT_TR_NOOP("KLD median"),
      QT_TR_NOOP("KLD p99"),     QT_TR_NOOP("KLD max"),   QT_TR_NOOP("Δp"),
      QT_TR_NOOP("Same top-1"),  QT_TR_NOOP("Same top-5"), QT_TR_NOOP("Windows")};
  static const char* const tips[ColumnCount] = {
      "", "",
      QT_TR_NOOP("exp(mean NLL) ± its standard error (llama.cpp's)"),
      QT_TR_NOOP("ln(PPL(Q) / PPL(original)) over the same predictions, ± the error of the per-token differences"),
      QT_TR_NOOP("Mean KL(original ‖ quantized) over the whole vocabulary, nats"),
      "", "", "",
      QT_TR_NOOP("Mean of p_quantized(correct token) − p_original(correct token)"),
      QT_TR_NOOP("Share of positions whose most probable token is the same"),
      QT_TR_NOOP("Share of positions whose five most probable tokens are the same, rank by rank (exllamav3's top-K agreement)"),
      QT_TR_NOOP("Windows evaluated of those the text has")};
  if (role == Qt::DisplayRole) return tr(names[section]);
  if (role == Qt::ToolTipRole && *tips[section]) return tr(tips[section]);
  return {};
}

}  // namespace gptqw::ui
