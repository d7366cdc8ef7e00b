#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QDateTime>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTableView>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>
#include <Eigen/Core>
#include <memory>

#include "backend/backend.h"
#include "common/error.h"
#include "common/output_file.h"
#include "common/text_file.h"
#include "common/threads.h"
#include "io/gptq_checkpoint.h"
#include "io/gptq_export.h"
#include "layer_filter_model.h"
#include "layer_table_model.h"
#include "csv_export.h"
#include "model_summary.h"
#include "pipeline/run.h"
#include "plots/error_chart.h"
#include "plots/hessian_chart.h"
#include "plots/memory_chart.h"
#include "plots/perplexity_chart.h"
#include "settings_form.h"

namespace gptqw::ui {

namespace {

// The reason a file could not be used, without the path the window shows beside it: "file is
// empty", not "unreadable".
QString fileProblem(const QString& file, const QString& message) {
  const QString prefix = file + ": ";
  return message.startsWith(prefix) ? message.mid(prefix.size()) : message;
}

constexpr int kMaxRecent = 8;

QString qstr(const std::string& s) { return QString::fromStdString(s); }
std::filesystem::path fspath(const QString& s) { return std::filesystem::path(s.toStdString()); }

QString duration(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  return s >= 3600 ? QString("%1:%2:%3").arg(s / 3600).arg(s / 60 % 60, 2, 10, QChar('0')).arg(s % 60, 2, 10, QChar('0'))
                   : QString("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QChar('0'));
}

const GptqSettings* checkpoint_settings_of(const Model& m) {
  auto* ckpt = dynamic_cast<const GptqCheckpoint*>(m.weights.get());
  return ckpt ? &ckpt->settings() : nullptr;
}

}  // namespace

MainWindow::MainWindow(QWidget* parent)
    : QMainWindow(parent),
      m_load(new Job(this)),
      m_scan(new Job(this)),
      m_run(new Job(this)),
      m_export(new Job(this)),
      m_save(new Job(this)),
      m_eval_scan(new Job(this)) {
  setWindowTitle(tr("GPTQ Workbench"));
  setAcceptDrops(true);
  setMinimumSize(900, 600);

  m_splitter = new QSplitter(Qt::Horizontal);
  m_splitter->setChildrenCollapsible(false);
  m_splitter->addWidget(buildInputs());

  m_tabs = new QTabWidget;
  m_tabs->addTab(buildLayersTab(), tr("Layers"));

  m_error_chart = new plots::ErrorChart;
  m_error_chart->setLogScale(true);
  connect(m_error_chart, &plots::ErrorChart::layerClicked, this, &MainWindow::selectLayer);
  QWidget* error_page = m_error_chart;
  m_tabs->addTab(error_page, tr("Reconstruction error"));

  m_hessian_chart = new plots::HessianChart;
  m_hessian_label = new QLabel(tr("Select a layer in the table or the error chart."));
  auto* hessian_page = new QWidget;
  auto* hessian_layout = new QVBoxLayout(hessian_page);
  hessian_layout->addWidget(m_hessian_label);
  hessian_layout->addWidget(m_hessian_chart, 1);
  m_tabs->addTab(hessian_page, tr("Hessian"));

  m_memory_chart = new plots::MemoryChart;
  m_memory_text = new QLabel;
  m_memory_text->setWordWrap(true);
  m_memory_text->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* memory_page = new QWidget;
  auto* memory_layout = new QVBoxLayout(memory_page);
  memory_layout->addWidget(m_memory_text);
  memory_layout->addWidget(m_memory_chart, 1);
  m_tabs->addTab(memory_page, tr("Memory"));

  m_ppl_chart = new plots::PerplexityChart;
  m_tabs->addTab(m_ppl_chart, tr("Perplexity"));

  m_log = new QPlainTextEdit;
  m_log->setReadOnly(true);
  m_log->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  m_tabs->addTab(m_log, tr("Log"));

  // Above the results: a line that says when they were made with other settings than the
  // form's now (so a changed setting never silently relabels old numbers).
  m_stale = new QLabel;
  m_stale->setWordWrap(true);
  m_stale->setStyleSheet(QStringLiteral("color: #b07000"));
  m_stale->hide();
  auto* results = new QWidget;
  auto* results_layout = new QVBoxLayout(results);
  results_layout->setContentsMargins(0, 0, 0, 0);
  results_layout->addWidget(m_stale);
  results_layout->addWidget(m_tabs, 1);
  m_splitter->addWidget(results);
  m_splitter->setStretchFactor(1, 1);
  setCentralWidget(m_splitter);

  m_progress = new QProgressBar;
  m_progress->setRange(0, 1000);
  m_progress->setMaximumWidth(260);
  m_progress->setVisible(false);
  m_status = new QLabel(tr("Open a model to begin."));
  statusBar()->addWidget(m_status, 1);
  statusBar()->addPermanentWidget(m_progress);

  buildMenus();

  for (Job* job : {m_load, m_run, m_export})
    connect(job, &Job::progress, this, &MainWindow::onProgress);
  // The status line's clock ticks between progress reports (a block can take minutes).
  auto* tick = new QTimer(this);
  connect(tick, &QTimer::timeout, this, &MainWindow::showProgress);
  tick->start(1000);
  for (Job* job : {m_load, m_scan, m_run, m_export, m_save}) {
    connect(job, &Job::ended, this, [this] {
      if (!busy()) m_last_progress.reset();
      m_progress->setVisible(busy());
      updateActions();
    });
  }
  connect(m_form, &SettingsForm::changed, this, &MainWindow::updateActions);
  connect(m_form, &SettingsForm::changed, this, &MainWindow::updateInfoLines);
  connect(m_form, &SettingsForm::changed, this, &MainWindow::updateStaleMark);

  QSettings st;
  if (!restoreGeometry(st.value("window/geometry").toByteArray())) resize(1440, 900);
  m_splitter->restoreState(st.value("window/splitter").toByteArray());
  m_form->restore(st);
  rebuildRecentMenu();
  updateActions();
}

MainWindow::~MainWindow() = default;

QWidget* MainWindow::buildInputs() {
  auto* panel = new QWidget;
  auto* layout = new QVBoxLayout(panel);

  auto path_row = [this](QLineEdit*& edit, const QString& placeholder, auto browse) {
    auto* row = new QHBoxLayout;
    edit = new QLineEdit;
    edit->setPlaceholderText(placeholder);
    edit->setReadOnly(true);
    auto* button = new QToolButton;
    button->setText(tr("…"));
    button->setToolTip(tr("Browse"));
    connect(button, &QToolButton::clicked, this, browse);
    row->addWidget(edit, 1);
    row->addWidget(button);
    return row;
  };

  auto* model_box = new QGroupBox(tr("Model"));
  auto* model_layout = new QVBoxLayout(model_box);
  model_layout->addLayout(path_row(m_model_edit, tr("Hugging Face folder or llama2.c .bin (drop here)"), [this] {
    QString dir = pickDirectory("paths/model", tr("Open model folder"));
    if (!dir.isEmpty()) openModel(dir);
  }));
  m_summary = new QLabel(tr("No model loaded."));
  m_summary->setTextFormat(Qt::RichText);
  m_summary->setWordWrap(true);  // long paths and lines wrap instead of widening the panel
  m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
  model_layout->addWidget(m_summary);
  layout->addWidget(model_box);

  auto* data_box = new QGroupBox(tr("Texts"));
  auto* data_layout = new QFormLayout(data_box);
  const QString text_filter = tr("Text files (*.txt *.raw *.md);;All files (*)");
  // A text file, a JSONL file (one document per line) or a folder of .txt files.
  const QString calib_filter = tr("Texts and JSONL (*.txt *.raw *.md *.jsonl);;All files (*)");
  QHBoxLayout* calib_row = path_row(m_calib_edit, tr("text or JSONL file, or folder of .txt"),
                                    [this, calib_filter] {
    QString f = pickFile("paths/calib", tr("Calibration text"), calib_filter, false);
    if (!f.isEmpty()) setCalibrationFile(f);
  });
  auto* calib_folder = new QToolButton;
  calib_folder->setText(tr("Folder…"));
  calib_folder->setToolTip(tr("A folder of .txt files, each one document"));
  connect(calib_folder, &QToolButton::clicked, this, [this] {
    QString dir = pickDirectory("paths/calib", tr("Calibration folder"));
    if (!dir.isEmpty()) setCalibrationFile(dir);
  });
  calib_row->addWidget(calib_folder);
  data_layout->addRow(tr("Calibration"), calib_row);
  m_calib_info = new QLabel;
  m_calib_info->setWordWrap(true);
  data_layout->addRow(QString(), m_calib_info);
  data_layout->addRow(tr("Evaluation"), path_row(m_eval_edit, tr("text file (optional)"), [this, text_filter] {
    QString f = pickFile("paths/eval", tr("Evaluation text"), text_filter, false);
    if (!f.isEmpty()) setEvalFile(f);
  }));
  m_eval_info = new QLabel;
  m_eval_info->setWordWrap(true);
  data_layout->addRow(QString(), m_eval_info);
  layout->addWidget(data_box);

  auto* settings_box = new QGroupBox(tr("Quantization"));
  auto* settings_layout = new QVBoxLayout(settings_box);
  m_form = new SettingsForm;
  connect(m_form, &SettingsForm::calibrationFieldChanged, this, [this] {
    if (m_calib_file.endsWith(".jsonl")) scanCalibration();
  });
  settings_layout->addWidget(m_form);
  layout->addWidget(settings_box);

  auto* buttons = new QHBoxLayout;
  m_run_button = new QPushButton(tr("Run GPTQ and RTN"));
  m_run_button->setDefault(true);
  m_cancel_button = new QPushButton(tr("Cancel"));
  connect(m_run_button, &QPushButton::clicked, this, &MainWindow::startRun);
  connect(m_cancel_button, &QPushButton::clicked, this, &MainWindow::cancel);
  buttons->addWidget(m_run_button, 1);
  buttons->addWidget(m_cancel_button);
  layout->addStretch(1);

  // The inputs scroll; Run and Cancel stay below them, always in view, however long the form
  // and its notes grow or however small the window is.
  auto* scroll = new QScrollArea;
  scroll->setWidget(panel);
  scroll->setWidgetResizable(true);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  scroll->setMinimumWidth(panel->sizeHint().width() + 24);
  auto* outer = new QWidget;
  auto* outer_layout = new QVBoxLayout(outer);
  outer_layout->setContentsMargins(0, 0, 0, 0);
  outer_layout->addWidget(scroll, 1);
  outer_layout->addLayout(buttons);
  return outer;
}

QWidget* MainWindow::buildLayersTab() {
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
            if (!current.isValid()) return;
            selectLayer(m_filter->mapToSource(current).row());
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
  m_filter_edit = new QLineEdit;
  m_filter_edit->setPlaceholderText(tr("Filter by name"));
  m_filter_edit->setClearButtonEnabled(true);
  connect(m_filter_edit, &QLineEdit::textChanged, m_filter, &LayerFilterModel::setNamePattern);
  bar->addWidget(m_filter_edit, 1);

  auto* page = new QWidget;
  auto* layout = new QVBoxLayout(page);
  layout->addLayout(bar);
  layout->addWidget(m_table, 1);
  return page;
}

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("Open &Model…"), QKeySequence::Open, this, [this] {
    QString dir = pickDirectory("paths/model", tr("Open model folder"));
    if (!dir.isEmpty()) openModel(dir);
  });
  file->addAction(tr("Open llama2.c Checkpoint…"), this, [this] {
    QString f = pickFile("paths/model", tr("Open llama2.c checkpoint"), tr("llama2.c (*.bin);;All files (*)"), false);
    if (!f.isEmpty()) openModel(f);
  });
  m_recent_menu = file->addMenu(tr("Open &Recent"));
  file->addAction(tr("&Calibration Text…"), this, [this] {
    QString f = pickFile("paths/calib", tr("Calibration text"),
                         tr("Texts and JSONL (*.txt *.jsonl);;All files (*)"), false);
    if (!f.isEmpty()) setCalibrationFile(f);
  });
  file->addAction(tr("Calibration &Folder…"), this, [this] {
    QString dir = pickDirectory("paths/calib", tr("Calibration folder"));
    if (!dir.isEmpty()) setCalibrationFile(dir);
  });
  file->addAction(tr("&Evaluation Text…"), this, [this] {
    QString f = pickFile("paths/eval", tr("Evaluation text"), tr("Text files (*.txt);;All files (*)"), false);
    if (!f.isEmpty()) setEvalFile(f);
  });
  file->addSeparator();
  file->addAction(tr("Open Re&port…"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O), this, [this] {
    QString f = pickFile("paths/report", tr("Open report"), tr("Reports (*.json);;All files (*)"), false);
    if (!f.isEmpty()) openReport(f);
  });
  m_act_save_report = file->addAction(tr("&Save Report…"), QKeySequence::Save, this, [this] {
    QString f = pickFile("paths/report", tr("Save report"), tr("Reports (*.json)"), true);
    if (!f.isEmpty()) saveReport(f);
  });
  m_act_export = file->addAction(tr("&Export GPTQ Checkpoint…"), QKeySequence(Qt::CTRL | Qt::Key_E), this, [this] {
    QString dir = pickFile("paths/export", tr("Export GPTQ checkpoint to a new folder"), QString(), true);
    if (dir.isEmpty()) return;
    bool force = false;
    if (QFileInfo::exists(dir) || QFileInfo(dir).isSymLink()) {
      // The CLI's --force rule: only an empty folder or an export of this program is offered
      // for replacing; anything else (documents, a link, a file) is refused with the reason.
      const QString why = exportReplaceRefusal(dir);
      if (!why.isEmpty()) return showError(tr("Cannot replace this folder"), why);
      auto answer = QMessageBox::question(this, tr("Replace folder?"),
                                          tr("%1 exists. Replace it once the new checkpoint is complete?").arg(dir));
      if (answer != QMessageBox::Yes) return;
      force = true;
    }
    exportCheckpoint(dir, force);
  });
  m_act_csv = file->addAction(tr("Export &Table as CSV…"), this, [this] {
    QString f = pickFile("paths/csv", tr("Export layers table"), tr("CSV (*.csv)"), true);
    if (!f.isEmpty()) exportTableCsv(f);
  });
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* run = menuBar()->addMenu(tr("&Run"));
  m_act_run = run->addAction(tr("&Run GPTQ and RTN"), QKeySequence(Qt::CTRL | Qt::Key_R), this, &MainWindow::startRun);
  m_act_rerun = run->addAction(tr("Run Again on This Report's &Windows"), this,
                               &MainWindow::rerunOnReportWindows);
  m_act_rerun->setToolTip(tr("The open report's calibration windows (same text, seqlen and "
                             "offsets) with the form's other settings"));
  m_act_evaluate = run->addAction(tr("&Evaluate This Model"), this, &MainWindow::evaluateModel);
  m_act_evaluate->setToolTip(tr("Perplexity of the loaded model (a GPTQ checkpoint too) on the evaluation text"));
  m_act_cancel = run->addAction(tr("&Cancel"), QKeySequence(Qt::Key_Escape), this, &MainWindow::cancel);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  for (int i = 0; i < m_tabs->count(); ++i)
    view->addAction(m_tabs->tabText(i), QKeySequence(Qt::CTRL | (Qt::Key_1 + i)), this,
                    [this, i] { m_tabs->setCurrentIndex(i); });
  view->addSeparator();
  view->addAction(tr("&Log Scale for Errors"), QKeySequence(Qt::CTRL | Qt::Key_L), this,
                  [this] { m_error_chart->setLogScale(!m_error_chart->logScale()); });

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&About GPTQ Workbench"), this, [this] {
    QMessageBox::about(this, tr("About GPTQ Workbench"),
                       tr("<h3>GPTQ Workbench %1</h3>"
                          "<p>Post-training quantization of Llama-family models with GPTQ, "
                          "side by side with round-to-nearest.</p>"
                          "<p>Qt %2<br>Eigen %3.%4.%5<br>CUDA: %6</p>")
                           .arg(GPTQW_VERSION, qVersion())
                           .arg(EIGEN_WORLD_VERSION)
                           .arg(EIGEN_MAJOR_VERSION)
                           .arg(EIGEN_MINOR_VERSION)
                           .arg(qstr(cuda_status()).toHtmlEscaped()));
  });
}

