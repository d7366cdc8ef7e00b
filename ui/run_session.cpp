#include "run_session.h"

#include <QFileInfo>
#include <QSettings>

#include "common/error.h"
#include "common/output_file.h"
#include "common/text_file.h"
#include "common/threads.h"
#include "io/gptq_checkpoint.h"
#include "io/gptq_export.h"
#include "pipeline/advice_json.h"
#include "pipeline/calibration_corpus.h"
#include "format.h"

namespace gptqw::ui {

RunSession::RunSession(QObject* parent)
    : QObject(parent),
      m_load(new Job(this)),
      m_scan(new Job(this)),
      m_eval_scan(new Job(this)),
      m_run(new Job(this)),
      m_export(new Job(this)),
      m_advice_job(new Job(this)),
      m_save(new Job(this)) {
  connect(m_load, &Job::progress, this, [this](const Progress& p) { emit progress(p, Source::Load); });
  connect(m_run, &Job::progress, this, [this](const Progress& p) { emit progress(p, Source::Run); });
  connect(m_export, &Job::progress, this, [this](const Progress& p) { emit progress(p, Source::Export); });
  connect(m_advice_job, &Job::progress, this, [this](const Progress& p) { emit progress(p, Source::Advice); });
  for (Job* job : {m_load, m_run, m_export, m_advice_job, m_save}) connect(job, &Job::ended, this, &RunSession::busyChanged);
}

RunSession::~RunSession() = default;

const GptqSettings* RunSession::checkpointSettings() const {
  auto* ckpt = m_model ? dynamic_cast<const GptqCheckpoint*>(m_model->weights.get()) : nullptr;
  return ckpt ? &ckpt->settings() : nullptr;
}

bool RunSession::busy() const {
  return m_load->running() || m_run->running() || m_export->running() || m_advice_job->running();
}
bool RunSession::running() const { return m_run->running(); }
bool RunSession::advising() const { return m_advice_job->running(); }
bool RunSession::cancellable() const { return m_run->running() || m_export->running() || m_advice_job->running(); }
bool RunSession::savingReport() const { return m_save->running(); }

bool RunSession::canExport() const {
  return m_kept && m_kept_model && !busy() && m_report && m_report->options.run_gptq;
}

double RunSession::elapsed() const {
  for (Job* job : {m_run, m_advice_job, m_export, m_load})
    if (job->running()) return job->elapsed();
  return 0;
}

void RunSession::fail(const QString& title, const QString& message) {
  emit errorOccurred(title, message);
}

// --- inputs -------------------------------------------------------------------------------------

void RunSession::openModel(const QString& path) {
  if (busy()) return fail(tr("Busy"), tr("Wait for the current task to end or cancel it."));
  emit modelLoading(path);
  emit statusChanged(tr("Loading %1…").arg(path));
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
    const ModelSummary& s = loaded->second;
    emit statusChanged(tr("Model loaded: %1").arg(path));
    log(tr("model: %1, %2 layers, %3 parameters, %4")
            .arg(qstr(s.architecture))
            .arg(s.num_layers)
            .arg(formatCount(s.parameters))
            .arg(qstr(s.format)));
    if (const GptqSettings* settings = checkpointSettings())
      log(tr("this is a GPTQ checkpoint (%1-bit): it can be evaluated, not quantized again")
              .arg(settings->quant.bits));
    m_flops_rate = 0;  // another model: measured again
    clearPlan();       // a plan names the modules of the model it was made for
    if (m_advice) {
      m_advice.reset();
      emit adviceCleared();
    }
    scanCalibration();
    scanEvaluation();
    emit modelLoaded(s);
  });
  connect(m_load, &Job::failed, ctx, [this](const QString& msg) {
    emit modelLoadFailed();
    fail(tr("Cannot open the model"), msg);
  });
  emit busyChanged();
}

void RunSession::setCalibrationFile(const QString& file) {
  m_calib_file = file;
  const QFileInfo info(file);
  QSettings().setValue("paths/calib", info.isDir() ? info.absoluteFilePath() : info.absolutePath());
  scanCalibration();
}

void RunSession::setCalibrationOptions(const CalibrationOptions& options) {
  const bool jsonl_changed = options.jsonl_field != m_calib_options.jsonl_field;
  m_calib_options = options;
  if (jsonl_changed && m_calib_file.endsWith(".jsonl")) scanCalibration();
}

void RunSession::setEvaluationFile(const QString& file) {
  m_eval_file = file;
  if (!file.isEmpty()) QSettings().setValue("paths/eval", QFileInfo(file).absolutePath());
  scanEvaluation();
}

