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

struct PerplexityChart::Impl {
  struct Bar {
    QString name;
    QRgb color;
    double value;
  };
  std::vector<Bar> bars;
  QString text;
  bool hasOriginal = false;  // then bars.front() is the original model
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
    if (d->hasOriginal && i > 0)
      text += tr("<br>%1% vs original")
                  .arg(QString::number(100.0 * (b.value / d->bars.front().value - 1), 'f', 2));
    showToolTip(text);
  });

  setMinimumSize(360, 280);
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

int PerplexityChart::pointCount() const {
  return int(d->bars.size());
}

void PerplexityChart::clear() {
  d->bars.clear();
  d->text.clear();
  d->hasOriginal = false;
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
      {&p->original, {tr("Original"), kOriginalColor, 0}},
      {&p->rtn, {tr("RTN"), kRtnColor, 0}},
      {&p->gptq, {tr("GPTQ"), kGptqColor, 0}}};
  for (const auto& [value, bar] : candidates) {
    if (!value->has_value()) continue;
    d->bars.push_back(bar);
    d->bars.back().value = **value;
  }
  d->hasOriginal = p->original.has_value();
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
    auto* set = new QBarSet(b.name);
    set->append(b.value);
    d->series->append(set);
  }
  // About three decimals on the smallest value (5.684, 12.35): the labels use significant
  // digits, so add the integer digits to the decimals wanted.
  const int integerDigits = lo >= 1 && std::isfinite(lo) ? int(std::floor(std::log10(lo))) + 1 : 1;
  d->series->setLabelsPrecision(std::clamp(integerDigits + 3, 3, 12));
  // One category: the bars are told apart by the legend, so the axis names the windows.
  d->x->append(QStringLiteral(" "));
  d->x->setTitleText(where);
  d->y->setRange(0, std::isfinite(hi) && hi > 0 ? hi * 1.15 : 1);
  d->y->setTickCount(5);  // applyNiceNumbers() adapts the previous count
  d->y->applyNiceNumbers();
  d->chart->setTitle(tr("Perplexity on %1 (lower is better)")
                         .arg(d->text.isEmpty() ? tr("the evaluation text") : d->text));
  restyle();
}

}  // namespace gptqw::ui::plots
