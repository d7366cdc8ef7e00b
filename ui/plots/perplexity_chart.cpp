#include "plots/perplexity_chart.h"

#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSeries>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <cmath>

namespace gptqw::ui::plots {

namespace {

// Original in neutral grey, the RTN baseline and GPTQ in the error chart's orange and blue.
constexpr QRgb kOriginalColor = 0x8c8c8c;
constexpr QRgb kRtnColor = 0xf28e2b;
constexpr QRgb kGptqColor = 0x4e79a7;

}  // namespace

QColor modelColor(const std::string& model) {
  return QColor(model == "rtn" ? kRtnColor : model == "gptq" ? kGptqColor : kOriginalColor);
}

struct PerplexityChart::Impl {
  struct Bar {
    QString name;
    QRgb color;
    double value;
    std::optional<double> se;  // its standard error, where the report has one
  };
  std::vector<Bar> bars;
  QString text;
  PerplexitySummary summary;  // the values shown; with an original, bars.front() is it
  QBarSeries* series = nullptr;
  QBarCategoryAxis* x = nullptr;
  QValueAxis* y = nullptr;
  QChart* chart = nullptr;
};

PerplexityChart::PerplexityChart(QWidget* parent)
    : ChartPanel(parent), d(std::make_unique<Impl>()) {
  QChart* c = chart();
  d->chart = c;
  d->series = new QBarSeries;
  d->series->setBarWidth(0.8);
  d->series->setLabelsVisible(true);
  d->series->setLabelsFormat(QStringLiteral("@value"));
  d->series->setLabelsPosition(QAbstractBarSeries::LabelsOutsideEnd);
  c->addSeries(d->series);
  d->x = new QBarCategoryAxis;
  // A single, blank category: the axis title says what it is. (Hidden labels would make the
  // chart elide the axis title.)
  d->y = new QValueAxis;
  d->y->setLabelFormat(QStringLiteral("%g"));
  d->y->setTitleText(tr("Perplexity"));
  c->addAxis(d->x, Qt::AlignBottom);
  c->addAxis(d->y, Qt::AlignLeft);
  d->series->attachAxis(d->x);
  d->series->attachAxis(d->y);
  c->legend()->setAlignment(Qt::AlignBottom);

  connect(d->series, &QBarSeries::hovered, this, [this](bool on, int, QBarSet* set) {
    const int i = int(d->series->barSets().indexOf(set));
    if (!on || i < 0 || size_t(i) >= d->bars.size()) return hideToolTip();
    const Impl::Bar& b = d->bars[size_t(i)];
    QString text = tr("<b>%1</b><br>perplexity %2").arg(b.name, QString::number(b.value, 'g', 8));
    // Relative to the original model, the number that says what quantization cost.
    if (const auto pct = d->summary.percent_over_original(b.value); pct && i > 0)
      text += tr("<br>%1% vs original").arg(QString::number(*pct, 'f', 2));
    showToolTip(text);
  });

  setMinimumSize(440, 280);  // room for the legend's changes against the original
  clear();
  applyTheme();
}

PerplexityChart::~PerplexityChart() = default;

void PerplexityChart::restyle() {
  const QList<QBarSet*> sets = d->series->barSets();
  const QColor text = palette().windowText().color();
  for (int i = 0; i < sets.size() && size_t(i) < d->bars.size(); ++i) {
    const QColor color(d->bars[size_t(i)].color);
    sets[i]->setColor(color);
    sets[i]->setBorderColor(color.darker(130));
    sets[i]->setLabelColor(text);
  }
}

QList<double> PerplexityChart::values() const {
  QList<double> v;
  for (const Impl::Bar& b : d->bars) v << b.value;
  return v;
}

QStringList PerplexityChart::legendNames() const {
  QStringList names;
  for (const QBarSet* set : d->series->barSets()) names << set->label();
  return names;
}

std::pair<double, double> PerplexityChart::axisRange() const { return {d->y->min(), d->y->max()}; }
QString PerplexityChart::xTitle() const { return d->x->titleText(); }

int PerplexityChart::pointCount() const {
  return int(d->bars.size());
}

void PerplexityChart::clear() {
  d->bars.clear();
  d->text.clear();
  d->summary = {};
  d->series->clear();
  d->x->clear();
  d->x->setTitleText(QString());
  d->y->setRange(0, 1);
  d->chart->setTitle(tr("Perplexity: not evaluated"));
}

void PerplexityChart::setPerplexity(const std::optional<PerplexitySummary>& p) {
  clear();
  if (!p) return;
  const std::pair<const std::optional<double>*, Impl::Bar> candidates[] = {
      {&p->original, {tr("Original"), kOriginalColor, 0, p->original_se}},
      {&p->rtn, {tr("RTN"), kRtnColor, 0, p->rtn_se}},
      {&p->gptq, {tr("GPTQ"), kGptqColor, 0, p->gptq_se}}};
  for (const auto& [value, bar] : candidates) {
    if (!value->has_value()) continue;
    d->bars.push_back(bar);
    d->bars.back().value = **value;
  }
  d->summary = *p;
  d->text = QString::fromStdString(p->text);
  const QString where = tr("%1 windows of %2 tokens").arg(p->windows).arg(p->seqlen);
  if (d->bars.empty()) {
    d->chart->setTitle(tr("Perplexity on %1: not evaluated").arg(d->text));
    return;
  }

  double lo = d->bars.front().value, hi = lo;
  for (const Impl::Bar& b : d->bars) {
    lo = std::min(lo, b.value);
    hi = std::max(hi, b.value);
  }
  // Each quantized model's legend entry says how much worse it is than the original, and
  // GPTQ's what share of RTN's loss it recovers: the numbers the bars are there to compare.
  const std::optional<double> recovered = p->gptq_recovered_share();
  for (size_t i = 0; i < d->bars.size(); ++i) {
    const Impl::Bar& b = d->bars[i];
    QString name = b.name;
    if (b.se) name += tr(" %1 ± %2").arg(b.value, 0, 'f', 3).arg(*b.se, 0, 'f', 3);
    if (const auto pct = p->percent_over_original(b.value); pct && i > 0) {
      auto with_sign = [](double v, int decimals) {
        return (v >= 0 ? QStringLiteral("+") : QString()) + QString::number(v, 'f', decimals);
      };
      name += tr("%1 %2% (%3)").arg(b.se ? QStringLiteral(",") : QString()).arg(with_sign(*pct, 2), with_sign(b.value - *p->original, 3));
    }
    auto* set = new QBarSet(name);
    set->append(b.value);
    d->series->append(set);
  }
  // About three decimals on the smallest value (5.684, 12.35): the labels use significant
  // digits, so add the integer digits to the decimals wanted.
  const int integerDigits = lo >= 1 && std::isfinite(lo) ? int(std::floor(std::log10(lo))) + 1 : 1;
  d->series->setLabelsPrecision(std::clamp(integerDigits + 3, 3, 12));
  // One category: the bars are told apart by the legend, so the axis names the windows.
  d->x->append(QStringLiteral(" "));
  d->x->setTitleText(recovered ? tr("GPTQ recovers %1% of RTN's loss<br>%2")
                                     .arg(QString::number(100 * *recovered, 'f', 0), where)
                               : where);
  // Close values (16.407 / 16.513 / 16.436) would be three equal bars on an axis from 0: the
  // axis then starts near the lowest value, and its title says so.
  const bool zoom = std::isfinite(lo) && std::isfinite(hi) && lo > 0 && (hi - lo) < 0.05 * hi;
  if (zoom) {
    const double margin = std::max(hi - lo, 1e-3 * hi);
    d->y->setRange(std::max(0.0, lo - margin), hi + 0.5 * margin);
    d->y->setTitleText(tr("Perplexity (axis not from 0)"));
    d->y->setTickCount(5);
    d->y->applyNiceNumbers();
  } else {
    d->y->setRange(0, std::isfinite(hi) && hi > 0 ? hi * 1.15 : 1);
    d->y->setTitleText(tr("Perplexity"));
    d->y->setTickCount(5);  // applyNiceNumbers() adapts the previous count
    d->y->applyNiceNumbers();
  }
  d->chart->setTitle(tr("Perplexity on %1 (lower is better)")
                         .arg(d->text.isEmpty() ? tr("the evaluation text") : d->text));
  restyle();
}

}  // namespace gptqw::ui::plots