bool RunSession::rescanWhenEnded(Job* job, void (RunSession::*scan)()) {
  // A running scan read the previous input: its result would be stale. It is cancelled, and
  // `scan` runs once it has ended (once, however often it was asked for meanwhile).
  if (!job->running()) return false;
  job->cancel();
  connect(job, &Job::ended, this, scan,
          static_cast<Qt::ConnectionType>(Qt::SingleShotConnection | Qt::UniqueConnection));
  return true;
}

void RunSession::scanCalibration() {
  m_calib_tokens = -1;
  m_calib_what.clear();
  emit calibrationChanged();
  if (m_calib_file.isEmpty() || !m_model || !m_model->tokenizer) return;
  if (rescanWhenEnded(m_scan, &RunSession::scanCalibration)) return;
  auto tokenizer = m_model->tokenizer;
  const QString file = m_calib_file;
  const CalibrationOptions options = m_calib_options;
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
    m_calib_what = corpus->format == "text"
                       ? tr("text")
                       : tr("%1 documents (%2)").arg(corpus->documents)
                             .arg(corpus->format == "jsonl"
                                      ? tr("JSONL field \"%1\"").arg(qstr(corpus->field))
                                      : tr(".txt files"));
    m_calib_tokens = *tokens;
    emit calibrationChanged();
  });
  connect(m_scan, &Job::failed, ctx, [this, file](const QString& msg) {
    emit calibrationProblem(fileProblem(file, msg));
    fail(tr("Cannot read the calibration text"), msg);
  });
}

void RunSession::scanEvaluation() {
  m_eval_tokens = -1;
  emit evaluationChanged();
  if (m_eval_file.isEmpty() || !m_model || !m_model->tokenizer) return;
  if (rescanWhenEnded(m_eval_scan, &RunSession::scanEvaluation)) return;
  auto tokenizer = m_model->tokenizer;
  const QString file = m_eval_file;
  auto tokens = std::make_shared<int64_t>(0);
  auto rate = std::make_shared<double>(m_flops_rate);
  const Model model = *m_model;
  const int seqlen = m_eval_seqlen;
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
    emit evaluationChanged();
  });
  connect(m_eval_scan, &Job::failed, ctx,
          [this, file](const QString& msg) { emit evaluationProblem(fileProblem(file, msg)); });
}

// --- results ------------------------------------------------------------------------------------

void RunSession::clearResults() {
  m_report.reset();
  m_kept.reset();
  m_kept_rtn.reset();
  m_kept_model.reset();
  emit resultsCleared();
}

void RunSession::takeOverResults() {
  if (m_replace_results) clearResults();
  m_replace_results = false;
}

void RunSession::addLayer(const LayerReport& r) {
  if (!m_run->running()) return;  // a straggler from a cancelled run
  takeOverResults();
  if (r.damp_raises > 0 || r.fell_back_to_rtn || !r.note.empty())
    log(QString("%1: %2").arg(qstr(r.name), qstr(r.note)));
  emit layerAdded(r);
}

void RunSession::openReport(const QString& file) {
  if (busy()) return fail(tr("Busy"), tr("Wait for the current task to end or cancel it."));
  auto loaded = std::make_shared<Report>();
  m_load->start([file, loaded](const ProgressFn&) -> std::function<void()> {
    *loaded = load_report(fspath(file));
    return {};
  });
  auto* ctx = m_load->scope();
  connect(m_load, &Job::succeeded, ctx, [this, loaded, file] {
    clearResults();
    m_report = std::move(*loaded);
    QSettings().setValue("paths/report", QFileInfo(file).absolutePath());
    log(tr("opened report %1 (%2 layers, made by %3 on %4)")
            .arg(file)
            .arg(m_report->layers.size())
            .arg(qstr(m_report->tool_version), qstr(m_report->created)));
    emit statusChanged(tr("Report: %1").arg(file));
    emit reportReady(*m_report);
    if (m_report->advice) {
      m_advice = m_report->advice;
      log(tr("the report holds the advisor's findings: %1 units, %2 plans")
              .arg(m_advice->sensitivity.units.size())
              .arg(m_advice->plans.size()));
      emit adviceReady(*m_advice);
    }
    emit reportOpened(file);
  });
  connect(m_load, &Job::failed, ctx, [this](const QString& msg) { fail(tr("Cannot open the report"), msg); });
  emit busyChanged();
}

// --- the run ------------------------------------------------------------------------------------

