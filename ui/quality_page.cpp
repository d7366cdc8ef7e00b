#include "quality_page.h"

#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include "format.h"
#include "plots/grouped_bar_chart.h"
#include "plots/perplexity_chart.h"
#include "calibration_matrix_model.h"
#include "quality_table_model.h"
#include "run_session.h"

namespace gptqw::ui {

QualityPage::QualityPage(RunSession* session, QWidget* parent) : QWidget(parent) {
  m_model = new QualityTableModel(this);
  auto* sorted = new QSortFilterProxyModel(this);
  sorted->setSourceModel(m_model);
  sorted->setSortRole(QualityTableModel::SortRole);
  m_table = new QTableView;
  m_table->setModel(sorted);
  m_table->setSortingEnabled(true);
  m_table->sortByColumn(-1, Qt::AscendingOrder);
  m_table->verticalHeader()->setVisible(false);
  m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  m_table->setAlternatingRowColors(true);

  m_text = new QComboBox;
  connect(m_text, &QComboBox::currentIndexChanged, this, &QualityPage::showText);
  m_note = new QLabel(tr("Evaluate with a text to compare the quantized models with the original."));
  m_note->setWordWrap(true);
  m_distribution = new plots::GroupedBarChart(QStringLiteral("kld-distribution"));
  m_position = new plots::GroupedBarChart(QStringLiteral("kld-by-position"));

  // The calibration heat map, shown for reports that hold a calibration matrix.
  m_matrix = new CalibrationMatrixModel(this);
  auto* matrix_view = new QTableView;
  matrix_view->setModel(m_matrix);
  matrix_view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  auto* quantity = new QComboBox;
  quantity->addItems({tr("GPTQ: perplexity"), tr("GPTQ: mean KLD"), tr("GPTQ: ln(PPL/PPL original)")});
  quantity->setCurrentIndex(1);
  m_matrix->setQuantity(CalibrationMatrixModel::Quantity::GptqKld);
  connect(quantity, &QComboBox::currentIndexChanged, this,
          [this](int i) { m_matrix->setQuantity(static_cast<CalibrationMatrixModel::Quantity>(i)); });
  m_matrix_box = new QWidget;
  auto* matrix_layout = new QVBoxLayout(m_matrix_box);
  matrix_layout->setContentsMargins(0, 0, 0, 0);
  auto* matrix_bar = new QHBoxLayout;
  matrix_bar->addWidget(new QLabel(tr("Calibration sensitivity (red: worse than the best corpus for that text):")));
  matrix_bar->addWidget(quantity);
  matrix_bar->addStretch(1);
  matrix_layout->addLayout(matrix_bar);
  matrix_layout->addWidget(matrix_view);
  m_matrix_box->hide();

  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("Text:")));
  bar->addWidget(m_text, 1);
  auto* charts = new QSplitter(Qt::Horizontal);
  charts->addWidget(m_distribution);
  charts->addWidget(m_position);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(m_table);
  split->addWidget(m_matrix_box);
  split->addWidget(charts);
  split->setStretchFactor(1, 2);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(m_note);
  layout->addLayout(bar);
  layout->addWidget(split, 1);

  connect(session, &RunSession::reportReady, this, [this](const Report& r) {
    setQuality(r.quality);
    m_matrix->setMatrix(r.calibration_matrix);
    m_matrix_box->setVisible(r.calibration_matrix.has_value());
    m_note->setVisible(r.quality.empty() && !r.calibration_matrix);
  });
  connect(session, &RunSession::resultsCleared, this, [this] {
    setQuality({});
    m_matrix->setMatrix(std::nullopt);
    m_matrix_box->hide();
  });
  setQuality({});
}

void QualityPage::setQuality(const std::vector<TextQuality>& quality) {
  m_model->setQuality(quality);
  QSignalBlocker block(m_text);
  m_text->clear();
  for (const TextQuality& q : quality) m_text->addItem(QFileInfo(qstr(q.text)).fileName());
  m_text->setEnabled(quality.size() > 1);
  m_note->setVisible(quality.empty());
  showText(quality.empty() ? -1 : 0);
}

void QualityPage::showText(int index) {
  const auto& all = m_model->quality();
  if (index < 0 || size_t(index) >= all.size()) {
    m_distribution->setEmpty(tr("KL divergence: not evaluated"));
    m_position->setEmpty(tr("Damage by position: not evaluated"));
    return;
  }
  const TextQuality& q = all[size_t(index)];
  const QString text = QFileInfo(qstr(q.text)).fileName();
  // The distribution: where most predictions are barely changed and a few are badly hurt.
  const QStringList levels = {tr("median"), tr("p90"), tr("p95"), tr("p99"), tr("p99.9"), tr("max")};
  std::vector<plots::GroupedBarChart::Series> kld;
  for (const QuantizedQuality& m : q.quantized) {
    const Percentiles& p = m.vs_original.kld_pct;
    kld.push_back({methodTitle(m.model) + tr(" (mean %1)").arg(m.vs_original.kld.value, 0, 'f', 4),
                   plots::modelColor(m.model),
                   {p.median, p.p90, p.p95, p.p99, p.p99_9, p.max}});
  }
  m_distribution->setData(tr("KL divergence from the original on %1, per prediction").arg(text),
                          tr("Percentile of the predictions"), tr("KLD (nats, log)"), levels, kld, true);
  // By position within the window: long-context damage shows in the later buckets.
  QStringList buckets;
  std::vector<plots::GroupedBarChart::Series> by_position;
  for (const QuantizedQuality& m : q.quantized) {
    plots::GroupedBarChart::Series s{methodTitle(m.model), plots::modelColor(m.model), {}};
    QStringList names;
    for (const PositionBucketSummary& b : m.vs_original.by_position) {
      if (b.tokens == 0) continue;
      names << (b.end < 0 ? tr("%1+").arg(b.first) : tr("%1–%2").arg(b.first).arg(b.end - 1));
      s.values.push_back(b.est.kld.value);
    }
    buckets = names;
    by_position.push_back(std::move(s));
  }
  m_position->setData(tr("Mean KL divergence by position in the window (%1 tokens)").arg(q.seqlen),
                      tr("Position"), tr("Mean KLD (nats)"), buckets, by_position, false);
}

}  // namespace gptqw::ui
