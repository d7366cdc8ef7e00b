// Weight memory, fp16 against quantized: per module type (summed over blocks, from the layer
// reports) and for the whole model (from the memory summary, which includes the embeddings,
// norms and head that stay fp16). The totals are the estimated VRAM the weights need; the
// title gives them with the saving and the bits per weight.
#pragma once

#include <memory>
#include <vector>

#include "pipeline/report.h"
#include "plots/chart_panel.h"

namespace gptqw::ui::plots {

class MemoryChart : public ChartPanel {
  Q_OBJECT
 public:
  explicit MemoryChart(QWidget* parent = nullptr);
  ~MemoryChart() override;

  void setData(const MemorySummary& m, const std::vector<LayerReport>& layers);
  // The category names in plotting order ("q_proj" ... "down_proj", "Total"), for tests.
  QStringList categories() const;

  int pointCount() const override;  // number of bars
  void clear() override;

 protected:
  QString exportName() const override { return QStringLiteral("weight-memory"); }
  void restyle() override;

 private:
  void fitLabelAngle();

  struct Impl;
  std::unique_ptr<Impl> d;
};

}  // namespace gptqw::ui::plots