bool RunSession::startRun(RunSpec spec, std::optional<CalibrationRecord> replay) {
  if (busy()) return false;
  if (!m_model) {
    fail(tr("No model"), tr("Open a model before running."));
    return false;
  }
  if (m_calib_file.isEmpty()) {
    fail(tr("No calibration text"), tr("Choose a calibration text before running."));
    return false;
  }
  spec.calib_file = fspath(m_calib_file);
  if (m_plan) {
    spec.options = withPlan(spec.options);
    log(tr("run with %1: %2 modules with their own settings")
            .arg(qstr(m_plan->label))
            .arg(spec.options.per_module.size()));
  }
  if (replay) {
    spec.nsamples = static_cast<int>(replay->offsets.size());
    spec.seqlen = replay->seqlen;
    spec.seed = replay->seed;
    spec.replay = std::move(replay);
  }
  if (!m_eval_file.isEmpty()) spec.eval_files = {fspath(m_eval_file)};
  // A cancel during the perplexity passes keeps the finished quantization.
  spec.keep_quantization_on_cancel = true;
  // The previous results stay on screen until this run's first layer replaces them.
  m_replace_results = true;
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
  auto gptq = std::make_shared<KeptLayers>(), rtn = std::make_shared<KeptLayers>();
  auto report = std::make_shared<Report>();
  Job* job = m_run;
  m_run->start([this, job, model, spec, gptq, rtn, report](const ProgressFn& progress) -> std::function<void()> {
    set_threads(spec.threads);
    const RunInputs inputs = prepare_run(model, spec);
    LayerSink sink = [&](Method m, int block, LinearKind kind, QuantizedWeights&& w) {
      w.Q = Matrix();  // export and generation need the codes and grids only
      (*(m == Method::gptq ? gptq : rtn))[{block, kind}] = std::move(w);
    };
    *report = run_quantization(model, spec, inputs, sink, progress, [job, this](const LayerReport& r) {
      job->post([this, r] { addLayer(r); });
    });
    return [this, gptq, rtn, report, model] { finishRun(std::move(*report), gptq, rtn, model); };
  });
  auto* ctx = m_run->scope();
  connect(m_run, &Job::failed, ctx, [this](const QString& msg) {
    fail(tr("The run failed"), msg);
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
    emit statusChanged(tr("Cancelled."));
    emit runCancelled();
  });
  emit runStarted(spec);
  emit busyChanged();
  return true;
}

void RunSession::finishRun(Report report, std::shared_ptr<KeptLayers> gptq, std::shared_ptr<KeptLayers> rtn,
                           const Model& model) {
  takeOverResults();
  m_kept = std::move(gptq);
  m_kept_rtn = std::move(rtn);
  m_kept_model = model;
  m_report = std::move(report);
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
  for (const TextQuality& q : m_report->quality) {
    QString line = tr("on %1: original perplexity %2 ± %3")
                       .arg(QFileInfo(qstr(q.text)).fileName())
                       .arg(q.ppl_original.value, 0, 'f', 4)
                       .arg(q.ppl_original.se, 0, 'f', 4);
    for (const QuantizedQuality& m : q.quantized)
      line += tr("; %1 %2 ± %3, mean KLD %4")
                  .arg(methodTitle(m.model))
                  .arg(m.ppl.value, 0, 'f', 4)
                  .arg(m.ppl.se, 0, 'f', 4)
                  .arg(m.vs_original.kld.value, 0, 'f', 5);
    log(line);
  }
  for (const UnloadableModule& k : m_report->kept_for_loaders)
    log(tr("%1 kept in fp16: %2 (GPTQ loaders could not load it quantized)")
            .arg(qstr(std::string(linear_name(k.kind))), qstr(k.reason)));
  // The whole run, evaluation included, as the clock showed it.
  if (m_report->evaluation_cancelled) {
    log(tr("evaluation cancelled: the quantization is kept (no perplexity)"));
    emit statusChanged(tr("Done in %1 (evaluation skipped).").arg(duration(m_run->elapsed())));
  } else {
    emit statusChanged(tr("Done in %1.").arg(duration(m_run->elapsed())));
  }
  emit reportReady(*m_report);
  emit runFinished();
}