QString MainWindow::logText() const { return m_log->toPlainText(); }

bool MainWindow::busy() const { return m_load->running() || m_run->running() || m_export->running(); }

bool MainWindow::canExport() const {
  return m_kept && m_kept_model && !busy() && m_report && m_report->options.run_gptq;
}

void MainWindow::updateActions() {
  const bool idle = !busy();
  // A GPTQ checkpoint can only be evaluated: the Run button says so and does that.
  const bool checkpoint = m_model && checkpoint_settings_of(*m_model);
  const bool can_evaluate = idle && m_model && !m_eval_file.isEmpty();
  const bool ready = checkpoint ? can_evaluate
                                : idle && m_model && !m_calib_file.isEmpty() &&
                                      m_form->runProblems().isEmpty();
  m_run_button->setText(checkpoint ? tr("Evaluate this GPTQ checkpoint") : tr("Run GPTQ and RTN"));
  m_run_button->setEnabled(ready);
  m_act_run->setEnabled(ready);
  m_act_evaluate->setEnabled(can_evaluate);
  m_cancel_button->setEnabled(m_run->running() || m_export->running());
  m_act_cancel->setEnabled(m_cancel_button->isEnabled());
  m_act_export->setEnabled(canExport());
  m_act_export->setToolTip(m_kept ? QString() : tr("Run first: a report holds no weights to export"));
  m_act_save_report->setEnabled(idle && m_report.has_value() && !m_save->running());
  m_act_rerun->setEnabled(idle && m_model && m_report && !m_report->calib_offsets.empty());
  m_act_csv->setEnabled(m_layers->rowCount() > 0);
  QString why;
  if (checkpoint && m_eval_file.isEmpty()) why = tr("Choose an evaluation text first.");
  else if (checkpoint) why.clear();
  else if (!m_model) why = tr("Open a model first.");
  else if (m_calib_file.isEmpty()) why = tr("Choose a calibration text first.");
  else if (!m_form->runProblems().isEmpty()) why = m_form->runProblems().join("\n");
  m_run_button->setToolTip(why);
}

