// The workbench's data and its jobs, without a widget: the loaded model, the calibration and
// evaluation texts (and what scanning them found), the run, its report and the GPTQ weights it
// kept for export. Every long operation is a Job on its own thread; what they produce reaches
// the views as signals, which the pages subscribe to (the window only stacks them), the way
// hotspot's parser feeds its pages.
//
// The session never decides wording of controls: it states what happened (a model loaded, a
// layer finished, a report is ready, results cleared, an error with its title) and what state
// it is in; the inputs panel, the results pages and the window put that on screen.
#pragma once

#include <QObject>
#include <QString>
#include <map>
#include <memory>
#include <optional>

#include "job.h"
#include "model/model.h"
#include "model_summary.h"
#include "pipeline/advisor.h"
#include "pipeline/generations.h"
#include "pipeline/report.h"
#include "pipeline/run.h"
#include "quant/quantizer.h"

namespace gptqw::ui {

class RunSession : public QObject {
  Q_OBJECT
 public:
  // Which job a progress report comes from.
  enum class Source { Load, Run, Export, Advice };

  explicit RunSession(QObject* parent = nullptr);
  ~RunSession() override;

  const std::optional<Model>& model() const { return m_model; }
  // The loaded model's settings when it is a GPTQ checkpoint (it can be evaluated, not quantized).
  const GptqSettings* checkpointSettings() const;
  const std::optional<Report>& report() const { return m_report; }
  const QString& calibrationFile() const { return m_calib_file; }
  const QString& evaluationFile() const { return m_eval_file; }
  // Tokens of the texts once scanned (-1 while unknown), what the calibration input is
  // ("text", "12 documents (JSONL field "text")"), and the model's measured forward speed
  // (flop/s; 0 until measured) for the evaluation's time estimate.
  int64_t calibrationTokens() const { return m_calib_tokens; }
  int64_t evaluationTokens() const { return m_eval_tokens; }
  const QString& calibrationDescription() const { return m_calib_what; }
  double forwardRate() const { return m_flops_rate; }

  bool busy() const;            // loading, running, advising or exporting
  bool running() const;         // the run or an evaluation
  bool advising() const;        // the advisor measures
  bool cancellable() const;     // a run, an evaluation, the advisor or an export
  bool savingReport() const;
  bool canExport() const;       // this session ran GPTQ and kept its weights
  bool hasKeptWeights() const { return m_kept != nullptr; }
  // The models generate() continues prompts with: the original and this session's RTN and GPTQ
  // versions after a run, or the loaded model alone (a GPTQ checkpoint, say). Empty: no model.
  QStringList generationModels() const;
  // The advisor's findings: measured in this session or opened from a report (none: empty).
  const std::optional<Advice>& advice() const { return m_advice; }
  // Whether Marlin's verdict on the advice's settings assumed a symmetric grid (the advisor's
  // GPTQ settings; a report of gptqw advise does not record them: the default is assumed).
  // The plan the next runs quantize with (point_options over the form's settings), if any.
  const std::optional<AdvicePoint>& planForRuns() const { return m_plan; }
  // `options` with the plan for the runs applied (unchanged without one).
  QuantizeOptions withPlan(const QuantizeOptions& options) const;

  // Seconds the job now reporting progress has run (0 when none runs).
  double elapsed() const;

  // Why `dir` may not be replaced by an export (gptqw --force's rule), or empty when it may.
  QString exportReplaceRefusal(const QString& dir) const;

 public slots:
  void openModel(const QString& path);
  void openReport(const QString& file);
  void setCalibrationFile(const QString& file);
  void setEvaluationFile(const QString& file);  // empty: no evaluation
  // How JSONL calibration files are read (their text field); rescans a JSONL file.
  void setCalibrationOptions(const CalibrationOptions& options);
  // The evaluation's window length, at which the forward speed is measured.
  void setEvaluationSeqlen(int seqlen) { m_eval_seqlen = seqlen; }

