// Reconstruction error of every quantized layer, GPTQ against RTN: one pair of points per layer
// (GPTQ filled, RTN hollow, same x so the gap between them is the gain), grouped by block along
// x and coloured by module type; linear or log y. Layers can stream in as they finish.
#pragma once

#include <QColor>
#include <memory>
#include <vector>

#include "pipeline/quantize.h"
#include "plots/chart_panel.h"

namespace gptqw::ui::plots {

// The fixed colour of each module type (q, k, v, o, gate, up, down): distinct on light and
// dark backgrounds, and the same wherever the workbench colours by module type.
QColor moduleColor(LinearKind kind);
// "q_proj", "down_proj": the short module name used in legends and axis labels.
QString moduleShortName(LinearKind kind);

class ErrorChart : public ChartPanel {
  Q_OBJECT
 public:
  explicit ErrorChart(QWidget* parent = nullptr);
  ~ErrorChart() override;

  void setLayers(const std::vector<LayerReport>& layers);
  // Streaming: called as each layer finishes; appends points, cheap for a few hundred layers.
  void addLayer(const LayerReport& layer);

  void setLogScale(bool on);
  bool logScale() const;

  // Index into the layers given (setLayers, then addLayer in order); highlights both of its
  // points. -1 (or an index out of range) selects nothing.
  void selectLayer(int index);
  int selectedLayer() const;

  int pointCount() const override;  // number of layers plotted
  // Block numbers shown under the plot: every block, unless the chart is too narrow even for
  // the smallest label font (then every second or third).
  int labelledBlocks() const;
  void clear() override;

 signals:
  void layerClicked(int index);

 protected:
  QString exportName() const override { return QStringLiteral("gptq-errors"); }
  void restyle() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> d;
};

}  // namespace gptqw::ui::plots
