#include "plots/hessian_chart.h"

#include <QComboBox>
#include <QLabel>
#include <QPen>
#include <QSignalBlocker>
#include <QStandardItemModel>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QLineSeries>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "plots/error_chart.h"

namespace gptqw::ui::plots {

namespace {

constexpr QRgb kDeadColor = 0xd62728;  // red on light and dark backgrounds alike

QString formatValue(double v) {
  return QString::number(v, 'g', 6);
}

// 1, 2 or 5 times a power of ten, at least `raw`: a tick step people read easily.
double niceStep(double raw) {
  if (raw <= 1) return 1;
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (f * decade >= raw) return f * decade;
  return 10 * decade;
}

}  // namespace

struct HessianChart::Impl {
  // The shown layer.
  bool present = false;
  QString name;
  LinearKind kind = LinearKind::q;
  std::vector<float> diag;
  std::vector<int32_t> perm;  // kept only when it is a permutation of the channels
  int dead = 0;
  double floor = 0;
  // Inverse maps for the tooltip: where a channel is in sorted order and in quantization order.
  std::vector<int> rankOf, stepOf;
  std::vector<int> channelAt;  // the channel plotted at each x of the current order

  Order order = Order::Channel;
  QLineSeries* line = nullptr;
  QScatterSeries* deadMarks = nullptr;
  QValueAxis* x = nullptr;
  QLogValueAxis* y = nullptr;
  QComboBox* orderBox = nullptr;
  QChart* chart = nullptr;

  Order shownOrder() const {
    return order == Order::Quantization && perm.empty() ? Order::Channel : order;
  }

  static bool isPermutation(const std::vector<int32_t>& p, size_t n) {
    if (p.size() != n) return false;
    std::vector<bool> seen(n, false);
    for (int32_t c : p) {
      if (c < 0 || size_t(c) >= n || seen[size_t(c)]) return false;
      seen[size_t(c)] = true;
    }
    return true;
  }