void MainWindow::log(const QString& line) {
  m_log->appendPlainText(QDateTime::currentDateTime().toString("HH:mm:ss  ") + line);
}

void MainWindow::showError(const QString& title, const QString& message) {
  log(tr("error: %1").arg(message));
  m_status->setText(title);
  // Non-modal, so that the window (and a test driving it) keeps running.
  auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
  emit errorShown(message);
}

void MainWindow::onProgress(const Progress& p) {
  m_last_progress = p;
  showProgress();
}

void MainWindow::showProgress() {
  // Called on each report and every second by m_clock, so the elapsed time keeps ticking
  // through long steps. The run's own fraction (quantization and the perplexity passes
  // together) drives the one bar and the one time-left estimate.
  Job* job = m_run->running() ? m_run : m_export->running() ? m_export : m_load;
  if (!job->running() || !m_last_progress) return;
  const Progress& p = *m_last_progress;
  const double f = std::clamp(p.run_fraction >= 0 ? p.run_fraction : p.fraction, 0.0, 1.0);
  const double elapsed = job->elapsed();
  QString text = qstr(p.stage);
  if (p.block >= 0 && p.n_blocks > 0) text += tr("  block %1/%2").arg(std::min(p.block + 1, p.n_blocks)).arg(p.n_blocks);
  if (!p.module.empty()) text += "  " + qstr(p.module);
  text += tr("  %1% · %2 elapsed").arg(int(f * 100)).arg(duration(elapsed));
  if (f > 0.02 && f < 1) text += tr(", ~%1 left").arg(duration(elapsed * (1 - f) / f));
  m_status->setText(text);
  m_progress->setVisible(true);
  m_progress->setValue(static_cast<int>(f * 1000));
}

