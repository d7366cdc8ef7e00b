#include "plots/error_chart.h"

#include <QCheckBox>
#include <QFont>
#include <QFontMetricsF>
#include <QGraphicsSimpleTextItem>
#include <QHash>
#include <QPen>
#include <QSignalBlocker>
#include <QtCharts/QChart>
#include <QtCharts/QLegend>
#include <QtCharts/QLegendMarker>
#include <QtCharts/QLogValueAxis>
#include <QtCharts/QScatterSeries>
#include <QtCharts/QValueAxis>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace gptqw::ui::plots {

namespace {

// Each block owns kStride x units: its 7 modules sit at kFirst + kind, so neighbouring blocks
// are separated by a wider gap than modules within a block, and a block's label is centred
// under its cluster.
constexpr double kStride = 9;
constexpr double kFirst = 1.5;
// A relative error of exactly 0 (an all-zero layer) cannot sit on a log axis: it is drawn here.
constexpr double kZeroFloor = 1e-12;
// Block labels: the least space between two, their distance below the plot (past the tick
// marks) and the smallest font that is still legible.
constexpr double kLabelGap = 3;
constexpr double kLabelTop = 5;
constexpr int kMinLabelPixels = 8;

double slotX(int block, LinearKind kind) {
  return block * kStride + kFirst + static_cast<int>(kind);
}

int slotKey(int block, LinearKind kind) {
  return block * kNumLinears + static_cast<int>(kind);
}

// The layer a hovered or clicked point belongs to, from its x.
int slotKeyAt(double x) {
  const int block = static_cast<int>(std::floor(x / kStride));
  const int kind = static_cast<int>(std::lround(x - block * kStride - kFirst));
  return slotKey(block, static_cast<LinearKind>(std::clamp(kind, 0, kNumLinears - 1)));
}

QString formatError(double e) {
  return e < 0 ? ErrorChart::tr("not run") : QString::number(e, 'g', 6);
}

}  // namespace

QColor moduleColor(LinearKind kind) {
  // Tableau 10 without its yellow (unreadable on white): attention in blue/orange/red/teal,
  // the MLP in green/purple/brown.
  static constexpr std::array<QRgb, kNumLinears> colors = {0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2,
                                                           0x59a14f, 0xb07aa1, 0x9c755f};
  return QColor(colors[static_cast<int>(kind)]);
}

QString moduleShortName(LinearKind kind) {
  const std::string_view name = linear_short_name(kind);
  return QString::fromUtf8(name.data(), static_cast<qsizetype>(name.size()));
}

struct ErrorChart::Impl {
  struct Entry {
    int block = 0;
    LinearKind kind = LinearKind::q;
    QString name;
    double gptq = -1, rtn = -1;
  };
  std::vector<Entry> layers;
  QHash<int, int> bySlot;  // slotKey -> index into layers
  int plotted = 0;         // layers with at least one error
  int selected = -1;
  bool log = false;
  int minBlock = 0, maxBlock = -1;  // the blocks labelled on x; none while max < min
  double minY = std::numeric_limits<double>::infinity(), maxY = 0;
  double sumLogRatio = 0;  // for the geometric mean of RTN / GPTQ in the title
  int ratios = 0;

  std::array<QScatterSeries*, kNumLinears> gptq{}, rtn{};
  QScatterSeries* legendGptq = nullptr;  // empty series: legend entries for the two markers
  QScatterSeries* legendRtn = nullptr;
  QScatterSeries* highlight = nullptr;
  QValueAxis* x = nullptr;
  std::vector<QGraphicsSimpleTextItem*> blockLabels;  // owned by the chart
  int shownBlockLabels = 0;
  QValueAxis* yLinear = nullptr;
  QLogValueAxis* yLog = nullptr;
  QCheckBox* logBox = nullptr;
  QChart* chart = nullptr;