  QString tooltip(int pos) const {
    const int c = channelAt[size_t(pos)];
    QString text = HessianChart::tr("<b>%1</b><br>input channel %2<br>H[i,i] = %3")
                       .arg(name.toHtmlEscaped())
                       .arg(c)
                       .arg(formatValue(diag[size_t(c)]));
    if (diag[size_t(c)] == 0) text += HessianChart::tr(" (dead)");
    text +=
        HessianChart::tr("<br>rank %1 of %2 by size").arg(rankOf[size_t(c)] + 1).arg(diag.size());
    if (!stepOf.empty())
      text += HessianChart::tr("<br>quantized at step %1 (act-order)").arg(stepOf[size_t(c)] + 1);
    return text;
  }
};

HessianChart::HessianChart(QWidget* parent) : ChartPanel(parent), d(std::make_unique<Impl>()) {
  QChart* c = chart();
  d->chart = c;
  d->x = new QValueAxis;
  d->x->setLabelFormat(QStringLiteral("%d"));
  d->y = new QLogValueAxis;
  d->y->setBase(10);
  d->y->setLabelFormat(QStringLiteral("%g"));
  d->y->setMinorTickCount(-1);
  c->addAxis(d->x, Qt::AlignBottom);
  c->addAxis(d->y, Qt::AlignLeft);

  d->line = new QLineSeries;
  d->line->setName(tr("H[i,i]"));
  d->deadMarks = new QScatterSeries;
  d->deadMarks->setMarkerShape(QScatterSeries::MarkerShapeTriangle);
  d->deadMarks->setMarkerSize(10);
  for (QXYSeries* s : {static_cast<QXYSeries*>(d->line), static_cast<QXYSeries*>(d->deadMarks)}) {
    c->addSeries(s);
    s->attachAxis(d->x);
    s->attachAxis(d->y);
    connect(s, &QXYSeries::hovered, this, [this](const QPointF& p, bool on) {
      const int pos = int(std::lround(p.x()));
      if (!on || pos < 0 || size_t(pos) >= d->channelAt.size()) return hideToolTip();
      showToolTip(d->tooltip(pos));
    });
  }
  c->legend()->setAlignment(Qt::AlignBottom);

  d->orderBox = new QComboBox(this);
  d->orderBox->addItem(tr("Channel order"));
  d->orderBox->addItem(tr("Sorted (descending)"));
  d->orderBox->addItem(tr("Quantization order"));
  d->orderBox->setItemData(0, tr("H[i,i] by input channel index"), Qt::ToolTipRole);
  d->orderBox->setItemData(1, tr("H[i,i] from largest to smallest"), Qt::ToolTipRole);
  d->orderBox->setItemData(
      2, tr("H[i,i] in the order act-order quantized the channels (needs act-order)"),
      Qt::ToolTipRole);
  d->orderBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  connect(d->orderBox, &QComboBox::activated, this,
          [this](int i) { setOrder(static_cast<Order>(i)); });
  auto* label = new QLabel(tr("Order:"), this);
  label->setBuddy(d->orderBox);
  addToolWidget(label);
  addToolWidget(d->orderBox);

  setMinimumSize(460, 340);
  clear();
  applyTheme();
}

HessianChart::~HessianChart() = default;

void HessianChart::restyle() {
  const QColor color = d->present ? moduleColor(d->kind) : palette().windowText().color();
  d->line->setPen(QPen(color, 1.2));
  d->deadMarks->setColor(QColor(kDeadColor));
  d->deadMarks->setPen(QPen(QColor(kDeadColor).darker(130), 1));
}

void HessianChart::setLayer(const LayerReport* layer) {
  if (!layer) return clear();
  Impl& m = *d;
  m.present = true;
  m.name = QString::fromStdString(layer->name);
  m.kind = layer->kind;
  m.diag = layer->hessian_diag;
  const size_t n = m.diag.size();
  // A permutation that does not match the diagonal (a damaged report) is ignored rather than
  // letting it index out of range.
  m.perm = Impl::isPermutation(layer->perm, n) ? layer->perm : std::vector<int32_t>{};
  m.dead = int(std::count(m.diag.begin(), m.diag.end(), 0.0f));

  std::vector<int> sorted(n);
  std::iota(sorted.begin(), sorted.end(), 0);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](int a, int b) { return m.diag[size_t(a)] > m.diag[size_t(b)]; });
  m.rankOf.assign(n, 0);
  for (size_t i = 0; i < n; ++i) m.rankOf[size_t(sorted[i])] = int(i);
  m.stepOf.clear();
  if (!m.perm.empty()) {
    m.stepOf.assign(n, 0);
    for (size_t i = 0; i < n; ++i) m.stepOf[size_t(m.perm[i])] = int(i);
  }

  // Zeros (and anything not positive) are drawn a decade below the smallest positive value.
  float minPositive = 0;
  for (float v : m.diag)
    if (v > 0 && (minPositive == 0 || v < minPositive)) minPositive = v;
  m.floor =
      minPositive > 0 ? std::pow(10.0, std::floor(std::log10(double(minPositive))) - 1) : 1e-8;

  if (auto* model = qobject_cast<QStandardItemModel*>(m.orderBox->model()))
    model->item(int(Order::Quantization))->setEnabled(!m.perm.empty());
  restyle();
  rebuild();
}

void HessianChart::setOrder(Order o) {
  d->order = o;
  rebuild();
}

HessianChart::Order HessianChart::order() const {
  return d->order;
}

int HessianChart::pointCount() const {
  return d->present ? int(d->diag.size()) : 0;
}

int HessianChart::deadCount() const {
  return d->present ? d->dead : 0;
}

double HessianChart::floorValue() const {
  return d->present ? d->floor : 0;
}