void MainWindow::openModel(const QString& path) {
  if (busy()) return showError(tr("Busy"), tr("Wait for the current task to end or cancel it."));
  m_model_edit->setText(path);
  m_status->setText(tr("Loading %1…").arg(path));
  log(tr("opening model %1").arg(path));
  auto loaded = std::make_shared<std::pair<Model, ModelSummary>>();
  m_load->start([path, loaded](const ProgressFn&) -> std::function<void()> {
    Model m = load_model(fspath(path));
    loaded->second = summarize(*m.weights, path.toStdString());
    loaded->first = std::move(m);
    return {};
  });
  auto* ctx = m_load->scope();
  connect(m_load, &Job::succeeded, ctx, [this, loaded, path] {
    m_model = loaded->first;
    const GptqSettings* settings = checkpoint_settings_of(*m_model);
    m_summary->setText(modelSummaryHtml(loaded->second, settings));
    m_form->setModelConfig(m_model->config());
    rememberRecent(path);
    m_status->setText(tr("Model loaded: %1").arg(path));
    log(tr("model: %1, %2 layers, %3 parameters, %4")
            .arg(qstr(loaded->second.architecture))
            .arg(loaded->second.num_layers)
            .arg(formatCount(loaded->second.parameters))
            .arg(qstr(loaded->second.format)));
    if (settings) log(tr("this is a GPTQ checkpoint (%1-bit): it can be evaluated, not quantized again").arg(settings->quant.bits));
    scanCalibration();
    m_flops_rate = 0;  // another model: measured again
    scanEvaluation();
    emit modelLoaded();
    if (m_run_when_ready) {
      m_run_when_ready = false;
      startRun();
    }
  });
  connect(m_load, &Job::failed, ctx, [this](const QString& msg) {
    m_run_when_ready = false;
    // The field goes back to the model that is still loaded, which the summary describes.
    m_model_edit->setText(m_model ? qstr(m_model->path.string()) : QString());
    showError(tr("Cannot open the model"), msg);
  });
  updateActions();
}

QString MainWindow::modelSummaryText() const { return m_summary->text(); }
QString MainWindow::calibrationInfo() const { return m_calib_info->text(); }

void MainWindow::setCalibrationFile(const QString& file) {
  m_calib_file = file;
  m_calib_edit->setText(file);
  const QFileInfo info(file);
  QSettings().setValue("paths/calib", info.isDir() ? info.absoluteFilePath() : info.absolutePath());
  scanCalibration();
  updateActions();
}

void MainWindow::setEvalFile(const QString& file) {
  m_eval_file = file;
  m_eval_edit->setText(file);
  if (!file.isEmpty()) QSettings().setValue("paths/eval", QFileInfo(file).absolutePath());
  scanEvaluation();
  updateActions();
}

void MainWindow::scanEvaluation() {
  m_eval_tokens = -1;
  m_eval_info->clear();
  if (m_eval_file.isEmpty() || !m_model || !m_model->tokenizer) return;
  m_eval_info->setText(tr("counting tokens…"));
  if (rescanWhenEnded(m_eval_scan, &MainWindow::scanEvaluation)) return;
  auto tokenizer = m_model->tokenizer;
  const QString file = m_eval_file;
  auto tokens = std::make_shared<int64_t>(0);
  auto rate = std::make_shared<double>(m_flops_rate);
  const Model model = *m_model;
  const int seqlen = [this] {
    try {
      return m_form->spec().eval.seqlen;
    } catch (const Error&) {
      return 512;
    }
  }();
  m_eval_scan->start([tokenizer, file, tokens, rate, model, seqlen](const ProgressFn&) -> std::function<void()> {
    // Tokenized as the perplexity pass will (BOS first where the tokenizer adds one).
    *tokens = static_cast<int64_t>(tokenizer->encode(read_text_file(fspath(file)), true).size());
    if (*rate <= 0) *rate = measure_forward_rate(model, seqlen);
    return {};
  });
  auto* ctx = m_eval_scan->scope();
  connect(m_eval_scan, &Job::succeeded, ctx, [this, tokens, rate, file] {
    if (file != m_eval_file) return;
    m_eval_tokens = *tokens;
    m_flops_rate = *rate;
    updateInfoLines();
  });
  connect(m_eval_scan, &Job::failed, ctx, [this, file](const QString& msg) {
    m_eval_info->setText(fileProblem(file, msg));
  });
}

