#include "plots/grouped_bar_chart.h"

#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSeries>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <cmath>

namespace gptqw::ui::plots {

struct GroupedBarChart::Impl {
  QChart* chart = nullptr;
  QBarSeries* bars = nullptr;
  QBarCategoryAxis* x = nullptr;
  QAbstractAxis* y = nullptr;
  QStringList categories;
  std::vector<Series> series;
};

GroupedBarChart::GroupedBarChart(QString exportName, QWidget* parent)
    : ChartPanel(parent), d(std::make_unique<Impl>()), m_export_name(std::move(exportName)) {
  d->chart = chart();
  d->chart->legend()->setAlignment(Qt::AlignBottom);
  setMinimumSize(420, 260);
  setEmpty(QString());
  applyTheme();
}

GroupedBarChart::~GroupedBarChart() = default;

void GroupedBarChart::setEmpty(const QString& title) {
  setData(title.isEmpty() ? tr("No evaluation yet") : title, QString(), QString(), {}, {}, false);
}

void GroupedBarChart::setData(const QString& title, const QString& x_title, const QString& y_title,
                              const QStringList& categories, const std::vector<Series>& series,
                              bool log_y) {
  QChart* c = d->chart;
  // Rebuilt whole: the axis type changes with log_y, and a series keeps its axes.
  c->removeAllSeries();
  for (QAbstractAxis* axis : c->axes()) {
    c->removeAxis(axis);
    delete axis;
  }
  d->categories = categories;
  d->series = series;
  c->setTitle(title);
  d->bars = new QBarSeries;
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const Series& s : series)
    for (double v : s.values)
      if (v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  const double floor = std::isfinite(lo) ? lo / 10 : 1e-6;
  for (const Series& s : series) {
    auto* set = new QBarSet(s.name);
    for (double v : s.values) set->append(log_y ? std::max(v, floor) : v);
    d->bars->append(set);
  }
  c->addSeries(d->bars);
  d->x = new QBarCategoryAxis;
  d->x->append(categories);
  d->x->setTitleText(x_title);
  c->addAxis(d->x, Qt::AlignBottom);
  if (log_y) {
    auto* y = new QLogValueAxis;
    y->setBase(10);
    y->setLabelFormat(QStringLiteral("%g"));
    y->setRange(floor, std::max(hi, floor * 10) * 2);
    d->y = y;
  } else {
    auto* y = new QValueAxis;
    y->setLabelFormat(QStringLiteral("%g"));
    y->setRange(0, hi > 0 ? hi * 1.15 : 1);
    y->applyNiceNumbers();
    d->y = y;
  }
  d->y->setTitleText(y_title);
  c->addAxis(d->y, Qt::AlignLeft);
  d->bars->attachAxis(d->x);
  d->bars->attachAxis(d->y);
  connect(d->bars, &QBarSeries::hovered, this, [this](bool on, int index, QBarSet* set) {
    const int s = d->bars->barSets().indexOf(set);
    if (!on || s < 0 || index < 0 || index >= d->categories.size()) return hideToolTip();
    showToolTip(QStringLiteral("<b>%1</b>, %2: %3")
                    .arg(d->series[size_t(s)].name, d->categories[index])
                    .arg(d->series[size_t(s)].values[size_t(index)], 0, 'g', 6));
  });
  applyTheme();
}

void GroupedBarChart::restyle() {
  const QList<QBarSet*> sets = d->bars ? d->bars->barSets() : QList<QBarSet*>();
  for (int i = 0; i < sets.size() && size_t(i) < d->series.size(); ++i) {
    const QColor color = d->series[size_t(i)].color;
    sets[i]->setColor(color);
    sets[i]->setBorderColor(color.darker(130));
  }
}

QStringList GroupedBarChart::categories() const { return d->categories; }

std::vector<double> GroupedBarChart::values(int series) const {
  return series >= 0 && size_t(series) < d->series.size() ? d->series[size_t(series)].values : std::vector<double>{};
}

int GroupedBarChart::pointCount() const {
  int n = 0;
  for (const Series& s : d->series) n += int(s.values.size());
  return n;
}

}  // namespace gptqw::ui::plots
