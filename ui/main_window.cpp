#include "main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QKeyEvent>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QScreen>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <Eigen/Core>

#include "backend/backend.h"
#include "common/error.h"
#include "advisor_page.h"
#include "csv_export.h"
#include "file_dialogs.h"
#include "format.h"
#include "inputs_panel.h"
#include "layer_filter_model.h"
#include "layer_table_model.h"
#include "plots/error_chart.h"
#include "results_pages.h"
#include "results_view.h"
#include "run_session.h"
#include "settings_form.h"

namespace gptqw::ui {

namespace {
constexpr int kMaxRecent = 8;
}  // namespace

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent), m_session(new RunSession(this)) {
  setWindowTitle(tr("GPTQ Workbench"));
  setAcceptDrops(true);
  setMinimumSize(900, 600);

  m_inputs = new InputsPanel(m_session);
  m_results = new ResultsView(m_session);
  m_splitter = new QSplitter(Qt::Horizontal);
  m_splitter->setChildrenCollapsible(false);
  m_splitter->addWidget(m_inputs);
  m_splitter->addWidget(m_results);
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

  connect(m_inputs, &InputsPanel::runClicked, this, &MainWindow::startRun);
  connect(m_inputs, &InputsPanel::cancelClicked, this, &MainWindow::cancel);
  connect(m_results->advisor(), &AdvisorPage::measureClicked, this, &MainWindow::startAdvice);
  connect(m_inputs, &InputsPanel::readinessChanged, this, &MainWindow::updateActions);
  connect(m_inputs, &InputsPanel::settingsChanged, this, &MainWindow::updateStaleMark);

  connect(m_session, &RunSession::statusChanged, m_status, &QLabel::setText);
  connect(m_session, &RunSession::errorOccurred, this, &MainWindow::showError);
  connect(m_session, &RunSession::progress, this, [this](const Progress& p) {
    m_last_progress = p;
    showProgress();
  });
  connect(m_session, &RunSession::busyChanged, this, [this] {
    if (!m_session->busy()) m_last_progress.reset();
    m_progress->setVisible(m_session->busy());
    updateActions();
    updateStaleMark();
  });
  connect(m_session, &RunSession::reportReady, this, &MainWindow::updateStaleMark);
  connect(m_results->layers()->model(), &QAbstractItemModel::rowsInserted, this, &MainWindow::updateActions);
  connect(m_results->layers()->model(), &QAbstractItemModel::modelReset, this, &MainWindow::updateActions);
  connect(m_session, &RunSession::resultsCleared, this, &MainWindow::updateStaleMark);
  connect(m_session, &RunSession::modelLoaded, this, [this] {
    rememberRecent(QString::fromStdString(m_session->model()->path.string()));
    if (m_run_when_ready) {
      m_run_when_ready = false;
      startRun();
    }
  });
  connect(m_session, &RunSession::modelLoadFailed, this, [this] { m_run_when_ready = false; });
  // The status line's clock ticks between progress reports (a block can take minutes).
  auto* tick = new QTimer(this);
  connect(tick, &QTimer::timeout, this, &MainWindow::showProgress);
  tick->start(1000);

  // Every text field of the window hands the menus' shortcuts on (see eventFilter), those
  // created later too.
  qApp->installEventFilter(this);

  QSettings st;
  if (!restoreGeometry(st.value("window/geometry").toByteArray())) resize(1440, 900);
  fitScreen();
  m_splitter->restoreState(st.value("window/splitter").toByteArray());
  m_inputs->settingsForm()->restore(st);
  rebuildRecentMenu();
  updateActions();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildMenus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("Open &Model…"), QKeySequence::Open, this, [this] {
    const QString dir = askForPath(this, PathKind::ModelFolder);
    if (!dir.isEmpty()) openModel(dir);
  });
  file->addAction(tr("Open llama2.c Checkpoint…"), this, [this] {
    const QString f = askForPath(this, PathKind::ModelFile);
    if (!f.isEmpty()) openModel(f);
  });
  m_recent_menu = file->addMenu(tr("Open &Recent"));
  file->addAction(tr("&Calibration Text…"), this, [this] {
    const QString f = askForPath(this, PathKind::CalibrationText);
    if (!f.isEmpty()) setCalibrationFile(f);
  });
  file->addAction(tr("Calibration &Folder…"), this, [this] {
    const QString dir = askForPath(this, PathKind::CalibrationFolder);
    if (!dir.isEmpty()) setCalibrationFile(dir);
  });
  file->addAction(tr("&Evaluation Text…"), this, [this] {
    const QString f = askForPath(this, PathKind::EvaluationText);
    if (!f.isEmpty()) setEvalFile(f);
  });
  file->addSeparator();
  file->addAction(tr("Open Re&port…"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O), this, [this] {
    const QString f = askForPath(this, PathKind::ReportToOpen);
    if (!f.isEmpty()) openReport(f);
  });
  m_act_save_report = file->addAction(tr("&Save Report…"), QKeySequence::Save, this, [this] {
    const QString f = askForPath(this, PathKind::ReportToSave);
    if (!f.isEmpty()) saveReport(f);
  });
  m_act_export = file->addAction(tr("&Export GPTQ Checkpoint…"), QKeySequence(Qt::CTRL | Qt::Key_E), this,
                                 &MainWindow::exportInteractively);
  m_act_csv = file->addAction(tr("Export &Table as CSV…"), this, [this] {
    const QString f = askForPath(this, PathKind::TableCsv);
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
  m_act_advise = run->addAction(tr("&Measure Sensitivity for a Mixed-Precision Plan"), this, &MainWindow::startAdvice);
  m_act_advise->setToolTip(tr("The Advisor view's budgets and candidates, the form's windows and GPTQ settings"));
  m_act_cancel = run->addAction(tr("&Cancel"), QKeySequence(Qt::Key_Escape), this, &MainWindow::cancel);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  QTabWidget* tabs = m_results->tabs();
  for (int i = 0; i < tabs->count(); ++i)
    view->addAction(tabs->tabText(i), QKeySequence(Qt::CTRL | (Qt::Key_1 + i)), this,
                    [tabs, i] { tabs->setCurrentIndex(i); });
  view->addSeparator();
  view->addAction(tr("&Log Scale for Errors"), QKeySequence(Qt::CTRL | Qt::Key_L), this, [this] {
    plots::ErrorChart* chart = m_results->errors()->chart();
    chart->setLogScale(!chart->logScale());
  });

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

void MainWindow::updateActions() {
  const RunSession& s = *m_session;
  const bool idle = !s.busy();
  m_act_run->setEnabled(m_inputs->readiness().ready);
  m_act_evaluate->setEnabled(idle && s.model() && !s.evaluationFile().isEmpty());
  m_act_cancel->setEnabled(s.cancellable());
  m_act_advise->setEnabled(idle && s.model() && !s.checkpointSettings() && !s.calibrationFile().isEmpty());
  m_act_export->setEnabled(s.canExport());
  m_act_export->setToolTip(s.hasKeptWeights() ? QString() : tr("Run first: a report holds no weights to export"));
  m_act_save_report->setEnabled(idle && s.report() && !s.savingReport());
  m_act_rerun->setEnabled(idle && s.model() && s.report() && !s.report()->calib_offsets.empty());
  m_act_csv->setEnabled(m_results->layers()->model()->rowCount() > 0);
}

void MainWindow::updateStaleMark() { m_results->compareWithSettings(m_inputs->currentSpec()); }

void MainWindow::showError(const QString& title, const QString& message) {
  m_status->setText(title);
  // Non-modal, so that the window (and a test driving it) keeps running.
  auto* box = new QMessageBox(QMessageBox::Critical, title, message, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
  emit errorShown(message);
}

void MainWindow::showProgress() {
  // Called on each report and every second, so the elapsed time keeps ticking through long
  // steps. The run's own fraction (quantization and the perplexity passes together) drives the
  // one bar and the one time-left estimate.
  if (!m_session->busy() || !m_last_progress) return;
  const Progress& p = *m_last_progress;
  const double f = std::clamp(p.run_fraction >= 0 ? p.run_fraction : p.fraction, 0.0, 1.0);
  const double elapsed = m_session->elapsed();
  QString text = qstr(p.stage);
  if (p.block >= 0 && p.n_blocks > 0)
    text += tr("  block %1/%2").arg(std::min(p.block + 1, p.n_blocks)).arg(p.n_blocks);
  if (!p.module.empty()) text += "  " + qstr(p.module);
  text += tr("  %1% · %2 elapsed").arg(int(f * 100)).arg(duration(elapsed));
  if (f > 0.02 && f < 1) text += tr(", ~%1 left").arg(duration(elapsed * (1 - f) / f));
  m_status->setText(text);
  m_progress->setVisible(true);
  m_progress->setValue(static_cast<int>(f * 1000));
}

QString MainWindow::statusText() const { return m_status->text(); }

// --- what the menus do ----------------------------------------------------------------------------

void MainWindow::openModel(const QString& path) { m_session->openModel(path); }
void MainWindow::openReport(const QString& file) { m_session->openReport(file); }
void MainWindow::setCalibrationFile(const QString& file) { m_session->setCalibrationFile(file); }
void MainWindow::setEvalFile(const QString& file) { m_session->setEvaluationFile(file); }
void MainWindow::cancel() { m_session->cancel(); }
bool MainWindow::saveReport(const QString& file) { return m_session->saveReport(file); }
bool MainWindow::exportCheckpoint(const QString& dir, bool force) { return m_session->exportCheckpoint(dir, force); }

void MainWindow::runWhenReady() {
  if (m_session->model() && !m_session->busy()) startRun();
  else m_run_when_ready = true;
}

bool MainWindow::startRun() {
  if (m_session->checkpointSettings()) return evaluateModel();  // nothing left to quantize
  SettingsForm* form = m_inputs->settingsForm();
  if (!form->runProblems().isEmpty()) {
    showError(tr("Invalid settings"), form->runProblems().join("\n"));
    return false;
  }
  try {
    return m_session->startRun(form->spec());
  } catch (const Error& e) {
    showError(tr("Invalid settings"), qstr(e.what()));
    return false;
  }
}

bool MainWindow::startAdvice() {
  SettingsForm* form = m_inputs->settingsForm();
  AdviceSpec spec;
  QString problem;
  if (!m_results->advisor()->adviceOptions(&spec, &problem)) {
    showError(tr("Invalid advisor settings"), problem);
    return false;
  }
  try {
    // The advisor tries its own candidates: the form's bits and group size do not matter, its
    // windows and other GPTQ settings (sym, damping, act-order) do.
    spec.run = form->spec();
    return m_session->startAdvice(std::move(spec));
  } catch (const Error& e) {
    showError(tr("Invalid settings"), qstr(e.what()));
    return false;
  }
}

bool MainWindow::evaluateModel() {
  try {
    return m_session->evaluate(m_inputs->settingsForm()->spec().eval);
  } catch (const Error& e) {
    showError(tr("Invalid settings"), qstr(e.what()));
    return false;
  }
}

bool MainWindow::rerunOnReportWindows() {
  const auto& report = m_session->report();
  if (m_session->busy() || !report) return false;
  CalibrationRecord rec = calibration_record(*report);
  // The recorded text where the report says it is, else the chosen one (checked against the
  // record's size and SHA-256 when the run starts).
  QString file = qstr(rec.file.string());
  if (!QFileInfo(file).isFile()) file = m_session->calibrationFile();
  if (file.isEmpty()) {
    showError(tr("Calibration text not found"),
              tr("The report's calibration text %1 is not there. Choose it with File > "
                 "Calibration Text… and run again.")
                  .arg(qstr(rec.file.string())));
    return false;
  }
  if (file != m_session->calibrationFile()) setCalibrationFile(file);
  // The form shows what the run uses.
  SettingsForm* form = m_inputs->settingsForm();
  form->setSamples(report->nsamples, report->seqlen);
  form->setSeed(static_cast<int>(std::min<uint64_t>(report->seed, INT32_MAX)));
  m_results->log()->append(tr("running again on the %1 windows of %2 tokens recorded in the report")
                               .arg(rec.offsets.size())
                               .arg(rec.seqlen));
  try {
    return m_session->startRun(form->spec(), std::move(rec));
  } catch (const Error& e) {
    showError(tr("Invalid settings"), qstr(e.what()));
    return false;
  }
}

void MainWindow::exportInteractively() {
  const QString dir = askForPath(this, PathKind::ExportFolder);
  if (dir.isEmpty()) return;
  bool force = false;
  if (QFileInfo::exists(dir) || QFileInfo(dir).isSymLink()) {
    // The CLI's --force rule: only an empty folder or an export of this program is offered
    // for replacing; anything else (documents, a link, a file) is refused with the reason.
    const QString why = m_session->exportReplaceRefusal(dir);
    if (!why.isEmpty()) return showError(tr("Cannot replace this folder"), why);
    auto answer = QMessageBox::question(this, tr("Replace folder?"),
                                        tr("%1 exists. Replace it once the new checkpoint is complete?").arg(dir));
    if (answer != QMessageBox::Yes) return;
    force = true;
  }
  exportCheckpoint(dir, force);
}

bool MainWindow::exportTableCsv(const QString& file) {
  QString error;
  if (!exportCsv(*m_results->layers()->filter(), file, &error)) {
    showError(tr("Cannot write the table"), error);
    return false;
  }
  m_results->log()->append(tr("table saved to %1").arg(file));
  return true;
}

// --- window chrome ----------------------------------------------------------------------------------

void MainWindow::fitScreen() {
  // Never larger than the screen the window opens on (a geometry restored from a larger
  // monitor included), and on it.
  const QScreen* screen = this->screen() ? this->screen() : QGuiApplication::primaryScreen();
  if (!screen) return;
  const QRect avail = screen->availableGeometry();
  setMinimumSize(minimumSize().boundedTo(avail.size()));
  resize(size().boundedTo(avail.size()));
  if (!avail.contains(frameGeometry())) move(avail.topLeft());
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

bool MainWindow::eventFilter(QObject* watched, QEvent* e) {
  if (e->type() == QEvent::ShortcutOverride && watched->isWidgetType() &&
      isAncestorOf(static_cast<QWidget*>(watched))) {
    const auto* key = static_cast<QKeyEvent*>(e);
    const QKeySequence pressed(key->modifiers() | key->key());
    // Filtered out unaccepted, the event lets the shortcut reach the menu's action.
    for (QAction* a : {m_act_export, m_act_run})
      if (a->isEnabled() && a->shortcut() == pressed) return true;
  }
  return QMainWindow::eventFilter(watched, e);
}

void MainWindow::closeEvent(QCloseEvent* e) {
  if (m_session->cancellable()) {
    auto answer = QMessageBox::question(this, tr("Quit?"), tr("A task is running. Cancel it and quit?"));
    if (answer != QMessageBox::Yes) return e->ignore();
  }
  QSettings st;
  st.setValue("window/geometry", saveGeometry());
  st.setValue("window/splitter", m_splitter->saveState());
  m_inputs->settingsForm()->save(st);
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
    else if (m_session->calibrationFile().isEmpty()) setCalibrationFile(path);
    else setEvalFile(path);
    e->acceptProposedAction();
    return;
  }
}

}  // namespace gptqw::ui
