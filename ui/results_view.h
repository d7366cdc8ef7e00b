// The right side of the window: the results pages in tabs (layers, reconstruction error,
// Hessian, memory, perplexity, quality, generations, advisor, log) under a line that says when they were made with other
// settings than the form's. The pages subscribe to the session themselves; the view only
// keeps them on one selected layer, names the data in exported charts, and turns to the page
// a new result concerns.
#pragma once

#include <QString>
#include <QWidget>

#include "pipeline/run.h"

class QLabel;
class QTabWidget;

namespace gptqw::ui {

class AdvisorPage;
class ErrorPage;
class GeneratePage;
class HessianPage;
class LayersPage;
class LogPage;
class MemoryPage;
class PerplexityPage;
class QualityPage;
class RunSession;

class ResultsView : public QWidget {
  Q_OBJECT
 public:
  enum Tab { LayersTab, ErrorTab, HessianTab, MemoryTab, PerplexityTab, QualityTab, GenerateTab, AdvisorTab, LogTab };

  explicit ResultsView(RunSession* session, QWidget* parent = nullptr);

  QTabWidget* tabs() const { return m_tabs; }
  LayersPage* layers() const { return m_layers; }
  ErrorPage* errors() const { return m_errors; }
  HessianPage* hessian() const { return m_hessian; }
  MemoryPage* memory() const { return m_memory; }
  PerplexityPage* perplexity() const { return m_perplexity; }
  QualityPage* quality() const { return m_quality; }
  GeneratePage* generate() const { return m_generate; }
  AdvisorPage* advisor() const { return m_advisor; }
  LogPage* log() const { return m_log; }

  // The line above the results when the settings now in the form (`spec`; null: settings that
  // cannot run) differ from those the results shown were made with; hidden when they match.
  void compareWithSettings(const RunSpec* spec);
  QString staleText() const;  // empty while hidden

 public slots:
  void selectLayer(int index);  // index into the run's layers; -1 clears

 private:
  void setCaption(const QString& caption);

  RunSession* m_session;
  QTabWidget* m_tabs;
  QLabel* m_stale;
  LayersPage* m_layers;
  ErrorPage* m_errors;
  HessianPage* m_hessian;
  MemoryPage* m_memory;
  PerplexityPage* m_perplexity;
  QualityPage* m_quality;
  GeneratePage* m_generate;
  AdvisorPage* m_advisor;
  LogPage* m_log;
};

}  // namespace gptqw::ui
