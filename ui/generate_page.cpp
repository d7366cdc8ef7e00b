#include "generate_page.h"

#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QTextBrowser>
#include <QVBoxLayout>

#include "common/error.h"
#include "file_dialogs.h"
#include "format.h"
#include "run_session.h"

namespace gptqw::ui {

GeneratePage::GeneratePage(RunSession* session, QWidget* parent) : QWidget(parent), m_session(session) {
  m_prompts = new QPlainTextEdit;
  m_prompts->setPlaceholderText(tr("One prompt per line, for example:\nOnce upon a time\ndef fibonacci(n):"));
  m_prompts->setPlainText(QStringLiteral("Once upon a time"));
  m_prompts->setMaximumHeight(110);
  auto* load = new QPushButton(tr("Load Prompts…"));
  connect(load, &QPushButton::clicked, this, [this] {
    const QString file = askForPath(this, PathKind::PromptsText);
    if (file.isEmpty()) return;
    try {
      // One per line, newlines written back as \n: what spec() reads (parse_prompts) again.
      QStringList lines;
      for (const std::string& p : read_prompts(fspath(file))) lines << qstr(p).replace('\n', "\\n");
      setPrompts(lines.join('\n'));
    } catch (const Error& e) {
      emit m_session->errorOccurred(tr("Cannot read the prompts"), qstr(e.what()));
    }
  });

  const GenerationSpec defaults;
  const SamplingOptions sampled = defaults.samplings.back();
  m_tokens = new QSpinBox;
  m_tokens->setRange(1, 4096);
  m_tokens->setValue(defaults.new_tokens);
  m_temperature = new QDoubleSpinBox;
  m_temperature->setRange(0, 10);
  m_temperature->setSingleStep(0.1);
  m_temperature->setValue(sampled.temperature);
  m_temperature->setToolTip(tr("The sampled continuation's temperature; 0: greedy only"));
  m_top_p = new QDoubleSpinBox;
  m_top_p->setRange(0.01, 1);
  m_top_p->setSingleStep(0.05);
  m_top_p->setValue(sampled.top_p);
  m_seed = new QSpinBox;
  m_seed->setRange(0, INT32_MAX);
  m_seed->setValue(int(sampled.seed));
  m_seed->setToolTip(tr("The same draws for every model: they differ only where their distributions do"));
  m_generate = new QPushButton(tr("Generate"));
  connect(m_generate, &QPushButton::clicked, this, &GeneratePage::generate);
  m_models = new QLabel;
  m_models->setWordWrap(true);

  auto* settings = new QHBoxLayout;
  auto* form = new QFormLayout;
  form->addRow(tr("New tokens"), m_tokens);
  form->addRow(tr("Temperature"), m_temperature);
  auto* form2 = new QFormLayout;
  form2->addRow(tr("Top-p"), m_top_p);
  form2->addRow(tr("Seed"), m_seed);
  settings->addLayout(form);
  settings->addLayout(form2);
  settings->addStretch(1);
  auto* buttons = new QVBoxLayout;
  buttons->addWidget(load);
  buttons->addWidget(m_generate);
  settings->addLayout(buttons);

  m_results = new QTextBrowser;
  m_results->setOpenLinks(false);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(m_prompts);
  layout->addLayout(settings);
  layout->addWidget(m_models);
  layout->addWidget(m_results, 1);

  connect(session, &RunSession::generationsReady, this, &GeneratePage::show);
  connect(session, &RunSession::busyChanged, this, &GeneratePage::updateState);
  connect(session, &RunSession::modelLoaded, this, &GeneratePage::updateState);
  connect(session, &RunSession::resultsCleared, this, [this] {
    show({});
    updateState();
  });
  connect(session, &RunSession::reportReady, this, [this](const Report&) { updateState(); });
  connect(m_prompts, &QPlainTextEdit::textChanged, this, &GeneratePage::updateState);
  updateState();
}

void GeneratePage::setPrompts(const QString& text) { m_prompts->setPlainText(text); }

GenerationSpec GeneratePage::spec() const {
  GenerationSpec s;
  s.new_tokens = m_tokens->value();
  s.prompts = parse_prompts(m_prompts->toPlainText().toStdString());
  s.samplings = {SamplingOptions{}};
  if (m_temperature->value() > 0)
    s.samplings.push_back({m_temperature->value(), 0, m_top_p->value(), uint64_t(m_seed->value())});
  return s;
}

bool GeneratePage::generate() {
  const GenerationSpec s = spec();
  if (s.prompts.empty()) return false;
  return m_session->generate(s);
}

void GeneratePage::updateState() {
  const QStringList models = m_session->generationModels();
  m_models->setText(models.isEmpty() ? tr("Open a model (and run) to compare its generations.")
                                     : tr("Models: %1").arg(models.join(", ")));
  m_generate->setEnabled(!models.isEmpty() && !m_session->busy() && !spec().prompts.empty());
}

QString GeneratePage::resultsHtml() const { return m_results->toHtml(); }

void GeneratePage::show(const std::vector<PromptGenerations>& generations) {
  m_generations = generations;
  // Each continuation as text, the part from where it leaves the reference's highlighted.
  QString html;
  for (const PromptGenerations& g : generations) {
    const SamplingOptions& s = g.sampling;
    html += QStringLiteral("<h4>%1 <span style='font-weight:normal'>(%2)</span></h4><table cellspacing='4'>")
                .arg(qstr(g.prompt).toHtmlEscaped(),
                     s.greedy() ? tr("greedy")
                                : tr("sampled: temperature %1, top-p %2, seed %3").arg(s.temperature).arg(s.top_p).arg(s.seed));
    for (size_t i = 0; i < g.continuations.size(); ++i) {
      const Continuation& c = g.continuations[i];
      const QByteArray bytes = QByteArray::fromStdString(c.text);
      QString text;
      if (c.diverges_at_byte < 0) {
        text = QString::fromUtf8(bytes).toHtmlEscaped();
      } else {
        // Split at a character boundary: the byte where the texts part may be inside one.
        qsizetype at = c.diverges_at_byte;
        while (at > 0 && (uchar(bytes[at]) & 0xC0) == 0x80) --at;
        text = QString::fromUtf8(bytes.left(at)).toHtmlEscaped() +
               QStringLiteral("<span style='background:#f6d58e;color:#000'>") +
               QString::fromUtf8(bytes.mid(at)).toHtmlEscaped() + QStringLiteral("</span>");
      }
      const QString where = i == 0                   ? tr("reference")
                            : c.diverges_at_token < 0 ? tr("same")
                                                      : tr("parts at token %1").arg(c.diverges_at_token + 1);
      html += QStringLiteral("<tr><td valign='top'><b>%1</b><br><small>%2</small></td><td>%3</td></tr>")
                  .arg(qstr(c.model).toHtmlEscaped(), where, text.replace('\n', "<br>"));
    }
    html += QStringLiteral("</table>");
  }
  m_results->setHtml(html);
}

}  // namespace gptqw::ui