  std::vector<QScatterSeries*> allSeries() const {
    std::vector<QScatterSeries*> all(rtn.begin(), rtn.end());
    all.insert(all.end(), gptq.begin(), gptq.end());
    all.insert(all.end(), {legendGptq, legendRtn, highlight});
    return all;
  }
  QAbstractAxis* yAxis() const {
    return log ? static_cast<QAbstractAxis*>(yLog) : static_cast<QAbstractAxis*>(yLinear);
  }
  static double plotY(double e) { return e > 0 ? e : kZeroFloor; }

  // Adds a layer's errors to the running statistics (ranges, count, mean ratio).
  void account(const Entry& e) {
    if (e.gptq < 0 && e.rtn < 0) return;
    ++plotted;
    for (double v : {e.gptq, e.rtn}) {
      if (v < 0) continue;
      minY = std::min(minY, plotY(v));
      maxY = std::max(maxY, v);
    }
    if (e.gptq > 0 && e.rtn > 0) {
      sumLogRatio += std::log(e.rtn / e.gptq);
      ++ratios;
    }
  }

  // The x range covers the blocks seen, a grid line between blocks.
  void fitX() {
    if (maxBlock < minBlock)
      x->setRange(0, kStride);
    else
      x->setRange(minBlock * kStride, (maxBlock + 1) * kStride);
    layoutBlockLabels();
  }

  void includeBlock(int block) {
    if (maxBlock < minBlock) {
      minBlock = maxBlock = block;
    } else {
      if (block >= minBlock && block <= maxBlock) return;
      minBlock = std::min(minBlock, block);
      maxBlock = std::max(maxBlock, block);
    }
    fitX();
  }

  void fitY() {
    if (!std::isfinite(minY)) {
      yLinear->setRange(0, 1);
      yLog->setRange(1e-4, 1);
      return;
    }
    yLinear->setRange(0, maxY > 0 ? maxY * 1.05 : 1);
    // applyNiceNumbers() adapts the tick count it is given: start from the same one each
    // time, or repeated calls (layers streaming in) thin the grid out.
    yLinear->setTickCount(5);
    yLinear->applyNiceNumbers();
    // A margin so that no marker sits on the edge; labels sit on powers of ten only, so the
    // range is widened to whole decades when fewer than two are inside it (rounded outward:
    // log10(1e-3) may come out a hair above -3, which would drop the label at the bottom).
    double lo = minY / 1.4, hi = std::max(maxY, minY) * 1.4;
    if (std::floor(std::log10(hi)) - std::ceil(std::log10(lo)) < 1) {
      lo = std::pow(10.0, std::floor(std::log10(lo))) * 0.999;
      hi = std::pow(10.0, std::ceil(std::log10(hi))) * 1.001;
    }
    yLog->setRange(lo, hi);
  }

  void updateTitle() {
    QString title = ErrorChart::tr("Relative output error, %1 layers").arg(plotted);
    if (plotted == 0) title = ErrorChart::tr("Relative output error: no layers yet");
    if (ratios > 0)
      title += ErrorChart::tr(": RTN/GPTQ %1× (geometric mean)")
                   .arg(QString::number(std::exp(sumLogRatio / ratios), 'f', 2));
    chart->setTitle(title);
  }

  void updateHighlight() {
    QList<QPointF> points;
    if (selected >= 0 && selected < int(layers.size())) {
      const Entry& e = layers[size_t(selected)];
      const double px = slotX(e.block, e.kind);
      if (e.gptq >= 0) points.append({px, plotY(e.gptq)});
      if (e.rtn >= 0) points.append({px, plotY(e.rtn)});
    }
    highlight->replace(points);
  }

