// The charts (ui/plots/) on synthetic layer reports with known values: what they plot, their
// toggles, and their PNG/SVG export. Set GPTQW_PLOT_DUMP to a folder to keep a PNG of every
// chart (light and dark, small and 224-layer models) for looking at.
#include <QElapsedTimer>
#include <QFile>
#include <QGraphicsScene>
#include <QGraphicsTextItem>
#include <QGraphicsView>
#include <QImage>
#include <QPalette>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QToolTip>
#include <algorithm>
#include <numeric>

#include "model/weights.h"
#include "palette.h"
#include "plots/error_chart.h"
#include "plots/hessian_chart.h"
#include "plots/memory_chart.h"
#include "plots/perplexity_chart.h"

using namespace gptqw;
using namespace gptqw::ui::plots;
using gptqw::ui::darkPalette;

namespace {

// A block of 7 layers per block with known errors: GPTQ = 1e-3 (1 + kind) (1 + block / 10),
// RTN three times that; a 64-input Hessian diagonal with 2 dead channels and its act-order
// permutation (largest first) on every layer.
std::vector<LayerReport> syntheticLayers(int blocks, int inputs = 64) {
  std::vector<LayerReport> layers;
  for (int b = 0; b < blocks; ++b) {
    for (LinearKind k : kAllLinears) {
      LayerReport l;
      l.block = b;
      l.kind = k;
      l.name = linear_module(b, k);
      l.out_features = k == LinearKind::down ? 64 : 172;
      l.in_features = k == LinearKind::down ? 172 : 64;
      l.gptq_rel_error = 1e-3 * (1 + int(k)) * (1 + b / 10.0);
      l.rtn_rel_error = 3 * l.gptq_rel_error;
      l.hessian_diag.resize(size_t(inputs));
      for (int i = 0; i < inputs; ++i)
        l.hessian_diag[size_t(i)] = float(std::pow(10.0, -3 + 5.0 * ((i * 37) % inputs) / inputs));
      l.hessian_diag[5] = 0;
      l.hessian_diag[size_t(inputs) - 3] = 0;
      l.hessian = diag_stats(l.hessian_diag);
      l.perm.resize(size_t(inputs));
      std::iota(l.perm.begin(), l.perm.end(), 0);
      std::stable_sort(l.perm.begin(), l.perm.end(), [&](int a, int c) {
        return l.hessian_diag[size_t(a)] > l.hessian_diag[size_t(c)];
      });
      l.bytes_fp16 = uint64_t(l.out_features * l.in_features * 2);
      l.bytes_quantized = uint64_t(l.out_features * l.in_features / 2 + l.out_features * 4);
      l.bits_per_weight = double(l.bytes_quantized) * 8 / double(l.out_features * l.in_features);
      layers.push_back(std::move(l));
    }
  }
  return layers;
}

MemorySummary summaryOf(const std::vector<LayerReport>& layers) {
  MemorySummary m;
  uint64_t rest = 3 << 20;  // embeddings, norms, head
  m.fp16_bytes = rest;
  m.quantized_bytes = rest;
  for (const LayerReport& l : layers) {
    m.fp16_bytes += l.bytes_fp16;
    m.quantized_bytes += l.bytes_quantized;
    m.quantized_parameters += l.out_features * l.in_features;
  }
  m.parameters = int64_t(m.fp16_bytes / 2);
  m.bits_per_weight = 4.25;
  m.saving_percent = 100.0 * (1 - double(m.quantized_bytes) / double(m.fp16_bytes));
  return m;
}

PerplexitySummary perplexity() {
  PerplexitySummary p;
  p.text = "wikitext-2 test";
  p.seqlen = 2048;
  p.windows = 40;
  p.original = 5.68;
  p.rtn = 6.2911;
  p.gptq = 5.8517;
  return p;
}

}  // namespace

class TestPlots : public QObject {
  Q_OBJECT

 private:
  // Saves the chart as PNG and SVG into the temporary folder and checks both files; with
  // GPTQW_PLOT_DUMP set, also keeps the PNG there under `name`.
  void checkExport(const ChartPanel& panel, const QString& name) {
    const QString png = m_dir.filePath(name + ".png"), svg = m_dir.filePath(name + ".svg");
    QString error;
    QVERIFY2(panel.savePng(png, &error), qPrintable(error));
    QImage image(png);
    QVERIFY(!image.isNull());
    QCOMPARE(image.size(), panel.exportSize() * 2);
    QVERIFY2(panel.saveSvg(svg, &error), qPrintable(error));
    QFile f(svg);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray text = f.readAll();
    QVERIFY(text.contains("<svg"));
    QVERIFY(text.size() > 1000);
    const QString dump = qEnvironmentVariable("GPTQW_PLOT_DUMP");
    if (!dump.isEmpty()) QVERIFY(panel.savePng(dump + "/" + name + ".png", &error));
  }