void MainWindow::updateInfoLines() {
  // The lines under the texts follow the form: windows of the seqlen now set, and what the
  // evaluation will cost with the windows now set.
  std::optional<RunSpec> spec;
  try {
    spec = m_form->spec();
  } catch (const Error&) {
  }
  if (m_calib_tokens >= 0)
    m_calib_info->setText(spec ? tr("%1, %2 tokens: up to %3 windows of %4")
                                     .arg(m_calib_what)
                                     .arg(m_calib_tokens)
                                     .arg(m_calib_tokens / spec->seqlen)
                                     .arg(spec->seqlen)
                               : tr("%1, %2 tokens").arg(m_calib_what).arg(m_calib_tokens));
  if (m_eval_tokens < 0 || !m_model) return;
  const QString size = formatBytes(uint64_t(QFileInfo(m_eval_file).size()));
  if (!spec) {
    m_eval_info->setText(tr("%1, %2 tokens").arg(size).arg(m_eval_tokens));
    return;
  }
  const int64_t windows = perplexity_windows(m_eval_tokens, spec->eval);
  if (windows == 0) {
    m_eval_info->setText(tr("%1, %2 tokens: fewer than one window of %3")
                             .arg(size).arg(m_eval_tokens).arg(spec->eval.seqlen));
    return;
  }
  const RunCosts costs = run_stage_costs(m_model->config(), spec->options, 0,
                                         windows * spec->eval.seqlen);
  const double seconds = m_flops_rate > 0 ? costs.eval_pass * costs.eval_passes / m_flops_rate : 0;
  m_eval_info->setText(tr("%1, %2 tokens: %3 windows of %4; %5 perplexity passes, about %6")
                           .arg(size)
                           .arg(m_eval_tokens)
                           .arg(windows)
                           .arg(spec->eval.seqlen)
                           .arg(costs.eval_passes)
                           .arg(duration(seconds)));
}

QString MainWindow::statusText() const { return m_status->text(); }

QString MainWindow::staleText() const { return m_stale->isHidden() ? QString() : m_stale->text(); }

void MainWindow::updateStaleMark() {
  // The settings that change the results shown (not threads, device or evaluation windows).
  bool stale = false;
  if (m_report && !busy()) {
    try {
      const RunSpec s = m_form->spec();
      const QuantizeOptions& a = s.options;
      const QuantizeOptions& b = m_report->options;
      const QuantConfig &qa = a.gptq.quant, &qb = b.gptq.quant;
      stale = qa.bits != qb.bits || qa.group_size != qb.group_size || qa.sym != qb.sym ||
              qa.mse != qb.mse || a.gptq.act_order != b.gptq.act_order ||
              a.gptq.static_groups != b.gptq.static_groups ||
              a.gptq.damp_fraction != b.gptq.damp_fraction || a.gptq.blocksize != b.gptq.blocksize ||
              a.true_sequential != b.true_sequential || s.nsamples != m_report->nsamples ||
              s.seqlen != m_report->seqlen || s.seed != m_report->seed;
    } catch (const Error&) {
      stale = true;  // settings that cannot run are not the ones shown either
    }
  }
  m_stale->setText(tr("The results shown were made with other settings (%1, %2 x %3 tokens, "
                      "seed %4) than the form's now; Run to update them.")
                       .arg(m_report ? qstr(m_report->options.gptq.quant.describe()) : QString())
                       .arg(m_report ? m_report->nsamples : 0)
                       .arg(m_report ? m_report->seqlen : 0)
                       .arg(m_report ? qulonglong(m_report->seed) : 0));
  m_stale->setVisible(stale);
}
QString MainWindow::modelPathText() const { return m_model_edit->text(); }

bool MainWindow::rescanWhenEnded(Job* job, void (MainWindow::*scan)()) {
  // A running scan read the previous input: its result would be stale. It is cancelled, and
  // `scan` runs once it has ended (once, however often it was asked for meanwhile).
  if (!job->running()) return false;
  job->cancel();
  connect(job, &Job::ended, this, scan,
          static_cast<Qt::ConnectionType>(Qt::SingleShotConnection | Qt::UniqueConnection));
  return true;
}

void MainWindow::scanCalibration() {
  m_form->setCalibrationTokens(-1);
  m_calib_tokens = -1;
  if (m_calib_file.isEmpty()) return;
  m_calib_info->setText(tr("counting tokens…"));
  if (!m_model || !m_model->tokenizer) return;
  if (rescanWhenEnded(m_scan, &MainWindow::scanCalibration)) return;
  auto tokenizer = m_model->tokenizer;
  const QString file = m_calib_file;
  CalibrationOptions options;
  options.jsonl_field = m_form->calibrationField();
  auto tokens = std::make_shared<int64_t>(0);
  auto corpus = std::make_shared<CalibrationCorpus>();
  m_scan->start([tokenizer, file, tokens, corpus, options](const ProgressFn&) -> std::function<void()> {
    // The same reading as the run's (text, JSONL or folder).
    *corpus = read_calibration_corpus(fspath(file), options);
    *tokens = static_cast<int64_t>(tokenizer->encode(corpus->text, true).size());
    corpus->text.clear();
    return {};
  });
  auto* ctx = m_scan->scope();
  connect(m_scan, &Job::succeeded, ctx, [this, tokens, file, corpus] {
    if (file != m_calib_file) return;
    const QString what = corpus->format == "text"
                             ? tr("text")
                             : tr("%1 documents (%2)").arg(corpus->documents)
                                   .arg(corpus->format == "jsonl"
                                            ? tr("JSONL field \"%1\"").arg(QString::fromStdString(corpus->field))
                                            : tr(".txt files"));
    m_form->setCalibrationTokens(*tokens);
    m_calib_tokens = *tokens;
    m_calib_what = what;
    updateInfoLines();
  });
  connect(m_scan, &Job::failed, ctx, [this, file](const QString& msg) {
    m_calib_info->setText(fileProblem(file, msg));
    showError(tr("Cannot read the calibration text"), msg);
  });
}

void MainWindow::runWhenReady() {
  if (m_model && !m_load->running()) startRun();
  else m_run_when_ready = true;
}

void MainWindow::clearResults() {
  m_report.reset();
  m_kept.reset();
  m_kept_model.reset();
  m_layers->clear();
  m_error_chart->clear();
  m_hessian_chart->clear();
  m_memory_chart->clear();
  m_ppl_chart->clear();
  m_memory_text->clear();
  m_hessian_label->setText(tr("Select a layer in the table or the error chart."));
  updateStaleMark();
}

bool MainWindow::startRun() { return startRunWith(std::nullopt); }