  // The block numbers under the plot, one per block, centred under its cluster. The chart's own
  // axis labels cannot do this for 32 blocks on a narrow chart: they keep 8 pixels of padding
  // around each label and elide the rest to "...". These are plain text items in the chart's
  // scene (so exports include them), in the space the axis's blank labels keep, in the
  // theme's label font and colour, made smaller when needed to fit.
  void layoutBlockLabels() {
    const int blocks = maxBlock >= minBlock ? maxBlock - minBlock + 1 : 0;
    while (int(blockLabels.size()) < blocks) {
      auto* item = new QGraphicsSimpleTextItem(chart);
      item->setZValue(100);  // over the plot background
      blockLabels.push_back(item);
    }
    while (int(blockLabels.size()) > blocks) {
      delete blockLabels.back();
      blockLabels.pop_back();
    }
    const QRectF plot = chart->plotArea();
    if (blocks == 0 || plot.width() <= 0) return;
    const double perBlock = plot.width() / blocks;
    QFont font = yLinear->labelsFont();  // the theme's label font: that axis keeps it
    const QString widestText = QString::number(maxBlock);
    // Smaller until the widest number fits (text does not scale linearly with its size, so
    // step down rather than compute), in the unit the theme sized the font in.
    const bool pixels = font.pixelSize() > 0;
    auto fits = [&] {
      return QFontMetricsF(font).horizontalAdvance(widestText) + kLabelGap <= perBlock;
    };
    if (pixels) {
      while (!fits() && font.pixelSize() > kMinLabelPixels) font.setPixelSize(font.pixelSize() - 1);
    } else if (font.pointSizeF() > 0) {
      const double minPoints = kMinLabelPixels * 0.75;  // at 96 dpi
      while (!fits() && font.pointSizeF() > minPoints)
        font.setPointSizeF(std::max(minPoints, font.pointSizeF() - 0.25));
    }
    const QFontMetricsF metrics(font);
    // Only on a chart too narrow even for the smallest font: every second (third...) block.
    int step = 1;
    while (step < blocks && metrics.horizontalAdvance(widestText) + kLabelGap > perBlock * step)
      ++step;
    shownBlockLabels = 0;
    for (int i = 0; i < blocks; ++i) {
      QGraphicsSimpleTextItem* item = blockLabels[size_t(i)];
      const QString text = QString::number(minBlock + i);
      item->setText(text);
      item->setFont(font);
      item->setBrush(yLinear->labelsBrush());
      const double centre = plot.left() + (i + 0.5) * perBlock;
      item->setPos(centre - metrics.horizontalAdvance(text) / 2, plot.bottom() + kLabelTop);
      item->setVisible(i % step == 0);
      if (i % step == 0) ++shownBlockLabels;
    }
  }
};