  // Texts the chart had to cut short ("..."): axis labels, titles, legend entries. Looks at
  // the chart's scene as shown, so the panel must be visible and laid out.
  static QStringList elidedTexts(const ChartPanel& panel) {
    QStringList elided;
    const auto* view = panel.findChild<QGraphicsView*>();
    if (!view || !view->scene()) return {QStringLiteral("(no chart view)")};
    for (QGraphicsItem* item : view->scene()->items()) {
      const auto* text = qgraphicsitem_cast<QGraphicsTextItem*>(item);
      if (!text || !item->isVisible()) continue;
      const QString plain = text->toPlainText();
      if (plain.endsWith(QStringLiteral("...")) || plain.endsWith(QChar(0x2026)))
        elided << plain +
                      QStringLiteral(" @%1,%2").arg(item->scenePos().x()).arg(item->scenePos().y());
    }
    return elided;
  }

  // Shows the panel at `size` and checks that no text in it was cut short.
  void checkNothingElided(ChartPanel& panel, QSize size) {
    panel.resize(size);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    QCoreApplication::processEvents();
    const QStringList elided = elidedTexts(panel);
    QVERIFY2(elided.isEmpty(), qPrintable(QStringLiteral("%1x%2: %3")
                                              .arg(size.width())
                                              .arg(size.height())
                                              .arg(elided.join(QStringLiteral(" | ")))));
  }

  // Shows the panel and sweeps the mouse over its chart until something answers with a
  // tooltip; returns its text (and where, in viewport coordinates).
  static QString sweepForToolTip(ChartPanel& panel, QPoint* at = nullptr) {
    QToolTip::hideText();  // the previous chart's: it goes after a short delay
    if (!QTest::qWaitFor([] { return !QToolTip::isVisible(); }, 3000)) return {};
    panel.resize(600, 400);
    panel.show();
    if (!QTest::qWaitForWindowExposed(&panel)) return {};
    auto* view = panel.findChild<QGraphicsView*>();
    if (!view) return {};
    QWidget* viewport = view->viewport();
    for (int x = 0; x < viewport->width(); x += 3) {
      for (int y = 0; y < viewport->height(); y += 3) {
        QTest::mouseMove(viewport, QPoint(x, y));
        if (QToolTip::isVisible() && !QToolTip::text().isEmpty()) {
          if (at) *at = QPoint(x, y);
          return QToolTip::text();
        }
      }
    }
    return {};
  }

  QTemporaryDir m_dir;

 private slots:
  void initTestCase() { QVERIFY(m_dir.isValid()); }

  void errorChartPlotsEveryLayer() {
    ErrorChart chart;
    chart.resize(800, 480);
    QCOMPARE(chart.pointCount(), 0);
    const auto layers = syntheticLayers(5);
    chart.setLayers(layers);
    QCOMPARE(chart.pointCount(), 35);
    // A layer whose RTN did not run still counts; one with neither error is not plotted.
    auto partial = layers;
    partial[3].rtn_rel_error = -1;
    partial[4].gptq_rel_error = partial[4].rtn_rel_error = -1;
    chart.setLayers(partial);
    QCOMPARE(chart.pointCount(), 34);
    chart.clear();
    QCOMPARE(chart.pointCount(), 0);
  }

  void errorChartStreams() {
    ErrorChart chart;
    chart.resize(800, 480);
    const auto layers = syntheticLayers(5);
    for (size_t i = 0; i < layers.size(); ++i) {
      chart.addLayer(layers[i]);
      QCOMPARE(chart.pointCount(), int(i) + 1);
    }
    checkExport(chart, "error-streamed");
    // A 224-layer run streams in without the chart becoming the bottleneck (generous bound:
    // a layer takes seconds to quantize).
    ErrorChart big;
    big.resize(800, 480);
    big.show();
    QVERIFY(QTest::qWaitForWindowExposed(&big));
    QElapsedTimer timer;
    timer.start();
    for (const LayerReport& l : syntheticLayers(32)) {
      big.addLayer(l);
      QCoreApplication::processEvents();  // as in the window: repaint after each layer
    }
    QCOMPARE(big.pointCount(), 224);
    QVERIFY2(timer.elapsed() < 10000, qPrintable(QString::number(timer.elapsed())));
    qInfo("224 layers streamed in %lld ms", qint64(timer.elapsed()));
  }

