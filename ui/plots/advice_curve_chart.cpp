#include "plots/advice_curve_chart.h"

#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QLegendMarker>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <cmath>
#include <limits>

namespace gptqw::ui::plots {

struct AdviceCurveChart::Impl {
  QChart* chart = nullptr;
  std::vector<Series> series;
  std::vector<QLineSeries*> lines;
  std::vector<QScatterSeries*> dots;
  QString y_title;
};

AdviceCurveChart::AdviceCurveChart(QWidget* parent) : ChartPanel(parent), d(std::make_unique<Impl>()) {
  d->chart = chart();
  d->chart->legend()->setAlignment(Qt::AlignBottom);
  setMinimumSize(360, 240);
  setEmpty(QString());
  applyTheme();
}

AdviceCurveChart::~AdviceCurveChart() = default;

void AdviceCurveChart::setEmpty(const QString& title) {
  setData(title.isEmpty() ? tr("No advice yet") : title, QString(), {});
}

void AdviceCurveChart::setData(const QString& title, const QString& y_title, const std::vector<Series>& series) {
  QChart* c = d->chart;
  c->removeAllSeries();
  for (QAbstractAxis* axis : c->axes()) {
    c->removeAxis(axis);
    delete axis;
  }
  d->series = series;
  for (Series& s : d->series)
    std::sort(s.points.begin(), s.points.end(), [](const Point& a, const Point& b) { return a.x < b.x; });
  d->lines.clear();
  d->dots.clear();
  d->y_title = y_title;
  c->setTitle(title);
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo;
  for (const Series& s : d->series)
    for (const Point& p : s.points) {
      if (p.y > 0) lo = std::min(lo, p.y), hi = std::max(hi, p.y);
      xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
    }
  const double floor = std::isfinite(lo) ? lo / 2 : 1e-4;
  auto* x = new QValueAxis;
  x->setTitleText(tr("Bits per weight"));
  x->setLabelFormat(QStringLiteral("%.1f"));
  if (std::isfinite(xlo)) x->setRange(std::floor(xlo - 0.25), std::ceil(xhi + 0.25));
  else x->setRange(2, 8);
  auto* y = new QLogValueAxis;
  y->setBase(10);
  y->setLabelFormat(QStringLiteral("%g"));
  y->setMinorTickCount(-1);
  y->setRange(floor, std::isfinite(lo) ? std::max(hi * 2, floor * 10) : 1);
  y->setTitleText(y_title);
  c->addAxis(x, Qt::AlignBottom);
  c->addAxis(y, Qt::AlignLeft);
  for (size_t i = 0; i < d->series.size(); ++i) {
    const Series& s = d->series[i];
    auto* line = new QLineSeries;
    auto* dots = new QScatterSeries;
    dots->setName(s.name);
    dots->setMarkerSize(9);
    for (const Point& p : s.points) {
      line->append(p.x, std::max(p.y, floor));
      dots->append(p.x, std::max(p.y, floor));
    }
    c->addSeries(line);
    c->addSeries(dots);
    for (QAbstractSeries* a : {static_cast<QAbstractSeries*>(line), static_cast<QAbstractSeries*>(dots)}) {
      a->attachAxis(x);
      a->attachAxis(y);
    }
    // One legend entry per series: its dots.
    for (QLegendMarker* m : c->legend()->markers(line)) m->setVisible(false);
    connect(dots, &QScatterSeries::hovered, this, [this, i](const QPointF& at, bool on) {
      if (!on) return hideToolTip();
      const Series& s = d->series[i];
      const Point* best = nullptr;
      for (const Point& p : s.points)
        if (!best || std::abs(p.x - at.x()) < std::abs(best->x - at.x())) best = &p;
      if (best)
        showToolTip(QStringLiteral("<b>%1</b><br>%2 bits per weight<br>KLD %3")
                        .arg(best->label.toHtmlEscaped())
                        .arg(best->x, 0, 'f', 3)
                        .arg(best->y, 0, 'g', 4));
    });
    d->lines.push_back(line);
    d->dots.push_back(dots);
  }
  applyTheme();
}

void AdviceCurveChart::restyle() {
  for (size_t i = 0; i < d->series.size() && i < d->lines.size(); ++i) {
    const QColor color = d->series[i].color;
    QPen pen(color);
    pen.setWidthF(1.5);
    d->lines[i]->setPen(pen);
    d->dots[i]->setColor(color);
    d->dots[i]->setBorderColor(color.darker(130));
  }
}

const std::vector<AdviceCurveChart::Series>& AdviceCurveChart::series() const { return d->series; }
QString AdviceCurveChart::yTitle() const { return d->y_title; }

int AdviceCurveChart::pointCount() const {
  int n = 0;
  for (const Series& s : d->series) n += int(s.points.size());
  return n;
}

}  // namespace gptqw::ui::plots
