// Bars in groups: one category per group along x, one bar per series (a model) in each, on a
// linear or logarithmic y axis. The Quality view draws the KL divergence's percentiles and the
// damage by position in the window with it.
#pragma once

#include <QColor>
#include <QStringList>
#include <memory>
#include <vector>

#include "plots/chart_panel.h"

namespace gptqw::ui::plots {

class GroupedBarChart : public ChartPanel {
  Q_OBJECT
 public:
  struct Series {
    QString name;
    QColor color;
    std::vector<double> values;  // one per category
  };

  explicit GroupedBarChart(QString exportName, QWidget* parent = nullptr);
  ~GroupedBarChart() override;

  // Replaces the chart. With a log axis, values at or below 0 are drawn at the axis floor (a
  // tenth of the smallest positive value).
  void setData(const QString& title, const QString& x_title, const QString& y_title,
               const QStringList& categories, const std::vector<Series>& series, bool log_y);
  void setEmpty(const QString& title);
  QStringList categories() const;
  std::vector<double> values(int series) const;

  int pointCount() const override;  // bars
  void clear() override { setEmpty(QString()); }

 protected:
  QString exportName() const override { return m_export_name; }
  void restyle() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> d;
  QString m_export_name;
};

}  // namespace gptqw::ui::plots