  void errorChartSelectsAndToggles() {
    ErrorChart chart;
    chart.resize(800, 480);
    chart.setLayers(syntheticLayers(5));
    QCOMPARE(chart.selectedLayer(), -1);
    chart.selectLayer(12);
    QCOMPARE(chart.selectedLayer(), 12);
    chart.selectLayer(35);  // out of range: nothing
    QCOMPARE(chart.selectedLayer(), -1);
    chart.selectLayer(12);
    QVERIFY(!chart.logScale());
    checkExport(chart, "error-linear");
    chart.setLogScale(true);
    QVERIFY(chart.logScale());
    QCOMPARE(chart.pointCount(), 35);
    checkExport(chart, "error-log");
    chart.setLogScale(false);
    QVERIFY(!chart.logScale());
    chart.setLogScale(true);
    // The data and selection survive the toggles; streaming into the log view works.
    chart.addLayer(syntheticLayers(6).back());
    QCOMPARE(chart.pointCount(), 36);
    QCOMPARE(chart.selectedLayer(), 12);
  }

  void errorChartLargeModel() {
    // 32 blocks = 224 layers: every block labelled, nothing clipped (look at the dump).
    ErrorChart chart;
    chart.resize(900, 480);
    chart.setLayers(syntheticLayers(32));
    QCOMPARE(chart.pointCount(), 224);
    chart.setLogScale(true);
    chart.selectLayer(100);
    checkExport(chart, "error-224-log");
    chart.setPalette(darkPalette());
    checkExport(chart, "error-224-log-dark");
  }

  void hessianChart() {
    HessianChart chart;
    chart.resize(800, 420);
    QCOMPARE(chart.pointCount(), 0);
    QCOMPARE(chart.deadCount(), 0);
    auto layers = syntheticLayers(1);
    chart.setLayer(&layers[6]);
    QCOMPARE(chart.pointCount(), 64);
    QCOMPARE(chart.deadCount(), 2);
    QVERIFY(chart.floorValue() > 0);
    QVERIFY(chart.floorValue() < 1e-3);  // below the smallest positive value
    QCOMPARE(chart.order(), HessianChart::Order::Channel);
    checkExport(chart, "hessian-channel");
    chart.setOrder(HessianChart::Order::Sorted);
    QCOMPARE(chart.order(), HessianChart::Order::Sorted);
    QCOMPARE(chart.pointCount(), 64);
    checkExport(chart, "hessian-sorted");
    chart.setOrder(HessianChart::Order::Quantization);
    QCOMPARE(chart.order(), HessianChart::Order::Quantization);
    QCOMPARE(chart.deadCount(), 2);
    checkExport(chart, "hessian-quantization");
    // Without act-order the order is kept but the channels are shown in their own order.
    layers[0].perm.clear();
    chart.setLayer(&layers[0]);
    QCOMPARE(chart.order(), HessianChart::Order::Quantization);
    QCOMPARE(chart.pointCount(), 64);
    // The chart copied what it needs: the reports may go.
    layers.clear();
    checkExport(chart, "hessian-no-perm");
    chart.setLayer(nullptr);
    QCOMPARE(chart.pointCount(), 0);
    QCOMPARE(chart.deadCount(), 0);
  }

  void hessianChartWide() {
    HessianChart chart;
    chart.resize(800, 420);
    const auto layers = syntheticLayers(1, 11008);
    chart.setLayer(&layers[6]);
    QCOMPARE(chart.pointCount(), 11008);
    QCOMPARE(chart.deadCount(), 2);
    checkExport(chart, "hessian-11008");
    chart.setPalette(darkPalette());
    chart.setOrder(HessianChart::Order::Sorted);
    checkExport(chart, "hessian-11008-sorted-dark");
    chart.clear();
    QCOMPARE(chart.pointCount(), 0);
  }

  void memoryChart() {
    MemoryChart chart;
    chart.resize(800, 440);
    QCOMPARE(chart.pointCount(), 0);
    const auto layers = syntheticLayers(5);
    chart.setData(summaryOf(layers), layers);
    QCOMPARE(chart.pointCount(), 16);  // 7 module types and the total, fp16 and quantized
    QCOMPARE(chart.categories().size(), 8);
    QVERIFY(chart.categories().front().startsWith("q"));
    QVERIFY(chart.categories().back().startsWith("total"));
    checkExport(chart, "memory");
    // Only the summary (a report without layers): the total alone.
    chart.setData(summaryOf(layers), {});
    QCOMPARE(chart.pointCount(), 2);
    chart.clear();
    QCOMPARE(chart.pointCount(), 0);
  }