bool RunSession::evaluate(const PerplexityOptions& options) {
  if (busy()) return false;
  if (!m_model) {
    fail(tr("No model"), tr("Open a model before evaluating it."));
    return false;
  }
  if (m_eval_file.isEmpty()) {
    fail(tr("No evaluation text"), tr("Choose an evaluation text (File > Evaluation Text) first."));
    return false;
  }
  // A GPTQ checkpoint is shown as the GPTQ bar, any other model as the original.
  const bool quantized = checkpointSettings() != nullptr;
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
    (quantized ? ps.gptq_se : ps.original_se) = result->ppl_se;
    log(tr("perplexity %1 ± %2 on %3 (%4 windows of %5 tokens)")
            .arg(result->ppl, 0, 'f', 4)
            .arg(result->ppl_se, 0, 'f', 4)
            .arg(QFileInfo(text).fileName())
            .arg(result->windows)
            .arg(result->seqlen));
    emit statusChanged(tr("Evaluated in %1: perplexity %2 ± %3.")
                           .arg(duration(m_run->elapsed()))
                           .arg(result->ppl, 0, 'f', 4)
                           .arg(result->ppl_se, 0, 'f', 4));
    emit perplexityEvaluated(ps);
    emit evaluationFinished(result->ppl);
  });
  connect(m_run, &Job::failed, ctx, [this](const QString& msg) { fail(tr("Evaluation failed"), msg); });
  connect(m_run, &Job::cancelled, ctx, [this] { emit statusChanged(tr("Evaluation cancelled.")); });
  emit busyChanged();
  return true;
}

void RunSession::cancel() {
  if (!cancellable()) return;
  m_run->cancel();
  m_export->cancel();
  m_advice_job->cancel();
  emit statusChanged(tr("Cancelling…"));
}

// --- the advisor ------------------------------------------------------------------------------

bool RunSession::startAdvice(AdviceSpec spec) {
  if (busy()) return false;
  if (!m_model) {
    fail(tr("No model"), tr("Open a model before measuring its sensitivity."));
    return false;
  }
  if (checkpointSettings()) {
    fail(tr("Already quantized"), tr("This is a GPTQ checkpoint: open the original model to plan its quantization."));
    return false;
  }
  if (m_calib_file.isEmpty()) {
    fail(tr("No calibration text"), tr("Choose a calibration text before measuring."));
    return false;
  }
  spec.run.calib_file = fspath(m_calib_file);
  spec.run.eval_files.clear();
  if (!m_eval_file.isEmpty()) spec.run.eval_files = {fspath(m_eval_file)};
  QStringList candidates;
  for (const PrecisionChoice& c : spec.sensitivity.candidates) candidates << qstr(choice_text(c));
  QStringList budgets;
  for (double b : spec.budgets) budgets << QString::number(b);
  log(tr("advisor: candidates %1, budgets %2 bpw, %3 x %4 tokens of %5, %6 held-out windows%7")
          .arg(candidates.join(' '), budgets.join(' '))
          .arg(spec.run.nsamples)
          .arg(spec.run.seqlen)
          .arg(QFileInfo(m_calib_file).fileName())
          .arg(spec.held_out)
          .arg(spec.curve ? tr(", checked, with the curve") : spec.check ? tr(", checked") : QString()));
  const Model model = *m_model;
  auto advice = std::make_shared<Advice>();
  m_advice_job->start([model, spec, advice](const ProgressFn& progress) -> std::function<void()> {
    set_threads(spec.run.threads);
    *advice = advise(model, spec, progress);
    return {};
  });
  auto* ctx = m_advice_job->scope();
  connect(m_advice_job, &Job::succeeded, ctx, [this, advice] {
    m_advice = std::move(*advice);
    log(tr("advisor done in %1 s: %2 units, %3 plans").arg(m_advice->seconds, 0, 'f', 1)
            .arg(m_advice->sensitivity.units.size()).arg(m_advice->plans.size()));
    emit statusChanged(tr("Sensitivity measured in %1.").arg(duration(m_advice_job->elapsed())));
    emit adviceReady(*m_advice);
  });
  connect(m_advice_job, &Job::failed, ctx, [this](const QString& msg) { fail(tr("The advisor failed"), msg); });
  connect(m_advice_job, &Job::cancelled, ctx, [this] {
    log(tr("advisor cancelled"));
    emit statusChanged(tr("Cancelled."));
  });
  emit busyChanged();
  return true;
}

QuantizeOptions RunSession::withPlan(const QuantizeOptions& options) const {
  return m_plan ? point_options(options, *m_plan) : options;
}

void RunSession::usePlan(const AdvicePoint& point) {
  m_plan = point;
  log(tr("the next runs use %1: %2 bpw, %3 modules with their own settings")
          .arg(qstr(point.label))
          .arg(point.bits_per_weight, 0, 'f', 2)
          .arg(point.per_module.size()));
  emit planForRunsChanged();
}

void RunSession::clearPlan() {
  if (!m_plan) return;
  m_plan.reset();
  log(tr("the next runs use the form's settings again"));
  emit planForRunsChanged();
}

// --- generations --------------------------------------------------------------------------------

