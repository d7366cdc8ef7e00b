#include "results_view.h"

#include <QFileInfo>
#include <QLabel>
#include <QTabWidget>
#include <QVBoxLayout>

#include "advisor_page.h"
#include "format.h"
#include "plots/advice_curve_chart.h"
#include "generate_page.h"
#include "quality_page.h"
#include "layer_table_model.h"
#include "plots/error_chart.h"
#include "plots/hessian_chart.h"
#include "plots/memory_chart.h"
#include "plots/grouped_bar_chart.h"
#include "plots/perplexity_chart.h"
#include "results_pages.h"
#include "run_session.h"

namespace gptqw::ui {

namespace {

// What an exported chart's title says the data are: the model, the quantization and the
// calibration, e.g. "stories260K · 4-bit asym g32 · 128 x 256 tokens of
// tinystories-sample.txt".
QString caption(const std::string& model_path, const QuantizeOptions& o, int nsamples, int seqlen,
                const std::string& calib_file) {
  const QString model = QFileInfo(qstr(model_path)).fileName();
  return QObject::tr("%1 · %2 · %3 x %4 tokens of %5")
      .arg(model, qstr(o.gptq.quant.describe()))
      .arg(nsamples)
      .arg(seqlen)
      .arg(QFileInfo(qstr(calib_file)).fileName());
}

// The settings that change the results shown (not threads, device or the evaluation windows).
bool sameResultSettings(const RunSpec& s, const Report& r) {
  const QuantizeOptions &a = s.options, &b = r.options;
  const QuantConfig &qa = a.gptq.quant, &qb = b.gptq.quant;
  return qa.bits == qb.bits && qa.group_size == qb.group_size && qa.sym == qb.sym && qa.mse == qb.mse &&
         a.gptq.act_order == b.gptq.act_order && a.gptq.static_groups == b.gptq.static_groups &&
         a.gptq.damp_fraction == b.gptq.damp_fraction && a.gptq.blocksize == b.gptq.blocksize &&
         a.true_sequential == b.true_sequential && s.nsamples == r.nsamples && s.seqlen == r.seqlen &&
         s.seed == r.seed;
}

}  // namespace

ResultsView::ResultsView(RunSession* session, QWidget* parent) : QWidget(parent), m_session(session) {
  m_tabs = new QTabWidget;
  m_layers = new LayersPage(session);
  m_errors = new ErrorPage(session);
  m_hessian = new HessianPage(session);
  m_memory = new MemoryPage(session);
  m_perplexity = new PerplexityPage(session);
  m_quality = new QualityPage(session);
  m_generate = new GeneratePage(session);
  m_advisor = new AdvisorPage(session);
  m_log = new LogPage(session);
  m_tabs->addTab(m_layers, tr("Layers"));
  m_tabs->addTab(m_errors, tr("Reconstruction error"));
  m_tabs->addTab(m_hessian, tr("Hessian"));
  m_tabs->addTab(m_memory, tr("Memory"));
  m_tabs->addTab(m_perplexity, tr("Perplexity"));
  m_tabs->addTab(m_quality, tr("Quality"));
  m_tabs->addTab(m_generate, tr("Generate"));
  m_tabs->addTab(m_advisor, tr("Advisor"));
  m_tabs->addTab(m_log, tr("Log"));

  // Above the results: a line that says when they were made with other settings than the
  // form's now (so a changed setting never silently relabels old numbers).
  m_stale = new QLabel;
  m_stale->setWordWrap(true);
  m_stale->setStyleSheet(QStringLiteral("color: #b07000"));
  m_stale->hide();
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(m_stale);
  layout->addWidget(m_tabs, 1);

  connect(m_layers, &LayersPage::layerChosen, this, &ResultsView::selectLayer);
  connect(m_errors, &ErrorPage::layerChosen, this, &ResultsView::selectLayer);
  connect(session, &RunSession::runStarted, this, [this](const RunSpec& spec) {
    m_tabs->setCurrentIndex(LayersTab);
    if (const auto& model = m_session->model())
      setCaption(caption(model->path.string(), spec.options, spec.nsamples, spec.seqlen, spec.calib_file.string()));
  });
  connect(session, &RunSession::layerAdded, this, [this] {
    if (m_layers->model()->rowCount() == 1) selectLayer(0);
  });
  connect(session, &RunSession::reportReady, this, [this](const Report& r) {
    setCaption(caption(r.model.path, r.options, r.nsamples, r.seqlen, r.calib_file));
    if (!r.layers.empty()) selectLayer(0);
  });
  connect(session, &RunSession::perplexityEvaluated, this, [this] {
    const auto& model = m_session->model();
    m_perplexity->chart()->setExportCaption(model ? QFileInfo(qstr(model->path.string())).fileName() : QString());
    m_tabs->setCurrentIndex(PerplexityTab);
  });
  connect(session, &RunSession::resultsCleared, this, [this] { setCaption(QString()); });
  connect(session, &RunSession::generationsReady, this, [this] { m_tabs->setCurrentIndex(GenerateTab); });
  connect(session, &RunSession::adviceReady, this, [this] {
    const auto& model = m_session->model();
    m_advisor->curve()->setExportCaption(model ? QFileInfo(qstr(model->path.string())).fileName() : QString());
    m_tabs->setCurrentIndex(AdvisorTab);
  });
}

void ResultsView::setCaption(const QString& text) {
  for (plots::ChartPanel* chart : std::initializer_list<plots::ChartPanel*>{
           m_errors->chart(), m_hessian->chart(), m_memory->chart(), m_perplexity->chart(),
           m_quality->distributionChart(), m_quality->positionChart()})
    chart->setExportCaption(text);
}

void ResultsView::selectLayer(int index) {
  LayerTableModel* layers = m_layers->model();
  if (index < 0 || index >= layers->rowCount()) {
    m_hessian->showLayer(nullptr);
    m_errors->chart()->selectLayer(-1);
    return;
  }
  m_hessian->showLayer(&layers->layer(index));
  m_errors->chart()->selectLayer(index);
  m_layers->showSelected(index);
}

void ResultsView::compareWithSettings(const RunSpec* spec) {
  const auto& r = m_session->report();
  // Settings that cannot run are not the ones shown either.
  // A report of gptqw advise alone holds no run whose settings could differ.
  const bool stale = r && !r->layers.empty() && !m_session->busy() && (!spec || !sameResultSettings(*spec, *r));
  if (r)
    m_stale->setText(tr("The results shown were made with other settings (%1, %2 x %3 tokens, "
                        "seed %4) than the form's now; Run to update them.")
                         .arg(qstr(r->options.gptq.quant.describe()))
                         .arg(r->nsamples)
                         .arg(r->seqlen)
                         .arg(qulonglong(r->seed)));
  m_stale->setVisible(stale);
}

QString ResultsView::staleText() const { return m_stale->isHidden() ? QString() : m_stale->text(); }

}  // namespace gptqw::ui
