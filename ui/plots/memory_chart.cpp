#include "plots/memory_chart.h"

#include <QFontMetricsF>
#include <QLocale>
#include <QtCharts/QBarCategoryAxis>
#include <QtCharts/QBarSeries>
#include <QtCharts/QBarSet>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <array>

#include "format.h"
#include "plots/error_chart.h"

namespace gptqw::ui::plots {

namespace {

constexpr QRgb kFp16Color = 0x8c8c8c;       // the baseline: neutral
constexpr QRgb kQuantizedColor = 0x4e79a7;  // the result: the workbench's accent blue

struct Unit {
  double bytes;
  const char* name;
};

// The largest binary unit in which the biggest bar is at least 1, so bar labels stay short.
Unit unitFor(uint64_t largest) {
  if (largest >= (uint64_t(1) << 30)) return {double(uint64_t(1) << 30), "GiB"};
  if (largest >= (uint64_t(1) << 20)) return {double(uint64_t(1) << 20), "MiB"};
  return {1024.0, "KiB"};
}

}  // namespace

struct MemoryChart::Impl {
  struct Bar {
    QString category, description;
    uint64_t fp16 = 0, quantized = 0;
  };
  std::vector<Bar> bars;  // one category each: two bars
  QBarSeries* series = nullptr;
  QBarCategoryAxis* x = nullptr;
  QValueAxis* y = nullptr;
  QChart* chart = nullptr;
};

MemoryChart::MemoryChart(QWidget* parent) : ChartPanel(parent), d(std::make_unique<Impl>()) {
  QChart* c = chart();
  d->chart = c;
  d->series = new QBarSeries;
  d->series->setBarWidth(0.75);
  d->series->setLabelsVisible(true);
  d->series->setLabelsFormat(QStringLiteral("@value"));
  d->series->setLabelsPosition(QAbstractBarSeries::LabelsOutsideEnd);
  d->series->setLabelsPrecision(3);
  c->addSeries(d->series);
  d->x = new QBarCategoryAxis;
  d->x->setTitleText(tr("Module type (bits per weight)"));
  d->y = new QValueAxis;
  d->y->setLabelFormat(QStringLiteral("%g"));
  c->addAxis(d->x, Qt::AlignBottom);
  c->addAxis(d->y, Qt::AlignLeft);
  d->series->attachAxis(d->x);
  d->series->attachAxis(d->y);
  c->legend()->setAlignment(Qt::AlignBottom);
  connect(c, &QChart::plotAreaChanged, this, [this] { fitLabelAngle(); });

  connect(d->series, &QBarSeries::hovered, this, [this](bool on, int index, QBarSet* set) {
    if (!on || index < 0 || size_t(index) >= d->bars.size()) return hideToolTip();
    const Impl::Bar& b = d->bars[size_t(index)];
    const bool fp16 = d->series->barSets().indexOf(set) == 0;
    const uint64_t bytes = fp16 ? b.fp16 : b.quantized;
    showToolTip(tr("<b>%1</b><br>%2: %3 (%4 bytes)")
                    .arg(b.description, fp16 ? tr("fp16") : tr("quantized"), formatBytes(bytes),
                         QLocale().toString(qulonglong(bytes))));
  });

  setMinimumSize(560, 340);
  clear();
  applyTheme();
}

MemoryChart::~MemoryChart() = default;

void MemoryChart::restyle() {
  const QList<QBarSet*> sets = d->series->barSets();
  const QColor text = palette().windowText().color();
  for (int i = 0; i < sets.size(); ++i) {
    const QColor color(i == 0 ? kFp16Color : kQuantizedColor);
    sets[i]->setColor(color);
    sets[i]->setBorderColor(color.darker(130));
    sets[i]->setLabelColor(text);
  }
}

void MemoryChart::fitLabelAngle() {
  // Values printed across narrow bars would run into their neighbours': turn them upright.
  const QList<QBarSet*> sets = d->series->barSets();
  if (sets.isEmpty() || d->bars.empty()) return;
  const QFontMetricsF metrics(sets.front()->labelFont());
  double widest = 0;
  for (QBarSet* set : sets)
    for (int i = 0; i < set->count(); ++i)
      widest = std::max(widest, metrics.horizontalAdvance(QString::number(set->at(i), 'g', 3)));
  const double barWidth = d->chart->plotArea().width() / double(d->bars.size()) *
                          d->series->barWidth() / double(sets.size());
  const double angle = barWidth < widest + 4 ? -90 : 0;
  if (d->series->labelsAngle() != angle) d->series->setLabelsAngle(angle);
}

QStringList MemoryChart::categories() const {
  QStringList names;
  for (const Impl::Bar& b : d->bars) names << b.category;
  return names;
}

int MemoryChart::pointCount() const {
  return int(d->bars.size()) * 2;
}

void MemoryChart::clear() {
  d->bars.clear();
  d->series->clear();
  d->x->clear();
  d->y->setRange(0, 1);
  d->y->setTitleText(QString());
  d->chart->setTitle(tr("Weight memory: no run yet"));
}

void MemoryChart::setData(const MemorySummary& m, const std::vector<LayerReport>& layers) {
  clear();
  // Per module type, summed over blocks; bits per weight weighted by each layer's size.
  struct Sum {
    uint64_t fp16 = 0, quantized = 0;
    double bits = 0, weights = 0;
    int layers = 0;
  };
  std::array<Sum, kNumLinears> sums{};
  for (const LayerReport& l : layers) {
    Sum& s = sums[size_t(l.kind)];
    const double weights = double(l.out_features) * double(l.in_features);
    s.fp16 += l.bytes_fp16;
    s.quantized += l.bytes_quantized;
    s.bits += l.bits_per_weight * weights;
    s.weights += weights;
    ++s.layers;
  }
  for (LinearKind k : kAllLinears) {
    const Sum& s = sums[size_t(k)];
    if (s.layers == 0) continue;
    const double bpw = s.weights > 0 ? s.bits / s.weights : 0;
    // Short labels ("gate", "(4.13)"): eight categories share a narrow axis.
    d->bars.push_back(
        {tr("%1<br>(%2)")
             .arg(moduleShortName(k).remove(QStringLiteral("_proj")), QString::number(bpw, 'f', 2)),
         tr("%1 (%n layer(s), %2 bits per weight)", nullptr, s.layers)
             .arg(moduleShortName(k), QString::number(bpw, 'f', 3)),
         s.fp16, s.quantized});
  }
  if (m.fp16_bytes > 0) {
    // Over all weights, the fp16 ones included: what the model costs per parameter.
    const double bpw = m.parameters > 0 ? double(m.quantized_bytes) * 8 / double(m.parameters) : 0;
    d->bars.push_back(
        {tr("total<br>(%1)").arg(QString::number(bpw, 'f', 2)),
         tr("All weights: the embeddings, norms and head stay fp16 (%1 bits per parameter)")
             .arg(QString::number(bpw, 'f', 3)),
         m.fp16_bytes, m.quantized_bytes});
  }
  if (d->bars.empty()) return;

  uint64_t largest = 0;
  for (const Impl::Bar& b : d->bars) largest = std::max({largest, b.fp16, b.quantized});
  const Unit unit = unitFor(largest);
  auto* fp16 = new QBarSet(tr("fp16"));
  auto* quantized = new QBarSet(tr("quantized"));
  QStringList categories;
  for (const Impl::Bar& b : d->bars) {
    fp16->append(double(b.fp16) / unit.bytes);
    quantized->append(double(b.quantized) / unit.bytes);
    categories << b.category;
  }
  d->series->append({fp16, quantized});
  d->x->append(categories);
  // Headroom above the tallest bar for its printed value.
  d->y->setRange(0, double(largest) / unit.bytes * 1.2);
  d->y->setTickCount(5);  // applyNiceNumbers() adapts the previous count
  d->y->applyNiceNumbers();
  d->y->setTitleText(tr("Weights (%1)").arg(QString::fromLatin1(unit.name)));
  restyle();
  fitLabelAngle();

  if (m.fp16_bytes > 0) {
    const uint64_t saved = m.fp16_bytes > m.quantized_bytes ? m.fp16_bytes - m.quantized_bytes : 0;
    d->chart->setTitle(tr("Estimated weight VRAM: %1 fp16 → %2 quantized<br>"
                          "saving %3 (%4%), %5 bits per quantized weight")
                           .arg(formatBytes(m.fp16_bytes), formatBytes(m.quantized_bytes),
                                formatBytes(saved), QString::number(m.saving_percent, 'f', 1),
                                QString::number(m.bits_per_weight, 'f', 2)));
  } else {
    d->chart->setTitle(tr("Weight memory of the quantized layers"));
  }
}

}  // namespace gptqw::ui::plots