ErrorChart::ErrorChart(QWidget* parent) : ChartPanel(parent), d(std::make_unique<Impl>()) {
  QChart* c = chart();
  d->chart = c;
  d->x = new QValueAxis;
  // Grid lines between blocks; the block numbers are drawn by layoutBlockLabels().
  d->x->setTickType(QValueAxis::TicksDynamic);
  d->x->setTickAnchor(0);
  d->x->setTickInterval(kStride);
  d->x->setMinorTickCount(0);
  // Blank labels: they keep the space under the plot that layoutBlockLabels() draws the block
  // numbers in. (Hidden labels would not: and with them hidden the chart elides the title.)
  d->x->setLabelFormat(QStringLiteral(" "));
  d->x->setTitleText(tr("Block (modules left to right: q k v o gate up down)"));
  d->yLinear = new QValueAxis;
  d->yLinear->setLabelFormat(QStringLiteral("%.3g"));
  // Short enough for the axis of a 300-pixel chart; the title says what it is.
  d->yLinear->setTitleText(tr("‖WX−QX‖² / ‖WX‖²"));
  d->yLog = new QLogValueAxis;
  d->yLog->setBase(10);
  d->yLog->setLabelFormat(QStringLiteral("%g"));
  d->yLog->setMinorTickCount(-1);  // 2..9 within each decade
  d->yLog->setTitleText(tr("‖WX−QX‖² / ‖WX‖² (log)"));
  c->addAxis(d->x, Qt::AlignBottom);
  c->addAxis(d->yLinear, Qt::AlignLeft);
  // Both y axes stay on the chart and the series move between them; the unused one is hidden.
  // (Removing an axis leaves its drawing in the scene until the event loop deletes it, which
  // an export right after the toggle would show.)
  c->addAxis(d->yLog, Qt::AlignLeft);
  d->yLog->setVisible(false);

  auto makeSeries = [&](const QString& name) {
    auto* s = new QScatterSeries;
    s->setName(name);
    s->setMarkerShape(QScatterSeries::MarkerShapeCircle);
    s->setMarkerSize(8);
    c->addSeries(s);
    s->attachAxis(d->x);
    s->attachAxis(d->yLinear);
    return s;
  };
  // RTN first so that a GPTQ point is drawn over an RTN point at the same place.
  // Legend names without "_proj": nine entries fit across a narrow chart.
  auto legendName = [](LinearKind k) { return moduleShortName(k).remove(QStringLiteral("_proj")); };
  for (LinearKind k : kAllLinears) d->rtn[int(k)] = makeSeries(legendName(k) + " RTN");
  for (LinearKind k : kAllLinears) d->gptq[int(k)] = makeSeries(legendName(k));
  d->legendGptq = makeSeries(tr("GPTQ"));
  d->legendRtn = makeSeries(tr("RTN"));
  d->highlight = makeSeries(tr("selected"));
  d->highlight->setMarkerSize(18);
  for (QScatterSeries* s : d->rtn) c->legend()->markers(s).value(0)->setVisible(false);
  c->legend()->markers(d->highlight).value(0)->setVisible(false);
  c->legend()->setMarkerShape(QLegend::MarkerShapeFromSeries);
  c->legend()->setAlignment(Qt::AlignBottom);
  connect(c, &QChart::plotAreaChanged, this, [this] { d->layoutBlockLabels(); });

  for (QScatterSeries* s : d->allSeries()) {
    connect(s, &QScatterSeries::hovered, this, [this](const QPointF& p, bool on) {
      const int index = d->bySlot.value(slotKeyAt(p.x()), -1);
      if (!on || index < 0) return hideToolTip();
      const Impl::Entry& e = d->layers[size_t(index)];
      QString text = QStringLiteral("<b>%1</b><br>GPTQ: %2<br>RTN: %3")
                         .arg(e.name.toHtmlEscaped(), formatError(e.gptq), formatError(e.rtn));
      if (e.gptq > 0 && e.rtn >= 0)
        text += tr("<br>RTN / GPTQ: %1×").arg(QString::number(e.rtn / e.gptq, 'f', 3));
      showToolTip(text);
    });
    connect(s, &QScatterSeries::clicked, this, [this](const QPointF& p) {
      const int index = d->bySlot.value(slotKeyAt(p.x()), -1);
      if (index < 0) return;
      selectLayer(index);
      emit layerClicked(index);
    });
  }

  d->logBox = new QCheckBox(tr("Log scale"), this);
  d->logBox->setToolTip(tr("Logarithmic error axis: small and large errors side by side"));
  connect(d->logBox, &QCheckBox::toggled, this, &ErrorChart::setLogScale);
  addToolWidget(d->logBox);

  setMinimumSize(560, 340);
  clear();
  applyTheme();
}

ErrorChart::~ErrorChart() = default;

void ErrorChart::restyle() {
  const QColor background = palette().window().color();
  for (LinearKind k : kAllLinears) {
    const QColor color = moduleColor(k);
    QScatterSeries* g = d->gptq[int(k)];
    g->setColor(color);
    g->setPen(QPen(color.darker(130), 1));
    // Hollow: the window colour inside a ring of the module's colour.
    QScatterSeries* r = d->rtn[int(k)];
    r->setColor(background);
    r->setPen(QPen(color, 1.6));
  }
  const QColor neutral = palette().windowText().color();
  d->legendGptq->setColor(neutral);
  d->legendGptq->setPen(QPen(neutral, 1));
  d->legendRtn->setColor(background);
  d->legendRtn->setPen(QPen(neutral, 1.6));
  d->highlight->setColor(Qt::transparent);
  d->highlight->setPen(QPen(palette().highlight().color(), 2.5));
  d->layoutBlockLabels();  // the theme's label font and colour
}

