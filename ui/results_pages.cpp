#include "results_pages.h"

#include <QCheckBox>
#include <QDateTime>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QTableView>
#include <QVBoxLayout>
#include <set>

#include "format.h"
#include "layer_filter_model.h"
#include "layer_table_model.h"
#include "plots/error_chart.h"
#include "plots/hessian_chart.h"
#include "plots/memory_chart.h"
#include "plots/perplexity_chart.h"
#include "run_session.h"

namespace gptqw::ui {

namespace {

QVBoxLayout* pageLayout(QWidget* page) {
  auto* layout = new QVBoxLayout(page);
  layout->setContentsMargins(0, 0, 0, 0);
  return layout;
}

}  // namespace

// --- Layers -------------------------------------------------------------------------------------

LayersPage::LayersPage(RunSession* session, QWidget* parent) : QWidget(parent) {
  m_layers = new LayerTableModel(this);
  m_filter = new LayerFilterModel(this);
  m_filter->setSourceModel(m_layers);
  m_table = new QTableView;
  m_table->setModel(m_filter);
  m_table->setSortingEnabled(true);
  m_table->sortByColumn(-1, Qt::AscendingOrder);  // run order until the user sorts
  m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
  m_table->setSelectionMode(QAbstractItemView::SingleSelection);
  m_table->setAlternatingRowColors(true);
  m_table->verticalHeader()->setVisible(false);
  m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  connect(m_table->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          [this](const QModelIndex& current) {
            if (current.isValid()) emit layerChosen(m_filter->mapToSource(current).row());
          });

  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("Show:")));
  for (LinearKind k : kAllLinears) {
    auto* box = new QCheckBox(plots::moduleShortName(k));
    box->setChecked(true);
    box->setToolTip(qstr(std::string(linear_name(k))));
    connect(box, &QCheckBox::toggled, this, [this] {
      std::set<LinearKind> kinds;
      bool all = true;
      for (size_t i = 0; i < m_kind_boxes.size(); ++i) {
        if (m_kind_boxes[i]->isChecked()) kinds.insert(kAllLinears[i]);
        else all = false;
      }
      // Nothing ticked shows nothing; all ticked is the unfiltered view.
      if (kinds.empty()) kinds.insert(static_cast<LinearKind>(-1));
      m_filter->setKinds(all ? std::set<LinearKind>{} : kinds);
    });
    m_kind_boxes.push_back(box);
    bar->addWidget(box);
  }
  auto* name_filter = new QLineEdit;
  name_filter->setPlaceholderText(tr("Filter by name"));
  name_filter->setClearButtonEnabled(true);
  connect(name_filter, &QLineEdit::textChanged, m_filter, &LayerFilterModel::setNamePattern);
  bar->addWidget(name_filter, 1);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(bar);
  layout->addWidget(m_table, 1);

  connect(session, &RunSession::layerAdded, m_layers, &LayerTableModel::appendLayer);
  connect(session, &RunSession::reportReady, this, [this](const Report& r) { m_layers->setLayers(r.layers); });
  connect(session, &RunSession::resultsCleared, m_layers, &LayerTableModel::clear);
}

