// The advisor's curve: bits per weight (x) against KL divergence from the original (y, log
// scale), one series of points per kind (the plans, the uniform settings), each point named
// (hover for its label and values). The Advisor view draws the advice's points with it.
#pragma once

#include <QColor>
#include <QString>
#include <memory>
#include <vector>

#include "plots/chart_panel.h"

namespace gptqw::ui::plots {

class AdviceCurveChart : public ChartPanel {
  Q_OBJECT
 public:
  struct Point {
    double x = 0, y = 0;
    QString label;
  };
  struct Series {
    QString name;
    QColor color;
    std::vector<Point> points;  // drawn joined in order of x
  };

  explicit AdviceCurveChart(QWidget* parent = nullptr);
  ~AdviceCurveChart() override;

  // Replaces the chart; points with y <= 0 are drawn at the axis floor.
  void setData(const QString& title, const QString& y_title, const std::vector<Series>& series);
  void setEmpty(const QString& title);
  const std::vector<Series>& series() const;
  QString yTitle() const;

  int pointCount() const override;
  void clear() override { setEmpty(QString()); }

 protected:
  QString exportName() const override { return QStringLiteral("advisor-curve"); }
  void restyle() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> d;
};

}  // namespace gptqw::ui::plots