  void memoryChartLargeModel() {
    // Llama-2-7B-like sizes: GiB units.
    auto layers = syntheticLayers(32);
    for (LayerReport& l : layers) {
      l.out_features = l.kind == LinearKind::down   ? 4096
                       : l.kind >= LinearKind::gate ? 11008
                                                    : 4096;
      l.in_features = l.kind == LinearKind::down ? 11008 : 4096;
      l.bytes_fp16 = uint64_t(l.out_features * l.in_features * 2);
      l.bytes_quantized =
          uint64_t(l.out_features * l.in_features / 2 + l.out_features * l.in_features / 128 * 4);
      l.bits_per_weight = double(l.bytes_quantized) * 8 / double(l.out_features * l.in_features);
    }
    MemorySummary m = summaryOf(layers);
    m.fp16_bytes += uint64_t(2) * 32000 * 4096 * 2;
    m.quantized_bytes += uint64_t(2) * 32000 * 4096 * 2;
    m.saving_percent = 100.0 * (1 - double(m.quantized_bytes) / double(m.fp16_bytes));
    MemoryChart chart;
    chart.resize(800, 440);
    chart.setData(m, layers);
    QCOMPARE(chart.pointCount(), 16);
    checkExport(chart, "memory-7b");
    chart.setPalette(darkPalette());
    checkExport(chart, "memory-7b-dark");
  }

  void perplexityChart() {
    PerplexityChart chart;
    chart.resize(600, 400);
    QCOMPARE(chart.pointCount(), 0);
    chart.setPerplexity(perplexity());
    QCOMPARE(chart.values(), (QList<double>{5.68, 6.2911, 5.8517}));
    QCOMPARE(chart.pointCount(), 3);
    checkExport(chart, "perplexity");
    auto p = perplexity();
    p.rtn.reset();
    chart.setPerplexity(p);
    QCOMPARE(chart.values(), (QList<double>{5.68, 5.8517}));
    chart.setPerplexity(std::nullopt);
    QCOMPARE(chart.pointCount(), 0);
    QVERIFY(chart.values().isEmpty());
    chart.setPalette(darkPalette());
    chart.setPerplexity(perplexity());
    checkExport(chart, "perplexity-dark");
    // Each quantized model says how much worse it is, GPTQ what it recovers of RTN's loss
    // (log-perplexity: (ln 6.2911 - ln 5.8517) / (ln 6.2911 - ln 5.68) = 70.7%).
    QCOMPARE(chart.legendNames(),
             (QStringList{"Original", "RTN +10.76% (+0.611)", "GPTQ +3.02% (+0.172)"}));
    QVERIFY(chart.xTitle().startsWith("GPTQ recovers 71% of RTN's loss"));
    QCOMPARE(chart.axisRange().first, 0.0);  // far apart: the axis starts at 0
    // Close values: the axis starts near them, so the bars differ visibly.
    auto close = perplexity();
    close.original = 16.407;
    close.rtn = 16.513;
    close.gptq = 16.436;
    chart.setPerplexity(close);
    QVERIFY2(chart.legendNames().join("|").contains("RTN +0.65% (+0.106)") &&
                 chart.legendNames().join("|").contains("GPTQ +0.18% (+0.029)"),
             qPrintable(chart.legendNames().join("|")));
    QVERIFY(chart.xTitle().startsWith("GPTQ recovers 73%"));
    // With standard errors (reports of version 2), each entry gives its value ± its error.
    close.original_se = 0.21;
    close.gptq_se = 0.2346;
    chart.setPerplexity(close);
    QVERIFY2(chart.legendNames().join("|").contains("Original 16.407 ± 0.210") &&
                 chart.legendNames().join("|").contains("GPTQ 16.436 ± 0.235, +0.18% (+0.029)") &&
                 chart.legendNames().join("|").contains("RTN +0.65%"),
             qPrintable(chart.legendNames().join("|")));
    QVERIFY(chart.axisRange().first > 16.0 && chart.axisRange().second < 17.0);
    checkExport(chart, "perplexity-close");
  }