void LayersPage::showSelected(int index) {
  // The table maps through the filter and the sort.
  const QModelIndex proxy = m_filter->mapFromSource(m_layers->index(index, 0));
  if (!proxy.isValid() || m_table->currentIndex().row() == proxy.row()) return;
  QSignalBlocker block(m_table->selectionModel());
  m_table->selectionModel()->setCurrentIndex(proxy, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
  m_table->scrollTo(proxy);
}

// --- Reconstruction error -----------------------------------------------------------------------

ErrorPage::ErrorPage(RunSession* session, QWidget* parent) : QWidget(parent) {
  m_chart = new plots::ErrorChart;
  m_chart->setLogScale(true);
  pageLayout(this)->addWidget(m_chart);
  connect(m_chart, &plots::ErrorChart::layerClicked, this, &ErrorPage::layerChosen);
  connect(session, &RunSession::layerAdded, m_chart, &plots::ErrorChart::addLayer);
  connect(session, &RunSession::reportReady, this, [this](const Report& r) { m_chart->setLayers(r.layers); });
  connect(session, &RunSession::resultsCleared, m_chart, &plots::ErrorChart::clear);
}

// --- Hessian ------------------------------------------------------------------------------------

HessianPage::HessianPage(RunSession* session, QWidget* parent) : QWidget(parent) {
  m_chart = new plots::HessianChart;
  m_label = new QLabel;
  m_label->setWordWrap(true);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(m_label);
  layout->addWidget(m_chart, 1);
  showLayer(nullptr);
  connect(session, &RunSession::resultsCleared, this, [this] { showLayer(nullptr); });
}

void HessianPage::showLayer(const LayerReport* l) {
  m_chart->setLayer(l);
  if (!l) return m_label->setText(tr("Select a layer in the table or the error chart."));
  m_label->setText(tr("%1: diagonal min %2, median %3, max %4, dead %5%")
                       .arg(qstr(l->name))
                       .arg(l->hessian.min, 0, 'g', 4)
                       .arg(l->hessian.median, 0, 'g', 4)
                       .arg(l->hessian.max, 0, 'g', 4)
                       .arg(l->hessian.dead_fraction * 100, 0, 'f', 1));
}

// --- Memory -------------------------------------------------------------------------------------

MemoryPage::MemoryPage(RunSession* session, QWidget* parent) : QWidget(parent) {
  m_chart = new plots::MemoryChart;
  m_text = new QLabel;
  m_text->setWordWrap(true);
  m_text->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(m_text);
  layout->addWidget(m_chart, 1);
  connect(session, &RunSession::reportReady, this, [this](const Report& r) {
    m_chart->setData(r.memory, r.layers);
    const MemorySummary& m = r.memory;
    m_text->setText(
        tr("Weights: %1 in fp16 → %2 quantized (%3 bits per quantized weight). Estimated VRAM "
           "for the weights: %4 → %5, saving %6 (%7%).")
            .arg(formatBytes(m.fp16_bytes), formatBytes(m.quantized_bytes))
            .arg(m.bits_per_weight, 0, 'f', 2)
            .arg(formatBytes(m.fp16_bytes), formatBytes(m.quantized_bytes),
                 formatBytes(m.fp16_bytes - std::min(m.fp16_bytes, m.quantized_bytes)))
            .arg(m.saving_percent, 0, 'f', 1));
  });
  connect(session, &RunSession::resultsCleared, this, [this] {
    m_chart->clear();
    m_text->clear();
  });
}

// --- Perplexity ---------------------------------------------------------------------------------

PerplexityPage::PerplexityPage(RunSession* session, QWidget* parent) : QWidget(parent) {
  m_chart = new plots::PerplexityChart;
  pageLayout(this)->addWidget(m_chart);
  connect(session, &RunSession::reportReady, this, [this](const Report& r) { m_chart->setPerplexity(r.perplexity); });
  connect(session, &RunSession::perplexityEvaluated, this,
          [this](const PerplexitySummary& p) { m_chart->setPerplexity(p); });
  connect(session, &RunSession::resultsCleared, m_chart, &plots::PerplexityChart::clear);
}

// --- Log ----------------------------------------------------------------------------------------

LogPage::LogPage(RunSession* session, QWidget* parent) : QWidget(parent) {
  m_log = new QPlainTextEdit;
  m_log->setReadOnly(true);
  m_log->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  pageLayout(this)->addWidget(m_log);
  connect(session, &RunSession::logLine, this, &LogPage::append);
  connect(session, &RunSession::errorOccurred, this,
          [this](const QString&, const QString& message) { append(tr("error: %1").arg(message)); });
}

QString LogPage::text() const { return m_log->toPlainText(); }

void LogPage::append(const QString& line) {
  m_log->appendPlainText(QDateTime::currentDateTime().toString("HH:mm:ss  ") + line);
}

}  // namespace gptqw::ui