QStringList RunSession::generationModels() const {
  if (m_kept_model) {
    QStringList names = {tr("original")};
    if (m_kept_rtn && !m_kept_rtn->empty()) names << tr("RTN");
    if (m_kept && !m_kept->empty()) names << tr("GPTQ");
    return names;
  }
  if (m_model) return {QFileInfo(qstr(m_model->path.string())).fileName()};
  return {};
}

bool RunSession::generate(const GenerationSpec& spec) {
  if (busy()) return false;
  const QStringList names = generationModels();
  if (names.isEmpty()) {
    fail(tr("No model"), tr("Open a model before generating."));
    return false;
  }
  // After a run: the original and this run's RTN and GPTQ layers over it, each dequantized as
  // the evaluation reads them. Otherwise the loaded model alone.
  const Model model = m_kept_model ? *m_kept_model : *m_model;
  if (!model.tokenizer) {
    fail(tr("No tokenizer"), tr("%1 has no tokenizer to read the prompts with.").arg(qstr(model.path.string())));
    return false;
  }
  auto gptq = m_kept, rtn = m_kept_rtn;
  auto out = std::make_shared<std::vector<PromptGenerations>>();
  log(tr("generating %1 prompt(s) with %2").arg(spec.prompts.size()).arg(names.join(", ")));
  m_run->start([model, names, gptq, rtn, spec, out](const ProgressFn& progress) -> std::function<void()> {
    std::vector<NamedWeights> models = {{names[0].toStdString(), model.weights.get()}};
    std::vector<std::unique_ptr<QuantizedModel>> quantized;
    for (const auto& [name, layers] : {std::pair{QStringLiteral("RTN"), rtn}, std::pair{QStringLiteral("GPTQ"), gptq}}) {
      if (!layers || layers->empty()) continue;
      auto& q = quantized.emplace_back(std::make_unique<QuantizedModel>(model.weights));
      for (const auto& [id, w] : *layers) q->set(id.block, id.kind, w);
      models.push_back({name.toStdString(), q.get()});
    }
    *out = generate_side_by_side(models, *model.tokenizer, spec, progress);
    return {};
  });
  auto* ctx = m_run->scope();
  connect(m_run, &Job::succeeded, ctx, [this, out] {
    emit statusChanged(tr("Generated in %1.").arg(duration(m_run->elapsed())));
    emit generationsReady(*out);
  });
  connect(m_run, &Job::failed, ctx, [this](const QString& msg) { fail(tr("Generation failed"), msg); });
  connect(m_run, &Job::cancelled, ctx, [this] { emit statusChanged(tr("Generation cancelled.")); });
  emit busyChanged();
  return true;
}

// --- outputs ------------------------------------------------------------------------------------

QString RunSession::exportReplaceRefusal(const QString& dir) const {
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

bool RunSession::exportCheckpoint(const QString& dir, bool force) {
  if (!canExport()) {
    fail(tr("Nothing to export"), tr("Run GPTQ first: export writes the weights of this session's run."));
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
    emit statusChanged(tr("Exported to %1").arg(dest));
    QSettings().setValue("paths/export", QFileInfo(dest).absolutePath());
    emit exportFinished(dest);
  });
  connect(m_export, &Job::failed, ctx, [this](const QString& msg) { fail(tr("Export failed"), msg); });
  connect(m_export, &Job::cancelled, ctx, [this] {
    log(tr("export cancelled; nothing written"));
    emit statusChanged(tr("Export cancelled."));
  });
  emit busyChanged();
  return true;
}

bool RunSession::saveReport(const QString& file) {
  if (!m_report || m_save->running()) return false;
  // The destination is refused at once (a link, the model folder); serialising and writing a
  // large report runs on the worker thread, from a copy, so a new run may start meanwhile.
  std::filesystem::path dest;
  try {
    dest = check_output_file(fspath(file));
  } catch (const Error& e) {
    fail(tr("Cannot save the report"), qstr(e.what()));
    return false;
  }
  auto report = std::make_shared<const Report>(*m_report);
  QObject* ctx = m_save->scope();
  connect(m_save, &Job::failed, ctx, [this](const QString& msg) { fail(tr("Cannot save the report"), msg); });
  const bool started = m_save->start([this, report, dest, file](const ProgressFn&) -> std::function<void()> {
    save_report(*report, dest);
    return [this, file] {
      QSettings().setValue("paths/report", QFileInfo(file).absolutePath());
      log(tr("report saved to %1").arg(file));
      emit reportSaved(file);
    };
  });
  emit busyChanged();
  return started;
}

}  // namespace gptqw::ui