  void nothingClippedAtMinimumSize() {
    // A 32-block (224-layer) model at each chart's minimum size and at its size hint: every
    // block labelled, no title, axis label or legend entry cut short.
    const auto layers = syntheticLayers(32);
    ErrorChart error;
    error.setLayers(layers);
    error.setLogScale(true);
    error.resize(error.minimumSize());
    checkExport(error, "min-error");
    checkNothingElided(error, error.minimumSize());
    QCOMPARE(error.labelledBlocks(), 32);
    checkNothingElided(error, error.sizeHint());
    QCOMPARE(error.labelledBlocks(), 32);
    error.setLogScale(false);
    checkNothingElided(error, error.minimumSize());
    HessianChart hessian;
    hessian.setLayer(&layers[6]);
    hessian.resize(hessian.minimumSize());
    checkExport(hessian, "min-hessian");
    checkNothingElided(hessian, hessian.minimumSize());
    MemoryChart memory;
    memory.setData(summaryOf(layers), layers);
    memory.resize(memory.minimumSize());
    checkExport(memory, "min-memory");
    checkNothingElided(memory, memory.minimumSize());
    checkNothingElided(memory, memory.sizeHint());
    PerplexityChart ppl;
    ppl.setPerplexity(perplexity());
    ppl.resize(ppl.minimumSize());
    checkExport(ppl, "min-perplexity");
    checkNothingElided(ppl, ppl.minimumSize());
  }

  void hoverShowsExactValues() {
    const auto layers = syntheticLayers(1);
    {
      ErrorChart error;
      error.setLayers({layers.front()});  // q_proj of block 0: GPTQ 0.001, RTN 0.003
      QPoint at;
      const QString tip = sweepForToolTip(error, &at);
      QVERIFY2(tip.contains("model.layers.0.self_attn.q_proj"), qPrintable(tip));
      QVERIFY2(tip.contains("0.001") && tip.contains("0.003"), qPrintable(tip));
      QVERIFY2(tip.contains("3.000"), qPrintable(tip));  // the ratio
      // Clicking the point selects its layer and says so.
      QSignalSpy clicked(&error, &ErrorChart::layerClicked);
      QTest::mouseClick(error.findChild<QGraphicsView*>()->viewport(), Qt::LeftButton, {}, at);
      QCOMPARE(clicked.count(), 1);
      QCOMPARE(clicked.front().front().toInt(), 0);
      QCOMPARE(error.selectedLayer(), 0);
    }
    {
      HessianChart hessian;
      hessian.setLayer(&layers[0]);
      const QString tip = sweepForToolTip(hessian);
      QVERIFY2(tip.contains("input channel") && tip.contains("H[i,i] = "), qPrintable(tip));
    }
    {
      MemoryChart memory;
      memory.setData(summaryOf(layers), layers);
      const QString tip = sweepForToolTip(memory);
      QVERIFY2(tip.contains("bytes"), qPrintable(tip));
    }
    {
      PerplexityChart ppl;
      ppl.setPerplexity(perplexity());
      const QString tip = sweepForToolTip(ppl);
      QVERIFY2(tip.contains("perplexity 5.68") || tip.contains("perplexity 6.2911") ||
                   tip.contains("perplexity 5.8517"),
               qPrintable(tip));
    }
  }

  void exportReportsUnwritableFile() {
    PerplexityChart chart;
    chart.setPerplexity(perplexity());
    const QString png = m_dir.filePath("no/such/folder/chart.png");
    const QString svg = m_dir.filePath("no/such/folder/chart.svg");
    QString error;
    QVERIFY(!chart.savePng(png, &error));
    QVERIFY2(error.contains(png), qPrintable(error));
    error.clear();
    QVERIFY(!chart.saveSvg(svg, &error));
    QVERIFY2(error.contains(svg), qPrintable(error));
    QVERIFY(!QFile::exists(png));
    QVERIFY(!chart.savePng(png));  // no error string wanted: still fails cleanly
  }

  void exportUsesThePanelSize() {
    // A panel never shown is laid out for export: the chart gets the panel's width.
    ErrorChart chart;
    chart.resize(700, 400);
    chart.setLayers(syntheticLayers(2));
    QCOMPARE(chart.exportSize().width(), 700);
    QVERIFY(chart.exportSize().height() <= 400);
    QVERIFY(chart.exportSize().height() > 300);
    // Shown and resized: the new size.
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    chart.resize(820, 460);
    QTRY_COMPARE(chart.exportSize().width(), 820);
    checkExport(chart, "error-shown");
  }
};

QTEST_MAIN(TestPlots)
#include "tst_plots.moc"
