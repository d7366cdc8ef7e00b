#include "inputs_panel.h"

#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QToolButton>
#include <QVBoxLayout>

#include "common/error.h"
#include "file_dialogs.h"
#include "format.h"
#include "model_summary.h"
#include "run_session.h"
#include "settings_form.h"

namespace gptqw::ui {

namespace {

// A path field with its browse button. The field takes typing and pasting too: the path is
// used when editing ends (Return or leaving the field) if it changed.
QHBoxLayout* pathRow(QWidget* owner, QLineEdit*& edit, const QString& placeholder,
                     std::function<QString()> browse, std::function<void(const QString&)> use) {
  auto* row = new QHBoxLayout;
  edit = new QLineEdit;
  edit->setPlaceholderText(placeholder);
  edit->setClearButtonEnabled(true);
  QLineEdit* field = edit;
  QObject::connect(field, &QLineEdit::editingFinished, owner, [field, use] {
    if (field->isModified()) {
      field->setModified(false);
      use(field->text().trimmed());
    }
  });
  auto* button = new QToolButton;
  button->setText(QObject::tr("…"));
  button->setToolTip(QObject::tr("Browse"));
  QObject::connect(button, &QToolButton::clicked, owner, [browse, use] {
    const QString path = browse();
    if (!path.isEmpty()) use(path);
  });
  row->addWidget(edit, 1);
  row->addWidget(button);
  return row;
}

QLabel* infoLabel() {
  auto* label = new QLabel;
  label->setWordWrap(true);  // long lines wrap instead of widening the panel
  label->setTextInteractionFlags(Qt::TextSelectableByMouse);
  return label;
}

}  // namespace

InputsPanel::InputsPanel(RunSession* session, QWidget* parent) : QWidget(parent), m_session(session) {
  m_run_button = new QPushButton(tr("Run GPTQ and RTN"));
  m_run_button->setDefault(true);
  m_cancel_button = new QPushButton(tr("Cancel"));
  connect(m_run_button, &QPushButton::clicked, this, &InputsPanel::runClicked);
  connect(m_cancel_button, &QPushButton::clicked, this, &InputsPanel::cancelClicked);

  // The inputs scroll; Run and Cancel stay below them, always in view, however long the form
  // and its notes grow or however small the window is.
  QWidget* panel = buildPanel();
  auto* scroll = new QScrollArea;
  scroll->setWidget(panel);
  scroll->setWidgetResizable(true);
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  scroll->setMinimumWidth(panel->sizeHint().width() + 24);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(m_run_button, 1);
  buttons->addWidget(m_cancel_button);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(scroll, 1);
  layout->addLayout(buttons);

  // What the session does shows here.
  connect(session, &RunSession::modelLoading, m_model_edit, &QLineEdit::setText);
  connect(session, &RunSession::modelLoaded, this, [this](const ModelSummary& s) {
    m_summary->setText(modelSummaryHtml(s, m_session->checkpointSettings()));
    m_form->setModelConfig(m_session->model()->config());
  });
  connect(session, &RunSession::modelLoadFailed, this, [this] {
    // The field goes back to the model that is still loaded, which the summary describes.
    const auto& model = m_session->model();
    m_model_edit->setText(model ? qstr(model->path.string()) : QString());
  });
  connect(session, &RunSession::reportOpened, this, [this](const QString& file) {
    // With no model loaded, the summary shows the report's and says where it comes from.
    if (m_session->model()) return;
    m_summary->setText(tr("<p><i>From the report %1 (no model is loaded):</i></p>")
                           .arg(QFileInfo(file).fileName().toHtmlEscaped()) +
                       modelSummaryHtml(m_session->report()->model, nullptr));
  });
  connect(session, &RunSession::calibrationChanged, this, [this] {
    m_calib_edit->setText(m_session->calibrationFile());
    m_form->setCalibrationTokens(m_session->calibrationTokens());
    updateInfoLines();
    updateButtons();
  });
  connect(session, &RunSession::calibrationProblem, m_calib_info, &QLabel::setText);
  connect(session, &RunSession::evaluationChanged, this, [this] {
    m_eval_edit->setText(m_session->evaluationFile());
    updateInfoLines();
    updateButtons();
  });
  connect(session, &RunSession::evaluationProblem, m_eval_info, &QLabel::setText);
  connect(session, &RunSession::busyChanged, this, &InputsPanel::updateButtons);
  connect(session, &RunSession::planForRunsChanged, this, &InputsPanel::updatePlanLine);

  // What the form says reaches the session (how JSONL is read, the evaluation's window length)
  // and the lines that depend on it.
  connect(m_form, &SettingsForm::changed, this, &InputsPanel::readSpec);
  readSpec();
  updateButtons();
}

void InputsPanel::readSpec() {
  try {
    m_spec = m_form->spec();
    // What the form says reaches the session: how JSONL is read, the evaluation's window length.
    m_session->setCalibrationOptions(m_spec->calib_options);
    m_session->setEvaluationSeqlen(m_spec->eval.seqlen);
  } catch (const Error&) {
    m_spec.reset();  // the form lists the problem; the session keeps its options
  }
  updateInfoLines();
  updateButtons();
  emit settingsChanged();
}

QWidget* InputsPanel::buildPanel() {
  auto* panel = new QWidget;
  auto* layout = new QVBoxLayout(panel);

  auto* model_box = new QGroupBox(tr("Model"));
  auto* model_layout = new QVBoxLayout(model_box);
  model_layout->addLayout(pathRow(
      this, m_model_edit, tr("Hugging Face folder or llama2.c .bin (drop here)"),
      [this] { return askForPath(this, PathKind::ModelFolder); },
      [this](const QString& path) { m_session->openModel(path); }));
  m_summary = infoLabel();
  m_summary->setTextFormat(Qt::RichText);
  m_summary->setText(tr("No model loaded."));
  model_layout->addWidget(m_summary);
  layout->addWidget(model_box);

  auto* data_box = new QGroupBox(tr("Texts"));
  auto* data_layout = new QFormLayout(data_box);
  auto set_calibration = [this](const QString& path) { m_session->setCalibrationFile(path); };
  QHBoxLayout* calib_row = pathRow(
      this, m_calib_edit, tr("text or JSONL file, or folder of .txt"),
      [this] { return askForPath(this, PathKind::CalibrationText); }, set_calibration);
  auto* calib_folder = new QToolButton;
  calib_folder->setText(tr("Folder…"));
  calib_folder->setToolTip(tr("A folder of .txt files, each one document"));
  connect(calib_folder, &QToolButton::clicked, this, [this, set_calibration] {
    const QString dir = askForPath(this, PathKind::CalibrationFolder);
    if (!dir.isEmpty()) set_calibration(dir);
  });
  calib_row->addWidget(calib_folder);
  data_layout->addRow(tr("Calibration"), calib_row);
  m_calib_info = infoLabel();
  data_layout->addRow(QString(), m_calib_info);
  data_layout->addRow(tr("Evaluation"),
                      pathRow(this, m_eval_edit, tr("text file (optional)"),
                              [this] { return askForPath(this, PathKind::EvaluationText); },
                              [this](const QString& path) { m_session->setEvaluationFile(path); }));
  m_eval_info = infoLabel();
  data_layout->addRow(QString(), m_eval_info);
  layout->addWidget(data_box);

  auto* settings_box = new QGroupBox(tr("Quantization"));
  auto* settings_layout = new QVBoxLayout(settings_box);
  m_form = new SettingsForm;
  // The JSONL field is read when its editing ends (it does not signal changed()).
  connect(m_form, &SettingsForm::calibrationFieldChanged, this, &InputsPanel::readSpec);
  settings_layout->addWidget(m_form);
  // A plan of the advisor in use: its per-module settings replace the form's bits and group.
  m_plan_row = new QWidget;
  auto* plan_layout = new QHBoxLayout(m_plan_row);
  plan_layout->setContentsMargins(0, 0, 0, 0);
  m_plan_info = infoLabel();
  m_plan_info->setStyleSheet(QStringLiteral("color: #1e5ac8"));
  auto* clear_plan = new QToolButton;
  clear_plan->setText(tr("Clear"));
  clear_plan->setToolTip(tr("Run with the form's settings again"));
  connect(clear_plan, &QToolButton::clicked, m_session, &RunSession::clearPlan);
  plan_layout->addWidget(m_plan_info, 1);
  plan_layout->addWidget(clear_plan, 0, Qt::AlignTop);
  m_plan_row->hide();
  settings_layout->addWidget(m_plan_row);
  layout->addWidget(settings_box);
  layout->addStretch(1);
  return panel;
}

QString InputsPanel::modelPathText() const { return m_model_edit->text(); }
QString InputsPanel::modelSummaryText() const { return m_summary->text(); }
QString InputsPanel::calibrationInfo() const { return m_calib_info->text(); }
QString InputsPanel::evaluationInfo() const { return m_eval_info->text(); }
QString InputsPanel::planInfo() const { return m_plan_row->isHidden() ? QString() : m_plan_info->text(); }

void InputsPanel::updatePlanLine() {
  const auto& plan = m_session->planForRuns();
  m_plan_row->setVisible(plan.has_value());
  if (!plan) return m_plan_info->clear();
  m_plan_info->setText(tr("%1: %2 bpw, %3 modules with their own settings; the others %4 "
                          "(the form's bits and group size are not used)")
                           .arg(qstr(plan->label))
                           .arg(plan->bits_per_weight, 0, 'f', 2)
                           .arg(plan->per_module.size())
                           .arg(qstr(plan->global.describe())));
}

InputsPanel::Readiness InputsPanel::readiness() const {
  Readiness r;
  const auto& model = m_session->model();
  const bool idle = !m_session->busy();
  r.evaluates = model && m_session->checkpointSettings();
  if (!model) r.why = tr("Open a model first.");
  else if (r.evaluates && m_session->evaluationFile().isEmpty()) r.why = tr("Choose an evaluation text first.");
  else if (!r.evaluates && m_session->calibrationFile().isEmpty()) r.why = tr("Choose a calibration text first.");
  else if (!r.evaluates && !m_form->runProblems().isEmpty()) r.why = m_form->runProblems().join("\n");
  r.ready = idle && r.why.isEmpty();
  return r;
}

void InputsPanel::updateButtons() {
  const Readiness r = readiness();
  m_run_button->setText(r.evaluates ? tr("Evaluate this GPTQ checkpoint") : tr("Run GPTQ and RTN"));
  m_run_button->setEnabled(r.ready);
  m_run_button->setToolTip(r.why);
  m_cancel_button->setEnabled(m_session->cancellable());
  emit readinessChanged();
}

void InputsPanel::updateInfoLines() {
  // The lines under the texts follow the form: windows of the seqlen now set, and what the
  // evaluation will cost with the windows now set.
  const RunSpec* spec = currentSpec();
  const int64_t calib_tokens = m_session->calibrationTokens();
  if (m_session->calibrationFile().isEmpty()) m_calib_info->clear();
  else if (calib_tokens < 0) m_calib_info->setText(m_session->model() ? tr("counting tokens…") : QString());
  else
    m_calib_info->setText(spec ? tr("%1, %2 tokens: up to %3 windows of %4")
                                     .arg(m_session->calibrationDescription())
                                     .arg(calib_tokens)
                                     .arg(calib_tokens / spec->seqlen)
                                     .arg(spec->seqlen)
                               : tr("%1, %2 tokens").arg(m_session->calibrationDescription()).arg(calib_tokens));

  const int64_t eval_tokens = m_session->evaluationTokens();
  const auto& model = m_session->model();
  if (m_session->evaluationFile().isEmpty() || !model) return m_eval_info->clear();
  if (eval_tokens < 0) return m_eval_info->setText(tr("counting tokens…"));
  const QString size = formatBytes(uint64_t(QFileInfo(m_session->evaluationFile()).size()));
  if (!spec) return m_eval_info->setText(tr("%1, %2 tokens").arg(size).arg(eval_tokens));
  const int64_t windows = perplexity_windows(eval_tokens, spec->eval);
  if (windows == 0)
    return m_eval_info->setText(tr("%1, %2 tokens: fewer than one window of %3")
                                    .arg(size).arg(eval_tokens).arg(spec->eval.seqlen));
  const RunCosts costs = run_stage_costs(model->config(), spec->options, 0, windows * spec->eval.seqlen);
  const double rate = m_session->forwardRate();
  const double seconds = rate > 0 ? costs.eval_pass * costs.eval_passes / rate : 0;
  m_eval_info->setText(tr("%1, %2 tokens: %3 windows of %4; %5 perplexity passes, about %6")
                           .arg(size)
                           .arg(eval_tokens)
                           .arg(windows)
                           .arg(spec->eval.seqlen)
                           .arg(costs.eval_passes)
                           .arg(duration(seconds)));
}

}  // namespace gptqw::ui