int ErrorChart::pointCount() const {
  return d->plotted;
}

bool ErrorChart::logScale() const {
  return d->log;
}

int ErrorChart::labelledBlocks() const {
  return d->shownBlockLabels;
}

int ErrorChart::selectedLayer() const {
  return d->selected;
}

void ErrorChart::clear() {
  d->layers.clear();
  d->bySlot.clear();
  d->plotted = 0;
  d->selected = -1;
  d->minBlock = 0;
  d->maxBlock = -1;
  d->minY = std::numeric_limits<double>::infinity();
  d->maxY = 0;
  d->sumLogRatio = 0;
  d->ratios = 0;
  for (QScatterSeries* s : d->allSeries()) s->clear();
  d->fitX();
  d->fitY();
  d->updateTitle();
}

void ErrorChart::setLayers(const std::vector<LayerReport>& layers) {
  clear();
  // The same bookkeeping as addLayer, but each series gets its points in one replace.
  std::array<QList<QPointF>, kNumLinears> g, r;
  for (const LayerReport& l : layers) {
    Impl::Entry e{l.block, l.kind, QString::fromStdString(l.name), l.gptq_rel_error,
                  l.rtn_rel_error};
    d->bySlot.insert(slotKey(e.block, e.kind), int(d->layers.size()));
    const double px = slotX(e.block, e.kind);
    if (e.gptq >= 0) g[int(e.kind)].append({px, Impl::plotY(e.gptq)});
    if (e.rtn >= 0) r[int(e.kind)].append({px, Impl::plotY(e.rtn)});
    d->account(e);
    if (d->maxBlock < d->minBlock) {
      d->minBlock = d->maxBlock = e.block;
    } else {
      d->minBlock = std::min(d->minBlock, e.block);
      d->maxBlock = std::max(d->maxBlock, e.block);
    }
    d->layers.push_back(std::move(e));
  }
  for (LinearKind k : kAllLinears) {
    d->gptq[int(k)]->replace(g[int(k)]);
    d->rtn[int(k)]->replace(r[int(k)]);
  }
  d->fitX();
  d->fitY();
  d->updateTitle();
}

void ErrorChart::addLayer(const LayerReport& l) {
  Impl::Entry e{l.block, l.kind, QString::fromStdString(l.name), l.gptq_rel_error, l.rtn_rel_error};
  d->bySlot.insert(slotKey(e.block, e.kind), int(d->layers.size()));
  const double px = slotX(e.block, e.kind);
  if (e.gptq >= 0) d->gptq[int(e.kind)]->append(px, Impl::plotY(e.gptq));
  if (e.rtn >= 0) d->rtn[int(e.kind)]->append(px, Impl::plotY(e.rtn));
  d->account(e);
  d->includeBlock(e.block);
  d->layers.push_back(std::move(e));
  d->fitY();
  d->updateTitle();
}

void ErrorChart::setLogScale(bool on) {
  if (on != d->log) {
    QAbstractAxis* old = d->yAxis();
    for (QScatterSeries* s : d->allSeries()) s->detachAxis(old);
    old->setVisible(false);
    d->log = on;
    for (QScatterSeries* s : d->allSeries()) s->attachAxis(d->yAxis());
    d->yAxis()->setVisible(true);
    d->fitY();
  }
  const QSignalBlocker block(d->logBox);
  d->logBox->setChecked(on);
}

void ErrorChart::selectLayer(int index) {
  d->selected = index >= 0 && index < int(d->layers.size()) ? index : -1;
  d->updateHighlight();
}

}  // namespace gptqw::ui::plots