bool MainWindow::rerunOnReportWindows() {
  if (busy() || !m_report) return false;
  CalibrationRecord rec = calibration_record(*m_report);
  // The recorded text where the report says it is, else the chosen one (checked against the
  // record's size and SHA-256 when the run starts).
  QString file = qstr(rec.file.string());
  if (!QFileInfo(file).isFile()) file = m_calib_file;
  if (file.isEmpty()) {
    showError(tr("Calibration text not found"),
              tr("The report's calibration text %1 is not there. Choose it with File > "
                 "Calibration Text… and run again.")
                  .arg(qstr(rec.file.string())));
    return false;
  }
  if (file != m_calib_file) setCalibrationFile(file);
  // The form shows what the run uses.
  m_form->setSamples(m_report->nsamples, m_report->seqlen);
  m_form->setSeed(static_cast<int>(std::min<uint64_t>(m_report->seed, INT32_MAX)));
  log(tr("running again on the %1 windows of %2 tokens recorded in the report")
          .arg(rec.offsets.size())
          .arg(rec.seqlen));
  return startRunWith(std::move(rec));
}

bool MainWindow::evaluateModel() {
  if (busy()) return false;
  if (!m_model) {
    showError(tr("No model"), tr("Open a model before evaluating it."));
    return false;
  }
  if (m_eval_file.isEmpty()) {
    showError(tr("No evaluation text"), tr("Choose an evaluation text (File > Evaluation Text) first."));
    return false;
  }
  PerplexityOptions options;
  try {
    options = m_form->spec().eval;
  } catch (const Error& e) {
    showError(tr("Invalid settings"), qstr(e.what()));
    return false;
  }
  // A GPTQ checkpoint is shown as the GPTQ bar, any other model as the original.
  const bool quantized = checkpoint_settings_of(*m_model) != nullptr;
  const Model model = *m_model;
  const QString text = m_eval_file;
  auto result = std::make_shared<PerplexityResult>();
  log(tr("evaluating %1 on %2").arg(qstr(model.path.string()), text));
  m_run->start([model, text, options, result](const ProgressFn& progress) -> std::function<void()> {
    *result = perplexity_of_file(model, fspath(text), options, progress);
    return {};
  });
  auto* ctx = m_run->scope();
  connect(m_run, &Job::succeeded, ctx, [this, result, quantized, text] {
    PerplexitySummary ps;
    ps.text = QFileInfo(text).fileName().toStdString();
    ps.seqlen = result->seqlen;
    ps.windows = result->windows;
    ps.tokens = result->tokens;
    ps.seconds = result->seconds;
    (quantized ? ps.gptq : ps.original) = result->ppl;
    m_ppl_chart->setPerplexity(ps);
    m_tabs->setCurrentIndex(PerplexityTab);
    log(tr("perplexity %1 on %2 (%3 windows of %4 tokens)")
            .arg(result->ppl, 0, 'f', 4)
            .arg(QFileInfo(text).fileName())
            .arg(result->windows)
            .arg(result->seqlen));
    m_status->setText(tr("Evaluated in %1: perplexity %2.")
                          .arg(duration(m_run->elapsed()))
                          .arg(result->ppl, 0, 'f', 4));
    emit evaluationFinished(result->ppl);
  });
  connect(m_run, &Job::failed, ctx, [this](const QString& msg) { showError(tr("Evaluation failed"), msg); });
  connect(m_run, &Job::cancelled, ctx, [this] { m_status->setText(tr("Evaluation cancelled.")); });
  updateActions();
  return true;
}

bool MainWindow::startRunWith(std::optional<CalibrationRecord> replay) {
  if (busy()) return false;
  if (!m_model) {
    showError(tr("No model"), tr("Open a model before running."));
    return false;
  }
  if (m_calib_file.isEmpty()) {
    showError(tr("No calibration text"), tr("Choose a calibration text before running."));
    return false;
  }
  if (checkpoint_settings_of(*m_model)) return evaluateModel();  // nothing left to quantize
  RunSpec spec;
  try {
    spec = m_form->spec();
  } catch (const Error& e) {
    showError(tr("Invalid settings"), qstr(e.what()));
    return false;
  }
  if (!m_form->runProblems().isEmpty()) {
    showError(tr("Invalid settings"), m_form->runProblems().join("\n"));
    return false;
  }
  spec.calib_file = fspath(m_calib_file);
  if (replay) {
    spec.nsamples = static_cast<int>(replay->offsets.size());
    spec.seqlen = replay->seqlen;
    spec.seed = replay->seed;
    spec.replay = std::move(replay);
  }
  if (!m_eval_file.isEmpty()) spec.eval_file = fspath(m_eval_file);
  // A cancel during the perplexity passes keeps the finished quantization.
  spec.keep_quantization_on_cancel = true;
  // The previous results stay on screen until this run's first layer replaces them.
  m_replace_results = true;
  m_tabs->setCurrentIndex(LayersTab);
  const QuantConfig& q = spec.options.gptq.quant;
  log(tr("run: %1-bit, group %2, %3, act-order %4, damping %5, %6 x %7 tokens of %8, seed %9")
          .arg(q.bits)
          .arg(q.group_size)
          .arg(q.sym ? "sym" : "asym")
          .arg(spec.options.gptq.act_order ? "on" : "off")
          .arg(spec.options.gptq.damp_fraction)
          .arg(spec.nsamples)
          .arg(spec.seqlen)
          .arg(QFileInfo(m_calib_file).fileName())
          .arg(spec.seed));

  const Model model = *m_model;
  auto kept = std::make_shared<std::map<LayerId, QuantizedWeights>>();
  auto report = std::make_shared<Report>();
  Job* job = m_run;
  m_run->start([this, job, model, spec, kept, report](const ProgressFn& progress) -> std::function<void()> {
    set_threads(spec.threads);
    const RunInputs inputs = prepare_run(model, spec);
    LayerSink sink = [&](Method m, int block, LinearKind kind, QuantizedWeights&& w) {
      if (m != Method::gptq) return;
      w.Q = Matrix();  // export needs the codes and grids only
      (*kept)[{block, kind}] = std::move(w);
    };
    *report = run_quantization(model, spec, inputs, sink, progress, [job, this](const LayerReport& r) {
      job->post([this, r] { addLayer(r); });
    });
    return [this, kept, report, model] {
      takeOverResults();
      m_kept = kept;
      m_kept_model = model;
      showReport(*report);
      m_report = std::move(*report);
      const auto& t = m_report->timing;
      log(tr("done in %1 s (calibration %2, hessian %3, factor %4, gptq %5, rtn %6, metrics %7, "
             "forward %8); peak memory %9")
              .arg(t.seconds, 0, 'f', 2)
              .arg(t.seconds_calibration, 0, 'f', 2)
              .arg(t.seconds_hessian, 0, 'f', 2)
              .arg(t.seconds_factor, 0, 'f', 2)
              .arg(t.seconds_gptq, 0, 'f', 2)
              .arg(t.seconds_rtn, 0, 'f', 2)
              .arg(t.seconds_metrics, 0, 'f', 2)
              .arg(t.seconds_forward, 0, 'f', 2)
              .arg(formatBytes(m_report->peak_rss_bytes)));
      if (const auto& p = m_report->perplexity)
        log(tr("perplexity on %1: original %2, RTN %3, GPTQ %4")
                .arg(QFileInfo(qstr(p->text)).fileName())
                .arg(p->original.value_or(0), 0, 'f', 4)
                .arg(p->rtn.value_or(0), 0, 'f', 4)
                .arg(p->gptq.value_or(0), 0, 'f', 4));
      for (const UnloadableModule& k : m_report->kept_for_loaders)
        log(tr("%1 kept in fp16: %2 (GPTQ loaders could not load it quantized)")
                .arg(QString::fromStdString(std::string(linear_name(k.kind))))
                .arg(qstr(k.reason)));
      // The whole run, evaluation included, as the clock showed it.
      if (m_report->evaluation_cancelled) {
        log(tr("evaluation cancelled: the quantization is kept (no perplexity)"));
        m_status->setText(tr("Done in %1 (evaluation skipped).").arg(duration(m_run->elapsed())));
      } else {
        m_status->setText(tr("Done in %1.").arg(duration(m_run->elapsed())));
      }
      updateStaleMark();
      emit runFinished();
    };
  });
  auto* ctx = m_run->scope();
  connect(m_run, &Job::failed, ctx, [this](const QString& msg) {
    showError(tr("The run failed"), msg);
    emit runFailed(msg);
  });
  connect(m_run, &Job::cancelled, ctx, [this] {
    if (m_replace_results) {
      log(tr("run cancelled before its first layer; the previous results stay"));
    } else {
      clearResults();
      log(tr("run cancelled; nothing kept"));
    }
    m_replace_results = false;
    m_status->setText(tr("Cancelled."));
    emit runCancelled();
  });
  updateActions();
  return true;
}

