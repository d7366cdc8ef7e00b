// The Generate view: prompts (typed one per line, or loaded from a file), how many tokens and
// how to sample, and the continuations of the original, RTN and GPTQ models side by side, each
// highlighted from where it first leaves the original's. After a run it compares the run's
// models; with only a model loaded (a GPTQ checkpoint, say) it continues with that one.
#pragma once

#include <QWidget>
#include <vector>

#include "pipeline/generations.h"

class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTextBrowser;

namespace gptqw::ui {

class RunSession;

class GeneratePage : public QWidget {
  Q_OBJECT
 public:
  explicit GeneratePage(RunSession* session, QWidget* parent = nullptr);

  void setPrompts(const QString& text);  // one per line
  GenerationSpec spec() const;
  bool generate();  // false when nothing started (busy, no model, no prompt)
  QString resultsHtml() const;
  const std::vector<PromptGenerations>& generations() const { return m_generations; }

 private:
  void show(const std::vector<PromptGenerations>& generations);
  void updateState();

  RunSession* m_session;
  QPlainTextEdit* m_prompts;
  QSpinBox *m_tokens, *m_seed;
  QDoubleSpinBox *m_temperature, *m_top_p;
  QPushButton* m_generate;
  QLabel* m_models;
  QTextBrowser* m_results;
  std::vector<PromptGenerations> m_generations;
};

}  // namespace gptqw::ui
