// The workbench's main window: pick a model, a calibration corpus and an evaluation text, set
// the quantization, run GPTQ and RTN side by side on a worker thread, watch the layers stream
// in (table and charts), export the GPTQ checkpoint, open and save reports.
//
// Every long operation (loading, counting tokens, the run, the export) is a Job on its own
// thread; the window only ever waits for events. The public slots are what the menus call and
// what the tests and the command line drive.
#pragma once

#include <QMainWindow>
#include <map>
#include <memory>
#include <optional>

#include "job.h"
#include "model/model.h"
#include "pipeline/report.h"
#include "quant/quantizer.h"

class QAction;
class QCheckBox;
class QLabel;
class QLineEdit;
class QMenu;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSplitter;
class QTabWidget;
class QTableView;

namespace gptqw::ui {

class LayerFilterModel;
class LayerTableModel;
class SettingsForm;
namespace plots {
class ErrorChart;
class HessianChart;
class MemoryChart;
class PerplexityChart;
}  // namespace plots

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  enum Tab { LayersTab, ErrorTab, HessianTab, MemoryTab, PerplexityTab, LogTab };

  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  SettingsForm* settingsForm() const { return m_form; }
  LayerTableModel* layerModel() const { return m_layers; }
  LayerFilterModel* layerFilter() const { return m_filter; }
  QTableView* layerView() const { return m_table; }
  plots::ErrorChart* errorChart() const { return m_error_chart; }
  plots::HessianChart* hessianChart() const { return m_hessian_chart; }
  plots::MemoryChart* memoryChart() const { return m_memory_chart; }
  plots::PerplexityChart* perplexityChart() const { return m_ppl_chart; }
  QTabWidget* tabs() const { return m_tabs; }
  const std::optional<Report>& report() const { return m_report; }
  const std::optional<Model>& model() const { return m_model; }
  QString logText() const;
  QString modelSummaryText() const;  // the model panel's summary (rich text)
  QString calibrationInfo() const;   // the line under the calibration path: documents, tokens
  bool busy() const;
  bool canExport() const;
  // Why File > Export may not replace the existing `dir` (the rule of gptqw --force: only an
  // empty folder or an export of this program, never through a link), or empty when it may.
  QString exportReplaceRefusal(const QString& dir) const;

 public slots:
  void openModel(const QString& path);
  void setCalibrationFile(const QString& file);
  void setEvalFile(const QString& file);  // empty: no evaluation
  QString statusText() const;     // the status line (tests)
  QString modelPathText() const;  // the model field (tests)
  // The line above the results when they were made with other settings than the form's; empty
  // when they match.
  QString staleText() const;
  // Starts the comparison once the model is loaded (now, or when the load in progress ends).
  void runWhenReady();
  bool startRun();
  // Perplexity of the loaded model on the evaluation text (Run > Evaluate; the Run button does
  // this for a GPTQ checkpoint, which cannot be quantized again). False when nothing started.
  bool evaluateModel();
  // Runs again on exactly the windows of the open report (its calibration text, checked by
  // size and SHA-256, its seqlen and offsets), with the form's other settings.
  bool rerunOnReportWindows();
  void cancel();
  bool exportCheckpoint(const QString& dir, bool force);
  void openReport(const QString& file);
  bool saveReport(const QString& file);
  bool exportTableCsv(const QString& file);
  void selectLayer(int index);  // index into the run's layers; -1 clears

 signals:
  void modelLoaded();
  void runFinished();
  void runCancelled();
  void runFailed(const QString& message);
  void exportFinished(const QString& dir);
  void reportSaved(const QString& file);
  void evaluationFinished(double perplexity);
  void reportOpened();
  void errorShown(const QString& message);

 protected:
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  QWidget* buildInputs();
  QWidget* buildLayersTab();
  void buildMenus();
  void updateActions();
  bool startRunWith(std::optional<CalibrationRecord> replay);
  void showError(const QString& title, const QString& message);
  void log(const QString& line);
  void clearResults();
  void showReport(const Report& r);
  void addLayer(const LayerReport& r);
  void onProgress(const Progress& p);
  void scanEvaluation();
  bool rescanWhenEnded(Job* job, void (MainWindow::*scan)());
  // The previous run's results give way to this run's (at its first layer, or its end).
  void takeOverResults();
  void updateInfoLines();
  void updateStaleMark();
  void showProgress();
  void scanCalibration();
  void rememberRecent(const QString& path);
  void rebuildRecentMenu();
  QString pickDirectory(const QString& key, const QString& title);
  QString pickFile(const QString& key, const QString& title, const QString& filter, bool save);

  Job* m_load;    // model or report
  Job* m_scan;    // counting the calibration text's tokens
  Job* m_run;     // GPTQ + RTN + perplexity
  Job* m_export;  // writing the checkpoint
  Job* m_save;    // writing the report (a 7B report holds about a million floats)
  Job* m_eval_scan;  // counting the evaluation text's tokens
  bool m_run_when_ready = false;
  bool m_replace_results = false;  // a run started; its first layer replaces what is shown
  std::optional<Progress> m_last_progress;

  std::optional<Model> m_model;
  QString m_calib_file, m_eval_file;
  std::optional<Report> m_report;
  // The finished run's GPTQ layers (codes, scales, zeros, g_idx; the fp32 Q dropped) and the
  // model and settings they came from, for Export. Empty after opening a report: a report holds
  // no weights.
  std::shared_ptr<const std::map<LayerId, QuantizedWeights>> m_kept;
  std::optional<Model> m_kept_model;

  SettingsForm* m_form;
  QLabel *m_summary, *m_calib_info, *m_eval_info, *m_status, *m_memory_text, *m_stale;
  int64_t m_calib_tokens = -1, m_eval_tokens = -1;
  QString m_calib_what;
  double m_flops_rate = 0;  // measured once, for the evaluation's time estimate
  QLineEdit *m_model_edit, *m_calib_edit, *m_eval_edit, *m_filter_edit;
  QPushButton *m_run_button, *m_cancel_button;
  QProgressBar* m_progress;
  QSplitter* m_splitter;
  QTabWidget* m_tabs;
  LayerTableModel* m_layers;
  LayerFilterModel* m_filter;
  QTableView* m_table;
  std::vector<QCheckBox*> m_kind_boxes;
  plots::ErrorChart* m_error_chart;
  plots::HessianChart* m_hessian_chart;
  plots::MemoryChart* m_memory_chart;
  plots::PerplexityChart* m_ppl_chart;
  QLabel* m_hessian_label;
  QPlainTextEdit* m_log;
  QMenu* m_recent_menu;
  QAction* m_act_evaluate;
  QAction *m_act_rerun, *m_act_run, *m_act_cancel, *m_act_export, *m_act_save_report, *m_act_csv;
};

}  // namespace gptqw::ui