void HessianChart::clear() {
  d->present = false;
  d->name.clear();
  d->diag.clear();
  d->perm.clear();
  d->rankOf.clear();
  d->stepOf.clear();
  d->dead = 0;
  d->floor = 0;
  if (auto* model = qobject_cast<QStandardItemModel*>(d->orderBox->model()))
    model->item(int(Order::Quantization))->setEnabled(false);
  restyle();
  rebuild();
}

void HessianChart::rebuild() {
  Impl& m = *d;
  {
    const QSignalBlocker block(m.orderBox);
    m.orderBox->setCurrentIndex(int(m.order));
  }
  const size_t n = m.diag.size();
  const Order shown = m.shownOrder();
  m.channelAt.resize(n);
  switch (shown) {
    case Order::Channel:
      std::iota(m.channelAt.begin(), m.channelAt.end(), 0);
      break;
    case Order::Sorted:
      for (size_t c = 0; c < n; ++c) m.channelAt[size_t(m.rankOf[c])] = int(c);
      break;
    case Order::Quantization:
      m.channelAt.assign(m.perm.begin(), m.perm.end());
      break;
  }

  QList<QPointF> points, deadPoints;
  points.reserve(qsizetype(n));
  float maxValue = 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = m.diag[size_t(m.channelAt[i])];
    maxValue = std::max(maxValue, v);
    points.append({double(i), v > 0 ? double(v) : m.floor});
    if (v == 0) deadPoints.append({double(i), m.floor});
  }
  m.line->replace(points);
  m.deadMarks->replace(deadPoints);
  m.deadMarks->setName(tr("dead channels, H[i,i] = 0 (%1)").arg(m.dead));

  if (n == 0) {
    m.x->setTickType(QValueAxis::TicksFixed);
    m.x->setRange(0, 1);
    m.y->setRange(1e-4, 1);
    m.y->setTitleText(tr("H[i,i] (log)"));
  } else {
    // Ticks on round channel numbers from 0; half a step of margin so that the first and last
    // points (and their dead markers) are not cut by the plot edge.
    const double pad = std::max(0.5, double(n) * 0.005);
    m.x->setTickType(QValueAxis::TicksDynamic);
    m.x->setTickAnchor(0);
    m.x->setTickInterval(niceStep(double(n) / 6));
    m.x->setRange(-pad, double(n - 1) + pad);
    // Powers of ten carry the labels: the bottom is a bit below the floor, so that the floor's
    // label shows (log10 of a power of ten can round either way) and the dead markers sit on
    // the plot rather than on its edge; the top is just above the decade of the maximum.
    const double top = maxValue > 0 ? std::pow(10.0, std::ceil(std::log10(double(maxValue)))) : 1;
    m.y->setRange(m.floor / 2.5, std::max(top, m.floor * 10) * 1.0001);
    m.y->setTitleText(tr("H[i,i], log; 0 at %1").arg(formatValue(m.floor)));
  }
  switch (shown) {
    case Order::Channel:
      m.x->setTitleText(tr("Input channel"));
      break;
    case Order::Sorted:
      m.x->setTitleText(tr("Rank (largest H[i,i] first)"));
      break;
    case Order::Quantization:
      m.x->setTitleText(tr("Quantization step (act-order permutation)"));
      break;
  }

  QString title;
  if (!m.present) {
    title = tr("Hessian diagonal: no layer selected");
  } else if (n == 0) {
    title = tr("Hessian diagonal of %1: not recorded").arg(m.name);
  } else {
    // Two lines: layer names are long ("model.layers.31.self_attn.q_proj").
    title = tr("Hessian diagonal of %1<br>%2 inputs, %3 dead (%4%)")
                .arg(m.name)
                .arg(n)
                .arg(m.dead)
                .arg(QString::number(100.0 * m.dead / double(n), 'f', m.dead ? 2 : 0));
    if (m.order == Order::Quantization && m.perm.empty())
      title += tr(", no act-order: channel order");
  }
  m.chart->setTitle(title);
}

}  // namespace gptqw::ui::plots
