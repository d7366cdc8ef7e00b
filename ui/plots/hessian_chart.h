// The Hessian diagonal H[i,i] of one layer (how strongly each input channel fires on the
// calibration data), on a log scale: in channel order, sorted descending, or, with act-order,
// in the order GPTQ quantized the channels, so that the permutation can be seen. Dead channels
// (H[i,i] == 0, inputs that never fired) are marked along the bottom and counted in the title.
#pragma once

#include <memory>

#include "pipeline/quantize.h"
#include "plots/chart_panel.h"

namespace gptqw::ui::plots {

class HessianChart : public ChartPanel {
  Q_OBJECT
 public:
  enum class Order { Channel, Sorted, Quantization };

  explicit HessianChart(QWidget* parent = nullptr);
  ~HessianChart() override;

  // nullptr clears. Copies what it needs (name, diagonal, permutation): the report may go.
  void setLayer(const LayerReport* layer);
  // Quantization order needs the act-order permutation; without one the channel order is
  // shown (and said so in the title), but the requested order is kept for the next layer.
  void setOrder(Order o);
  Order order() const;

  int pointCount() const override;  // hessian_diag.size() of the shown layer
  int deadCount() const;
  // The y value zeros are drawn at (a decade below the smallest positive value); 0 if empty.
  double floorValue() const;
  void clear() override;

 protected:
  QString exportName() const override { return QStringLiteral("hessian-diagonal"); }
  void restyle() override;

 private:
  void rebuild();

  struct Impl;
  std::unique_ptr<Impl> d;
};

}  // namespace gptqw::ui::plots
