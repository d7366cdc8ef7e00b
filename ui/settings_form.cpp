#include "settings_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QCoreApplication>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QIntValidator>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QSettings>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QThread>

#include "backend/backend.h"
#include "common/error.h"

namespace gptqw::ui {

namespace {

QString qs(std::string_view s) { return QString::fromUtf8(s.data(), qsizetype(s.size())); }

const QString kPerRow = QStringLiteral("per row");

// A first run evaluates this many windows, not the whole text (RunSpec's default, which the
// command line keeps): its three perplexity passes then take seconds to minutes (a whole
// WikiText-2 pass of even the 3.4M-parameter sample model took 12 minutes); the line under the
// evaluation text says what a choice costs.
constexpr int kFirstRunEvalWindows = 32;

// The fields' values come from setSpec().
QSpinBox* spin(int lo, int hi, const QString& tip) {
  auto* s = new QSpinBox;
  s->setRange(lo, hi);
  s->setToolTip(tip);
  return s;
}

QCheckBox* check(const QString& text, const QString& tip) {
  auto* c = new QCheckBox(text);
  c->setToolTip(tip);
  return c;
}

}  // namespace

SettingsForm::SettingsForm(QWidget* parent) : QWidget(parent) {
  m_bits = new QComboBox;
  for (int b : {2, 3, 4, 8}) m_bits->addItem(QString::number(b), b);
  m_bits->setToolTip(tr("Bits per weight of the quantized linear layers"));
  m_group = new QComboBox;
  m_group->setEditable(true);
  m_group->addItem(kPerRow);
  for (auto g = kKernelGroupSizes.rbegin(); g != kKernelGroupSizes.rend(); ++g)
    m_group->addItem(QString::number(*g));
  m_group->setToolTip(tr("Input columns sharing one scale and zero point; 'per row' for one grid "
                         "per output row. Any positive size is allowed (the last group may be "
                         "shorter)."));
  m_sym = check(tr("Symmetric grid"), tr("Zero point fixed at the middle of the grid"));
  m_mse = check(tr("MSE grid search"),
                tr("Shrink each grid's range to minimise the rounding error (slower)"));
  m_act_order = check(tr("Act-order"),
                      tr("Quantize columns in order of decreasing Hessian diagonal (desc_act)"));
  m_static_groups = check(tr("Static groups"),
                          tr("With act-order: find all group grids before the column loop"));
  m_true_seq = check(tr("True sequential"),
                     tr("Calibrate [q,k,v], [o], [gate,up], [down] one after another, each "
                        "through the already quantized ones"));
  m_damp = new QDoubleSpinBox;
  m_damp->setDecimals(4);
  m_damp->setRange(0.0, 1.0);
  m_damp->setSingleStep(0.005);
  m_damp->setToolTip(tr("Fraction of the mean Hessian diagonal added to the diagonal (0.01: 1%)"));
  m_blocksize = spin(1, 8192, tr("Columns per lazy-batch block"));
  m_nsamples = spin(1, 1 << 20, tr("Calibration windows"));
  m_seqlen = spin(2, 1 << 20, tr("Tokens per calibration window"));
  m_seed = spin(0, std::numeric_limits<int>::max(), tr("Seed of the window sampler"));
  m_eval_seqlen = spin(2, 1 << 20, tr("Tokens per perplexity window"));
  m_eval_windows = spin(0, 1 << 20, tr("Perplexity windows to evaluate (0: the whole text)"));
  m_threads = spin(1, std::max(1, QThread::idealThreadCount()), tr("Worker threads for the engine"));
  m_skip = new QLineEdit;
  m_skip->setPlaceholderText(tr("none (e.g. mlp.down_proj)"));
  m_skip->setToolTip(tr("Modules kept in full precision in every block, comma-separated"));
  m_pad_unloadable = check(tr("Quantize modules loaders cannot read"),
                           tr("Off: modules whose shapes GPTQModel, AutoGPTQ and vLLM cannot load "
                              "quantized stay in fp16 (listed under the form). On: they are "
                              "quantized and exported zero-padded, which no mainstream loader reads"));
  m_calib_field = new QLineEdit;
  m_calib_field->setPlaceholderText(qs(CalibrationOptions().jsonl_field));
  m_calib_field->setToolTip(tr("The string field holding each document of a JSONL calibration file"));
  m_device = new QComboBox;
  m_device->addItem(tr("Auto"));
  m_device->addItem(tr("CPU"));
  m_device->addItem(tr("GPU"));
  // Probing for a GPU creates a CUDA context, which can take seconds: it runs on a thread of
  // its own, and the GPU entry stays disabled until the probe answers.
  setGpuStatus(false, tr("looking for a CUDA device..."));
  QPointer<SettingsForm> self(this);
  QThread* probe = QThread::create([self] {
    const QString why = QString::fromStdString(cuda_status());
    const bool ok = cuda_backend_or_null(nullptr) != nullptr;
    QMetaObject::invokeMethod(
        QCoreApplication::instance(),
        [self, ok, why] {
          if (!self) return;
          self->setGpuStatus(ok, why);
          self->m_gpu_probed = true;
        },
        Qt::QueuedConnection);
  });
  connect(probe, &QThread::finished, probe, &QObject::deleteLater);
  probe->start();

  m_problems = new QLabel;
  m_problems->setWordWrap(true);
  m_problems->setTextFormat(Qt::RichText);
  m_problems->setTextInteractionFlags(Qt::LinksAccessibleByMouse);
  connect(m_problems, &QLabel::linkActivated, this, [this](const QString& key) {
    if (!m_expanded.remove(key)) m_expanded.insert(key);
    renderProblems();
  });

  auto* form = new QFormLayout(this);
  form->setContentsMargins(0, 0, 0, 0);
  form->addRow(tr("Bits"), m_bits);
  form->addRow(tr("Group size"), m_group);
  form->addRow(m_sym);
  form->addRow(m_act_order);
  form->addRow(m_static_groups);
  form->addRow(m_mse);
  form->addRow(m_true_seq);
  form->addRow(tr("Damping"), m_damp);
  form->addRow(tr("Block size"), m_blocksize);
  form->addRow(tr("Samples"), m_nsamples);
  form->addRow(tr("Sequence length"), m_seqlen);
  form->addRow(tr("Seed"), m_seed);
  form->addRow(tr("Eval sequence length"), m_eval_seqlen);
  form->addRow(tr("Eval windows"), m_eval_windows);
  form->addRow(tr("JSONL text field"), m_calib_field);
  form->addRow(tr("Keep in fp16"), m_skip);
  form->addRow(m_pad_unloadable);
  form->addRow(tr("Threads"), m_threads);
  form->addRow(tr("Device"), m_device);
  form->addRow(m_problems);

  RunSpec first;
  first.eval.max_windows = kFirstRunEvalWindows;
  setSpec(first);

  auto edited = [this] { revalidate(); };
  for (QComboBox* c : {m_bits, m_group, m_device})
    connect(c, &QComboBox::currentTextChanged, this, edited);
  for (QCheckBox* c : {m_sym, m_mse, m_act_order, m_static_groups, m_true_seq, m_pad_unloadable})
    connect(c, &QCheckBox::toggled, this, edited);
  for (QSpinBox* s : {m_blocksize, m_nsamples, m_seqlen, m_seed, m_threads, m_eval_seqlen, m_eval_windows})
    connect(s, &QSpinBox::valueChanged, this, edited);
  connect(m_damp, &QDoubleSpinBox::valueChanged, this, edited);
  connect(m_skip, &QLineEdit::textChanged, this, edited);
  connect(m_calib_field, &QLineEdit::editingFinished, this, &SettingsForm::calibrationFieldChanged);
  revalidate();
}

RunSpec SettingsForm::spec() const {
  RunSpec s;
  QuantizeOptions& o = s.options;
  o.gptq.quant.bits = m_bits->currentData().toInt();
  const QString group = m_group->currentText().trimmed();
  bool ok = true;
  o.gptq.quant.group_size = group == kPerRow || group == "-1" ? -1 : group.toInt(&ok);
  if (!ok || o.gptq.quant.group_size == 0 || o.gptq.quant.group_size < -1)
    throw ConfigError("group size must be a positive number or 'per row', got '" +
                      group.toStdString() + "'");
  o.gptq.quant.sym = m_sym->isChecked();
  o.gptq.quant.mse = m_mse->isChecked();
  o.gptq.act_order = m_act_order->isChecked();
  o.gptq.static_groups = m_static_groups->isChecked();
  o.gptq.damp_fraction = m_damp->value();
  o.gptq.blocksize = m_blocksize->value();
  o.true_sequential = m_true_seq->isChecked();
  for (const QString& name : m_skip->text().split(',', Qt::SkipEmptyParts))
    o.skip.insert(parse_linear_name(name.trimmed().toStdString()));
  s.nsamples = m_nsamples->value();
  s.seqlen = m_seqlen->value();
  s.seed = static_cast<uint64_t>(m_seed->value());
  s.eval.seqlen = m_eval_seqlen->value();
  s.eval.max_windows = m_eval_windows->value();
  s.threads = m_threads->value();
  o.device = device();
  s.pad_unloadable = m_pad_unloadable->isChecked();
  s.calib_options.jsonl_field = calibrationField();
  return s;
}

void SettingsForm::setSpec(const RunSpec& s) {
  const QuantizeOptions& o = s.options;
  setBits(o.gptq.quant.bits);
  setGroupSize(o.gptq.quant.group_size);
  m_sym->setChecked(o.gptq.quant.sym);
  m_mse->setChecked(o.gptq.quant.mse);
  m_act_order->setChecked(o.gptq.act_order);
  m_static_groups->setChecked(o.gptq.static_groups);
  m_true_seq->setChecked(o.true_sequential);
  m_damp->setValue(o.gptq.damp_fraction);
  m_blocksize->setValue(o.gptq.blocksize);
  QStringList skip;
  for (LinearKind k : kAllLinears)
    if (o.skip.count(k)) skip << qs(linear_name(k));
  m_skip->setText(skip.join(", "));
  setSamples(s.nsamples, s.seqlen);
  setSeed(static_cast<int>(s.seed));
  setEvalWindows(s.eval.seqlen, s.eval.max_windows);
  // 0 threads: all of them.
  m_threads->setValue(s.threads > 0 ? s.threads : m_threads->maximum());
  setDevice(o.device);
  m_pad_unloadable->setChecked(s.pad_unloadable);
  // The default field shows as the placeholder.
  const bool default_field = s.calib_options.jsonl_field == CalibrationOptions().jsonl_field;
  m_calib_field->setText(default_field ? QString() : qs(s.calib_options.jsonl_field));
}

std::string SettingsForm::calibrationField() const {
  const QString f = m_calib_field->text().trimmed();
  return f.isEmpty() ? CalibrationOptions().jsonl_field : f.toStdString();
}

void SettingsForm::setPadUnloadable(bool on) { m_pad_unloadable->setChecked(on); }
void SettingsForm::setCalibrationField(const QString& field) {
  m_calib_field->setText(field);
  emit calibrationFieldChanged();
}

int SettingsForm::threads() const { return m_threads->value(); }

Device SettingsForm::device() const {
  // The entries are in Device's order: Auto, CPU, GPU.
  return static_cast<Device>(m_device->currentIndex());
}

bool SettingsForm::gpuProbed() const { return m_gpu_probed; }

bool SettingsForm::setDevice(Device device) {
  const int index = static_cast<int>(device);
  const auto* items = qobject_cast<QStandardItemModel*>(m_device->model());
  if (items && !items->item(index)->isEnabled()) return false;
  m_device->setCurrentIndex(index);
  return true;
}

void SettingsForm::setGpuStatus(bool available, const QString& status) {
  // Without a CUDA backend that answers, the GPU entry stays visible but disabled, with the
  // reason ("this build has no CUDA backend", "no CUDA device answers: ...").
  if (auto* items = qobject_cast<QStandardItemModel*>(m_device->model())) {
    QStandardItem* gpu = items->item(2);
    gpu->setEnabled(available);
    gpu->setToolTip(status);
  }
  m_device->setToolTip(tr("Auto uses the GPU when one answers. GPU: %1").arg(status));
}

void SettingsForm::setModelConfig(std::optional<ModelConfig> config) {
  m_config = std::move(config);
  if (m_config && m_config->max_position_embeddings > 0) {
    // Windows longer than the model was trained on make no sense for calibration or evaluation.
    m_seqlen->setMaximum(m_config->max_position_embeddings);
    m_eval_seqlen->setMaximum(m_config->max_position_embeddings);
  }
  revalidate();
}

void SettingsForm::setCalibrationTokens(int64_t tokens) {
  m_calib_tokens = tokens;
  revalidate();
}

void SettingsForm::setBits(int bits) { m_bits->setCurrentIndex(m_bits->findData(bits)); }
void SettingsForm::setGroupSize(int g) { m_group->setCurrentText(g < 0 ? kPerRow : QString::number(g)); }
void SettingsForm::setActOrder(bool on) { m_act_order->setChecked(on); }
void SettingsForm::setSamples(int nsamples, int seqlen) {
  m_nsamples->setValue(nsamples);
  m_seqlen->setValue(seqlen);
}
void SettingsForm::setSeed(int seed) { m_seed->setValue(seed); }
void SettingsForm::setEvalWindows(int seqlen, int max_windows) {
  m_eval_seqlen->setValue(seqlen);
  m_eval_windows->setValue(max_windows);
}

void SettingsForm::revalidate() {
  m_run_problems.clear();
  m_notes.clear();
  m_static_groups->setEnabled(m_act_order->isChecked());
  std::optional<RunSpec> s;
  try {
    s = spec();
  } catch (const Error& e) {
    m_run_problems << QString::fromStdString(e.what());
  }
  if (s) {
    const RunSettingsCheck check =
        check_run_settings(*s, m_config ? &*m_config : nullptr, m_calib_tokens);
    for (const SettingsProblem& p : check.problems)
      if (p.severity == SettingsProblem::Severity::blocks_run) m_run_problems << stopText(p, *s);
    m_notes = notesOf(check.problems);
  }
  renderProblems();
  emit changed();
}

namespace {

QString shortNames(const std::vector<LinearKind>& modules) {
  QStringList names;
  for (LinearKind k : modules) names << qs(linear_short_name(k));
  return names.join(", ");
}

// The ways out of a problem in the window's words: the form's own fields.
QString remedies(const std::vector<SettingsRemedy>& remedies) {
  using R = SettingsRemedy::Kind;
  QStringList sizes, ways;
  for (const SettingsRemedy& r : remedies) switch (r.kind) {
      case R::use_group_size:
        sizes << (r.value == -1 ? SettingsForm::tr("per row") : QString::number(r.value));
        break;
      case R::keep_in_fp16: {
        QStringList names;
        for (LinearKind k : r.modules) names << qs(linear_name(k));
        ways << SettingsForm::tr("add %1 to \"Keep in fp16\"").arg(names.join(", "));
        break;
      }
      case R::quantize_padded:
        ways << SettingsForm::tr("tick \"Quantize modules loaders cannot read\" to quantize them "
                                 "anyway, zero-padded");
        break;
      case R::fewer_samples:
        ways << SettingsForm::tr("set Samples to %1 or fewer").arg(r.value);
        break;
      case R::shorter_windows:
        ways << SettingsForm::tr("set Sequence length to %1 or less").arg(r.value);
        break;
    }
  if (!sizes.isEmpty()) {
    const QString last = sizes.takeLast();
    const QString all = sizes.isEmpty() ? last : SettingsForm::tr("%1 or %2").arg(sizes.join(", "), last);
    ways.prepend(SettingsForm::tr("set Group size to %1").arg(all));
  }
  return ways.join(SettingsForm::tr(", or "));
}

// One kind of export problem in the window's words, for the line that gathers its modules.
QString kindSummary(ExportIssue::Kind kind) {
  using K = ExportIssue::Kind;
  switch (kind) {
    case K::in_features_not_32:
      return SettingsForm::tr("input width not a multiple of 32: GPTQ loaders (AutoGPTQ, "
                              "GPTQModel, transformers, vLLM) will refuse these layers");
    case K::out_features_not_32:
      return SettingsForm::tr("output width not a multiple of 32: GPTQ loaders will refuse "
                              "these layers");
    case K::partial_last_group:
      return SettingsForm::tr("input width not a multiple of the group size: ExLlama and "
                              "vLLM's Marlin kernel need whole groups");
    case K::group_over_input:
      return SettingsForm::tr("group size larger than the input width: vLLM will refuse these "
                              "layers");
    case K::no_marlin_shape:
      return SettingsForm::tr("shapes vLLM's Marlin kernel cannot take: vLLM will use its slower "
                              "kernel (the layers still load)");
    default:
      return {};  // whole-model issues: their own message is the line
  }
}

// "mlp.down_proj [64, 172]: <why>", a module's line behind "details".
QString moduleLine(std::string_view module, int64_t out, int64_t in, const std::string& why) {
  return SettingsForm::tr("%1 [%2, %3]: %4")
      .arg(qs(module))
      .arg(out)
      .arg(in)
      .arg(QString::fromStdString(why));
}

}  // namespace

QString SettingsForm::stopText(const SettingsProblem& p, const RunSpec& s) const {
  using K = SettingsProblem::Kind;
  QString text;
  switch (p.kind) {
    case K::calibration_too_short:
      text = tr("the calibration text has %1 tokens, fewer than one window of %2")
                 .arg(p.tokens)
                 .arg(s.seqlen + 1);
      break;
    case K::too_few_windows:
      text = tr("the calibration text allows at most %1 windows of %2 tokens, not %3")
                 .arg(p.windows)
                 .arg(s.seqlen)
                 .arg(s.nsamples);
      break;
    case K::every_module_kept:
      text = tr("every module is kept in fp16: nothing to quantize");
      break;
    case K::nothing_loadable:
      text = tr("GPTQ loaders could not load any module of this model quantized with these "
                "settings (%1: %2)")
                 .arg(QString::fromStdString(s.options.gptq.quant.describe()), shortNames(p.modules));
      break;
    default:  // the options' own error, in core's words
      text = QString::fromStdString(p.message);
  }
  const QString ways = remedies(p.remedies);
  return ways.isEmpty() ? text : tr("%1. To go on: %2.").arg(text, ways);
}

QStringList SettingsForm::noteSummaries(bool errors) const {
  QStringList out;
  for (const Note& n : m_notes)
    if (n.error == errors) out << n.summary;
  return out;
}

QList<SettingsForm::Note> SettingsForm::notesOf(const std::vector<SettingsProblem>& problems) const {
  QList<Note> notes;
  for (const SettingsProblem& p : problems) {
    if (p.severity == SettingsProblem::Severity::blocks_run) continue;
    Note n;
    n.error = p.severity == SettingsProblem::Severity::blocks_export;
    const QString ways = remedies(p.remedies);
    if (p.kind == SettingsProblem::Kind::kept_for_loaders) {
      n.key = "kept";
      for (const UnloadableModule& m : p.unloadable)
        n.details << moduleLine(linear_name(m.kind), m.out_features, m.in_features, m.reason);
      n.summary = tr("%n module(s) stay in fp16, as GPTQ loaders could not load them quantized: "
                     "%1 (\"Quantize modules loaders cannot read\" quantizes them anyway)",
                     nullptr, int(p.unloadable.size()))
                      .arg(shortNames(p.modules));
    } else if (p.modules.empty()) {  // an export issue of the whole model: its own sentence
      n.key = QString("issue-%1-%2").arg(int(p.export_kind)).arg(notes.size());
      n.summary = QString::fromStdString(p.message);
    } else {  // an export issue of some modules: one line, the modules behind "details"
      n.key = QString("kind-%1").arg(int(p.export_kind));
      for (const ExportIssue& i : p.issues)
        n.details << moduleLine(i.module, i.out_features, i.in_features, i.message);
      n.summary = tr("%1 (%2)").arg(kindSummary(p.export_kind), shortNames(p.modules)) +
                  (ways.isEmpty() ? QString() : tr(". To avoid it: %1.").arg(ways));
    }
    notes << n;
  }
  return notes;
}

void SettingsForm::renderProblems() {
  // One line per kind of problem; a line that gathers several modules expands to them on a
  // click ("details"), so that a long list never pushes the rest of the panel away.
  QString html;
  auto list = [&](const QStringList& items, const char* colour, const QString& title) {
    if (items.isEmpty()) return;
    html += QString("<p style='color:%1'><b>%2</b><br>").arg(colour, title.toHtmlEscaped());
    for (const QString& item : items) html += item.toHtmlEscaped() + "<br>";
    html += "</p>";
  };
  auto notes = [&](bool errors, const char* colour, const QString& title) {
    QString body;
    for (const Note& n : m_notes) {
      if (n.error != errors) continue;
      body += n.summary.toHtmlEscaped();
      if (!n.details.isEmpty()) {
        const bool open = m_expanded.contains(n.key);
        body += QString(" <a href='%1'>%2</a>").arg(n.key, open ? tr("hide") : tr("details"));
        if (open)
          for (const QString& d : n.details) body += "<br>&nbsp;&nbsp;" + d.toHtmlEscaped();
      }
      body += "<br>";
    }
    if (!body.isEmpty())
      html += QString("<p style='color:%1'><b>%2</b><br>%3</p>").arg(colour, title.toHtmlEscaped(), body);
  };
  list(m_run_problems, "#d03030", tr("Cannot run:"));
  notes(true, "#d03030", tr("Cannot export these settings:"));
  notes(false, "#b07000", tr("Note:"));
  m_problems->setText(html);
  m_problems->setVisible(!html.isEmpty());
}

void SettingsForm::save(QSettings& st) const {
  st.beginGroup("settings");
  st.setValue("bits", m_bits->currentData());
  st.setValue("group", m_group->currentText());
  st.setValue("sym", m_sym->isChecked());
  st.setValue("mse", m_mse->isChecked());
  st.setValue("act_order", m_act_order->isChecked());
  st.setValue("static_groups", m_static_groups->isChecked());
  st.setValue("true_sequential", m_true_seq->isChecked());
  st.setValue("damp", m_damp->value());
  st.setValue("blocksize", m_blocksize->value());
  st.setValue("nsamples", m_nsamples->value());
  st.setValue("seqlen", m_seqlen->value());
  st.setValue("seed", m_seed->value());
  st.setValue("eval_seqlen", m_eval_seqlen->value());
  st.setValue("eval_windows", m_eval_windows->value());
  st.setValue("skip", m_skip->text());
  st.setValue("pad_unloadable", m_pad_unloadable->isChecked());
  st.setValue("calib_field", m_calib_field->text());
  st.setValue("threads", m_threads->value());
  st.setValue("device", m_device->currentIndex());
  st.endGroup();
}

void SettingsForm::restore(QSettings& st) {
  st.beginGroup("settings");
  if (st.contains("bits")) setBits(st.value("bits").toInt());
  m_group->setCurrentText(st.value("group", m_group->currentText()).toString());
  m_sym->setChecked(st.value("sym", m_sym->isChecked()).toBool());
  m_mse->setChecked(st.value("mse", m_mse->isChecked()).toBool());
  m_act_order->setChecked(st.value("act_order", m_act_order->isChecked()).toBool());
  m_static_groups->setChecked(st.value("static_groups", m_static_groups->isChecked()).toBool());
  m_true_seq->setChecked(st.value("true_sequential", m_true_seq->isChecked()).toBool());
  m_damp->setValue(st.value("damp", m_damp->value()).toDouble());
  m_blocksize->setValue(st.value("blocksize", m_blocksize->value()).toInt());
  m_nsamples->setValue(st.value("nsamples", m_nsamples->value()).toInt());
  m_seqlen->setValue(st.value("seqlen", m_seqlen->value()).toInt());
  m_seed->setValue(st.value("seed", m_seed->value()).toInt());
  m_eval_seqlen->setValue(st.value("eval_seqlen", m_eval_seqlen->value()).toInt());
  m_eval_windows->setValue(st.value("eval_windows", m_eval_windows->value()).toInt());
  m_skip->setText(st.value("skip", m_skip->text()).toString());
  m_pad_unloadable->setChecked(st.value("pad_unloadable", false).toBool());
  m_calib_field->setText(st.value("calib_field", m_calib_field->text()).toString());
  m_threads->setValue(st.value("threads", m_threads->value()).toInt());
  int device = st.value("device", 0).toInt();
  m_device->setCurrentIndex(device == 2 ? 0 : device);  // never restore a disabled choice
  st.endGroup();
  revalidate();
}

}  // namespace gptqw::ui