void MainWindow::cancel() {
  if (m_run->running()) m_run->cancel();
  if (m_export->running()) m_export->cancel();
  if (m_run->running() || m_export->running()) m_status->setText(tr("Cancelling…"));
}

void MainWindow::takeOverResults() {
  if (m_replace_results) clearResults();
  m_replace_results = false;
}

void MainWindow::addLayer(const LayerReport& r) {
  if (!m_run->running()) return;  // a straggler from a cancelled run
  takeOverResults();
  m_layers->appendLayer(r);
  m_error_chart->addLayer(r);
  if (r.damp_raises > 0 || r.fell_back_to_rtn || !r.note.empty())
    log(QString("%1: %2").arg(qstr(r.name), qstr(r.note)));
  if (m_layers->rowCount() == 1) selectLayer(0);
}

void MainWindow::showReport(const Report& r) {
  m_layers->setLayers(r.layers);
  m_error_chart->setLayers(r.layers);
  m_memory_chart->setData(r.memory, r.layers);
  m_ppl_chart->setPerplexity(r.perplexity);
  const MemorySummary& m = r.memory;
  m_memory_text->setText(
      tr("Weights: %1 in fp16 → %2 quantized (%3 bits per quantized weight). Estimated VRAM for "
         "the weights: %4 → %5, saving %6 (%7%).")
          .arg(formatBytes(m.fp16_bytes), formatBytes(m.quantized_bytes))
          .arg(m.bits_per_weight, 0, 'f', 2)
          .arg(formatBytes(m.fp16_bytes), formatBytes(m.quantized_bytes),
               formatBytes(m.fp16_bytes - std::min(m.fp16_bytes, m.quantized_bytes)))
          .arg(m.saving_percent, 0, 'f', 1));
  if (!r.layers.empty()) selectLayer(0);
}

void MainWindow::selectLayer(int index) {
  if (index < 0 || index >= m_layers->rowCount()) {
    m_hessian_chart->setLayer(nullptr);
    m_error_chart->selectLayer(-1);
    return;
  }
  const LayerReport& l = m_layers->layer(index);
  m_hessian_chart->setLayer(&l);
  m_error_chart->selectLayer(index);
  m_hessian_label->setText(tr("%1: diagonal min %2, median %3, max %4, dead %5%")
                               .arg(qstr(l.name))
                               .arg(l.hessian.min, 0, 'g', 4)
                               .arg(l.hessian.median, 0, 'g', 4)
                               .arg(l.hessian.max, 0, 'g', 4)
                               .arg(l.hessian.dead_fraction * 100, 0, 'f', 1));
  // Keep the table's selection in step (the table maps through the filter and sort).
  QModelIndex proxy = m_filter->mapFromSource(m_layers->index(index, 0));
  if (proxy.isValid() && m_table->currentIndex().row() != proxy.row()) {
    QSignalBlocker block(m_table->selectionModel());
    m_table->selectionModel()->setCurrentIndex(proxy, QItemSelectionModel::ClearAndSelect | QItemSelectionModel::Rows);
    m_table->scrollTo(proxy);
  }
}

QString MainWindow::exportReplaceRefusal(const QString& dir) const {
  GptqExportOptions eo;
  if (m_kept_model) eo.source_dir = m_kept_model->path;
  eo.output_dir = fspath(dir);
  eo.force = true;
  try {
    check_export_destination(eo);
  } catch (const Error& e) {
    return qstr(e.what());
  }
  return {};
}

