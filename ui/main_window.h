// The workbench's main window: a thin shell that stacks the inputs panel and the results view
// over one run session, and keeps what belongs to a window: the menus and their shortcuts, the
// recent models, drag and drop, the status line with the one progress bar, error dialogs, and
// its geometry. Everything it shows is owned by the session (data, jobs) or by the panels.
//
// The public slots are what the menus call and what the tests and the command line drive.
#pragma once

#include <QMainWindow>
#include <optional>

#include "common/progress.h"
#include "pipeline/calibration.h"

class QAction;
class QLabel;
class QMenu;
class QProgressBar;
class QSplitter;

namespace gptqw::ui {

class InputsPanel;
class ResultsView;
class RunSession;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  RunSession* session() const { return m_session; }
  InputsPanel* inputs() const { return m_inputs; }
  ResultsView* results() const { return m_results; }
  QString statusText() const;  // the status line

 public slots:
  void openModel(const QString& path);
  void openReport(const QString& file);
  void setCalibrationFile(const QString& file);
  void setEvalFile(const QString& file);  // empty: no evaluation
  // Starts the comparison once the model is loaded (now, or when the load in progress ends).
  void runWhenReady();
  // Run: GPTQ and RTN with the form's settings, or, for a GPTQ checkpoint (which cannot be
  // quantized again), its perplexity. False when nothing started.
  bool startRun();
  // Run > Evaluate: perplexity of the loaded model on the evaluation text.
  bool evaluateModel();
  // Runs again on exactly the windows of the open report (its calibration text, checked by
  // size and SHA-256, its seqlen and offsets), with the form's other settings.
  bool rerunOnReportWindows();
  // Advisor > Measure: each unit's sensitivity and the plans, with the form's model, calibration
  // windows and GPTQ settings and the Advisor view's budgets and candidates.
  bool startAdvice();
  void cancel();
  bool exportCheckpoint(const QString& dir, bool force);
  bool saveReport(const QString& file);
  bool exportTableCsv(const QString& file);

 signals:
  void errorShown(const QString& message);

 protected:
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  // The menus' shortcuts win over a focused text field's own use of the key (a line edit
  // takes Ctrl+E as "end of line"): Export is Ctrl+E wherever the focus is.
  bool eventFilter(QObject* watched, QEvent* e) override;

 private:
  void buildMenus();
  void updateActions();
  void updateStaleMark();
  void showError(const QString& title, const QString& message);
  void showProgress();
  void exportInteractively();
  void fitScreen();
  void rememberRecent(const QString& path);
  void rebuildRecentMenu();

  RunSession* m_session;
  InputsPanel* m_inputs;
  ResultsView* m_results;
  QSplitter* m_splitter;
  QLabel* m_status;
  QProgressBar* m_progress;
  std::optional<Progress> m_last_progress;
  bool m_run_when_ready = false;

  QMenu* m_recent_menu;
  QAction *m_act_run, *m_act_rerun, *m_act_advise, *m_act_evaluate, *m_act_cancel, *m_act_export, *m_act_save_report,
      *m_act_csv;
};

}  // namespace gptqw::ui
