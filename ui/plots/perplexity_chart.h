// Perplexity of the original model, the RTN baseline and the GPTQ model on the evaluation
// text: one bar each, its value printed on it, the text named in the title.
#pragma once

#include <QColor>
#include <QList>
#include <memory>
#include <optional>

#include "pipeline/report.h"
#include "plots/chart_panel.h"

namespace gptqw::ui::plots {

// The colour of a model wherever the workbench compares them: the original in neutral grey,
// RTN in orange, GPTQ in blue ("original", "rtn", "gptq"; others grey).
QColor modelColor(const std::string& model);

class PerplexityChart : public ChartPanel {
  Q_OBJECT
 public:
  explicit PerplexityChart(QWidget* parent = nullptr);
  ~PerplexityChart() override;

  void setPerplexity(const std::optional<PerplexitySummary>& p);
  // The plotted values in the order original, RTN, GPTQ (only those present).
  QList<double> values() const;
  // The legend's entries (each quantized model's change against the original) and the value
  // axis's range, for tests.
  QStringList legendNames() const;
  std::pair<double, double> axisRange() const;
  QString xTitle() const;

  int pointCount() const override;
  void clear() override;

 protected:
  QString exportName() const override { return QStringLiteral("perplexity"); }
  void restyle() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> d;
};

}  // namespace gptqw::ui::plots