bool MainWindow::exportCheckpoint(const QString& dir, bool force) {
  if (!canExport()) {
    showError(tr("Nothing to export"), tr("Run GPTQ first: export writes the weights of this session's run."));
    return false;
  }
  GptqExportOptions eo;
  eo.source_dir = m_kept_model->path;
  eo.output_dir = fspath(dir);
  eo.force = force;
  eo.settings = checkpoint_settings(m_report->options);
  eo.report = to_json(*m_report);
  auto kept = m_kept;
  const Model model = *m_kept_model;
  auto written = std::make_shared<std::filesystem::path>();
  log(tr("exporting the GPTQ checkpoint to %1").arg(dir));
  m_export->start([kept, model, eo, written](const ProgressFn& progress) -> std::function<void()> {
    *written = export_gptq(*model.weights, eo, [&](int block, LinearKind kind) {
      return QuantizedLinear{kept->at({block, kind}), std::nullopt};
    }, progress);
    return {};
  });
  auto* ctx = m_export->scope();
  connect(m_export, &Job::succeeded, ctx, [this, written] {
    const QString dest = qstr(written->string());
    log(tr("exported to %1").arg(dest));
    m_status->setText(tr("Exported to %1").arg(dest));
    QSettings().setValue("paths/export", QFileInfo(dest).absolutePath());
    emit exportFinished(dest);
  });
  connect(m_export, &Job::failed, ctx, [this](const QString& msg) { showError(tr("Export failed"), msg); });
  connect(m_export, &Job::cancelled, ctx, [this] {
    log(tr("export cancelled; nothing written"));
    m_status->setText(tr("Export cancelled."));
  });
  updateActions();
  return true;
}

void MainWindow::openReport(const QString& file) {
  if (busy()) return showError(tr("Busy"), tr("Wait for the current task to end or cancel it."));
  auto loaded = std::make_shared<Report>();
  m_load->start([file, loaded](const ProgressFn&) -> std::function<void()> {
    *loaded = load_report(fspath(file));
    return {};
  });
  auto* ctx = m_load->scope();
  connect(m_load, &Job::succeeded, ctx, [this, loaded, file] {
    clearResults();
    showReport(*loaded);
    m_report = std::move(*loaded);
    // The summary describes the loaded model, which the field names and Run uses; with none
    // loaded, it shows the report's model and says where it comes from.
    if (!m_model)
      m_summary->setText(tr("<p><i>From the report %1 (no model is loaded):</i></p>")
                             .arg(QFileInfo(file).fileName().toHtmlEscaped()) +
                         modelSummaryHtml(m_report->model, nullptr));
    QSettings().setValue("paths/report", QFileInfo(file).absolutePath());
    log(tr("opened report %1 (%2 layers, made by %3 on %4)")
            .arg(file)
            .arg(m_report->layers.size())
            .arg(qstr(m_report->tool_version), qstr(m_report->created)));
    m_status->setText(tr("Report: %1").arg(file));
    updateStaleMark();
    emit reportOpened();
  });
  connect(m_load, &Job::failed, ctx, [this](const QString& msg) { showError(tr("Cannot open the report"), msg); });
}

bool MainWindow::saveReport(const QString& file) {
  if (!m_report || m_save->running()) return false;
  // The destination is refused at once (a link, the model folder); serialising and writing a
  // large report runs on the worker thread, from a copy, so a new run may start meanwhile.
  std::filesystem::path dest;
  try {
    dest = check_output_file(fspath(file));
  } catch (const Error& e) {
    showError(tr("Cannot save the report"), qstr(e.what()));
    return false;
  }
  auto report = std::make_shared<const Report>(*m_report);
  QObject* ctx = m_save->scope();
  connect(m_save, &Job::failed, ctx,
          [this](const QString& msg) { showError(tr("Cannot save the report"), msg); });
  return m_save->start([this, report, dest, file](const ProgressFn&) -> std::function<void()> {
    save_report(*report, dest);
    return [this, file] {
      QSettings().setValue("paths/report", QFileInfo(file).absolutePath());
      log(tr("report saved to %1").arg(file));
      emit reportSaved(file);
    };
  });
}

bool MainWindow::exportTableCsv(const QString& file) {
  QString error;
  if (!exportCsv(*m_filter, file, &error)) {
    showError(tr("Cannot write the table"), error);
    return false;
  }
  log(tr("table saved to %1").arg(file));
  return true;
}

void MainWindow::rememberRecent(const QString& path) {
  QSettings st;
  QStringList recent = st.value("recentModels").toStringList();
  recent.removeAll(path);
  recent.prepend(path);
  while (recent.size() > kMaxRecent) recent.removeLast();
  st.setValue("recentModels", recent);
  st.setValue("paths/model", QFileInfo(path).absolutePath());
  rebuildRecentMenu();
}

void MainWindow::rebuildRecentMenu() {
  m_recent_menu->clear();
  const QStringList recent = QSettings().value("recentModels").toStringList();
  for (const QString& path : recent) m_recent_menu->addAction(path, this, [this, path] { openModel(path); });
  m_recent_menu->setEnabled(!recent.isEmpty());
}

QString MainWindow::pickDirectory(const QString& key, const QString& title) {
  QString dir = QFileDialog::getExistingDirectory(this, title, QSettings().value(key).toString());
  return dir;
}

QString MainWindow::pickFile(const QString& key, const QString& title, const QString& filter, bool save) {
  const QString start = QSettings().value(key).toString();
  return save ? QFileDialog::getSaveFileName(this, title, start, filter)
              : QFileDialog::getOpenFileName(this, title, start, filter);
}

void MainWindow::closeEvent(QCloseEvent* e) {
  if (m_run->running() || m_export->running()) {
    auto answer = QMessageBox::question(this, tr("Quit?"), tr("A task is running. Cancel it and quit?"));
    if (answer != QMessageBox::Yes) return e->ignore();
  }
  QSettings st;
  st.setValue("window/geometry", saveGeometry());
  st.setValue("window/splitter", m_splitter->saveState());
  m_form->save(st);
  e->accept();  // the jobs' destructors cancel and join their threads
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (e->mimeData()->hasUrls()) e->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* e) {
  // A model folder or a .bin is a model, another folder calibration documents, a .json a
  // report, any other file a text: the calibration text first, then the evaluation text.
  for (const QUrl& url : e->mimeData()->urls()) {
    const QString path = url.toLocalFile();
    if (path.isEmpty()) continue;
    QFileInfo info(path);
    // A folder without config.json is a calibration folder of .txt files.
    const bool model_dir = info.isDir() && QFileInfo::exists(path + "/config.json");
    if (model_dir || info.suffix() == "bin") openModel(path);
    else if (info.isDir()) setCalibrationFile(path);
    else if (info.suffix() == "json") openReport(path);
    else if (m_calib_file.isEmpty()) setCalibrationFile(path);
    else setEvalFile(path);
    e->acceptProposedAction();
    return;
  }
}

}  // namespace gptqw::ui