  // Quantizes with `spec` (its calibration and evaluation files are this session's), on the
  // recorded windows of `replay` when given. False when nothing started (busy, no model...).
  bool startRun(RunSpec spec, std::optional<CalibrationRecord> replay = std::nullopt);
  // Perplexity of the loaded model on the evaluation text.
  bool evaluate(const PerplexityOptions& options);
  bool exportCheckpoint(const QString& dir, bool force);
  bool saveReport(const QString& file);
  // Continues the prompts with every model of generationModels(), side by side.
  bool generate(const GenerationSpec& spec);
  // Measures each plan unit's sensitivity and solves the plans (pipeline/advisor.h) on the
  // session's model, calibration text (and evaluation text, for the curve); spec.run carries
  // the form's windows and GPTQ settings. False when nothing started.
  bool startAdvice(AdviceSpec spec);
  // The next runs quantize with this point's global and per-module settings (a plan of the
  // advice, possibly hand-edited); cleared by clearPlan() or by loading another model.
  void usePlan(const AdvicePoint& point);
  void clearPlan();
  void cancel();

 signals:
  void busyChanged();  // a job started or ended: what may be done now changed
  void progress(const gptqw::Progress& p, gptqw::ui::RunSession::Source source);
  void statusChanged(const QString& text);
  void logLine(const QString& line);
  void errorOccurred(const QString& title, const QString& message);

  void modelLoading(const QString& path);
  void modelLoaded(const gptqw::ModelSummary& summary);
  void modelLoadFailed();
  void calibrationChanged();  // the file, or its scan's result (tokens, description, problem)
  void calibrationProblem(const QString& problem);
  void evaluationChanged();
  void evaluationProblem(const QString& problem);

  void runStarted(const gptqw::RunSpec& spec);
  void resultsCleared();
  void layerAdded(const gptqw::LayerReport& layer);
  // A finished run's or an opened report's results, to show whole.
  void reportReady(const gptqw::Report& report);
  void perplexityEvaluated(const gptqw::PerplexitySummary& summary);
  void runFinished();
  void runCancelled();
  void runFailed(const QString& message);
  void evaluationFinished(double perplexity);
  void generationsReady(const std::vector<gptqw::PromptGenerations>& generations);
  void reportOpened(const QString& file);
  void reportSaved(const QString& file);
  void exportFinished(const QString& dir);
  // The advisor's findings: measured (startAdvice) or opened with a report.
  void adviceReady(const gptqw::Advice& advice);
  void adviceCleared();
  void planForRunsChanged();  // usePlan / clearPlan

 private:
  void scanCalibration();
  void scanEvaluation();
  bool rescanWhenEnded(Job* job, void (RunSession::*scan)());
  void clearResults();
  void takeOverResults();
  void addLayer(const LayerReport& r);
  using KeptLayers = std::map<LayerId, QuantizedWeights>;
  void finishRun(Report report, std::shared_ptr<KeptLayers> gptq, std::shared_ptr<KeptLayers> rtn,
                 const Model& model);
  void fail(const QString& title, const QString& message);
  void log(const QString& line) { emit logLine(line); }

  Job* m_load;       // model or report
  Job* m_scan;       // counting the calibration text's tokens
  Job* m_eval_scan;  // counting the evaluation text's tokens, measuring the forward speed
  Job* m_run;        // GPTQ + RTN + perplexity, or one evaluation
  Job* m_export;     // writing the checkpoint
  Job* m_advice_job;  // the advisor's measurement
  Job* m_save;       // writing the report (a 7B report holds about a million floats)

  std::optional<Model> m_model;
  QString m_calib_file, m_eval_file;
  CalibrationOptions m_calib_options;
  int m_eval_seqlen = 512;
  int64_t m_calib_tokens = -1, m_eval_tokens = -1;
  QString m_calib_what;
  double m_flops_rate = 0;

  std::optional<Report> m_report;
  std::optional<Advice> m_advice;
  std::optional<AdvicePoint> m_plan;
  bool m_replace_results = false;  // a run started; its first layer replaces what is shown
  // The finished run's GPTQ layers (codes, scales, zeros, g_idx; the fp32 Q dropped) and the
  // model they came from, for Export, and its RTN layers, for generations (a byte per weight
  // each, as the run held them for its evaluation). Empty after opening a report: a report
  // holds no weights.
  std::shared_ptr<const KeptLayers> m_kept, m_kept_rtn;
  std::optional<Model> m_kept_model;
};

}  // namespace gptqw::ui
