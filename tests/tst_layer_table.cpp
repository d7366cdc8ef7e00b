// The layers table: LayerTableModel and LayerFilterModel under QAbstractItemModelTester through
// every change the window makes (reset, streaming, clear, filter, sort), the display text, the
// numeric sort order, and the CSV export.
#include <QAbstractItemModelTester>
#include <QFile>
#include <QStandardItemModel>
#include <QTemporaryDir>
#include <QTest>
#include <cmath>
#include <optional>

#include "csv_export.h"
#include "layer_filter_model.h"
#include "layer_table_model.h"

using gptqw::LayerReport;
using gptqw::LinearKind;
using gptqw::ui::LayerFilterModel;
using gptqw::ui::LayerTableModel;

namespace {

constexpr int kBlocks[] = {8, 9, 10, 11, 12};  // 9 and 10: a text sort would put "10" first

// 35 layers (5 blocks x 7 kinds) whose values span several decades, with a few layers where a
// method did not run, one RTN fallback and some where GPTQ did worse than RTN.
std::vector<LayerReport> syntheticLayers() {
  std::vector<LayerReport> layers;
  int i = 0;
  for (int block : kBlocks) {
    for (LinearKind kind : gptqw::kAllLinears) {
      LayerReport r;
      r.block = block;
      r.kind = kind;
      r.name = gptqw::linear_module(block, kind);
      r.out_features = 64 + 16 * (i % 5);
      r.in_features = kind == LinearKind::down ? 172 : 64;
      r.gptq_rel_error = (1 + i % 9) * std::pow(10.0, -(i % 5));
      r.rtn_rel_error = r.gptq_rel_error * (0.6 + 0.7 * (i % 3));
      r.gptq_loss = r.gptq_rel_error * 1000 + i;
      r.damp_fraction = 0.01 * (1 + i % 3);
      r.damp_abs = static_cast<float>(r.damp_fraction * 0.37);
      r.damp_raises = i % 3;
      r.hessian.min = i % 5 == 0 ? 0.0f : 1e-3f * static_cast<float>(i + 1);
      r.hessian.median = 0.5f * static_cast<float>(i % 7 + 1);
      r.hessian.max = std::pow(10.0f, static_cast<float>(i % 5)) * static_cast<float>(i + 1);
      r.hessian.mean = r.hessian.median * 1.5f;
      r.gptq_seconds = 0.001 * ((i * 7) % 11) + 0.5 * (i % 2);
      r.rtn_seconds = 0.0001 * i;
      r.bytes_fp16 = static_cast<uint64_t>(r.out_features * r.in_features * 2);
      r.bytes_quantized = r.bytes_fp16 / 4 + static_cast<uint64_t>((i * 37) % 101);
      r.bits_per_weight = static_cast<double>(r.bytes_quantized) * 8 /
                          static_cast<double>(r.out_features * r.in_features);
      if (i % 11 == 3) r.rtn_rel_error = -1;                 // RTN baseline off
      if (i % 13 == 5) r.gptq_rel_error = r.gptq_loss = -1;  // GPTQ off
      if (i == 17) {
        r.fell_back_to_rtn = true;
        r.note = "Cholesky factorisation failed; quantized with RTN instead";
      }
      layers.push_back(r);
      ++i;
    }
  }
  return layers;
}

// The value a column should sort by, straight from the report (nothing when absent).
std::optional<double> rawValue(const LayerReport& r, int column) {
  auto ifRan = [](double v) { return v >= 0 ? std::optional<double>(v) : std::nullopt; };
  switch (column) {
    case LayerTableModel::Block:
      return r.block;
    case LayerTableModel::Module:
      return static_cast<int>(r.kind);
    case LayerTableModel::Shape:
      return static_cast<double>(r.out_features * r.in_features);
    case LayerTableModel::GptqError:
      return ifRan(r.gptq_rel_error);
    case LayerTableModel::RtnError:
      return ifRan(r.rtn_rel_error);
    case LayerTableModel::Ratio:
      if (r.gptq_rel_error < 0 || r.rtn_rel_error <= 0) return std::nullopt;
      return r.gptq_rel_error / r.rtn_rel_error;
    case LayerTableModel::GptqLoss:
      return ifRan(r.gptq_loss);
    case LayerTableModel::Damping:
      return r.gptq_rel_error >= 0 ? std::optional<double>(r.damp_fraction) : std::nullopt;
    case LayerTableModel::HessMin:
      return r.hessian.min;
    case LayerTableModel::HessMedian:
      return r.hessian.median;
    case LayerTableModel::HessMax:
      return r.hessian.max;
    case LayerTableModel::Seconds:
      return r.gptq_seconds + r.rtn_seconds;
    case LayerTableModel::BytesFp16:
      return static_cast<double>(r.bytes_fp16);
    case LayerTableModel::BytesQuantized:
      return static_cast<double>(r.bytes_quantized);
    default:
      return std::nullopt;
  }
}

// A hand-picked layer with round-ish numbers, for exact display text.
LayerReport handPicked() {
  LayerReport r;
  r.block = 3;
  r.kind = LinearKind::down;
  r.name = "model.layers.3.mlp.down_proj";
  r.out_features = 512;
  r.in_features = 1376;
  r.gptq_rel_error = 0.0123456789;
  r.rtn_rel_error = 0.0456;
  r.gptq_loss = 12.3456;
  r.damp_fraction = 0.03;
  r.damp_abs = 0.25f;
  r.damp_raises = 2;
  r.note = "Cholesky failed at damp_fraction 0.01; raised to 0.03";
  r.hessian = {0.0f, 0.1f, 1234.75f, 2.0f, 0.125};
  r.gptq_seconds = 1.5;
  r.rtn_seconds = 0.25;
  r.bytes_fp16 = 512 * 1376 * 2;  // 1409024 = 1.3437 MiB
  r.bytes_quantized = 123456;     // 120.5625 KiB
  r.bits_per_weight = 123456.0 * 8 / (512 * 1376);
  return r;
}

QString readAll(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QString::fromUtf8(f.readAll());
}

}  // namespace

class TestLayerTable : public QObject {
  Q_OBJECT

 private:
  // Each visible row's sort value matches the report behind it, values ascend (or descend), and
  // rows without a value come last in both orders.
  void checkSorted(const LayerFilterModel& proxy, const LayerTableModel& table, int column,
                   Qt::SortOrder order) {
    bool seenMissing = false;
    std::optional<double> previous;
    for (int row = 0; row < proxy.rowCount(); ++row) {
      const QModelIndex index = proxy.index(row, column);
      const LayerReport& r = table.layer(proxy.mapToSource(index).row());
      const std::optional<double> raw = rawValue(r, column);
      const QVariant sortValue = index.data(LayerTableModel::SortRole);
      QCOMPARE(sortValue.isValid(), raw.has_value());
      if (!raw) {
        seenMissing = true;
        QVERIFY2(index.data().toString().isEmpty(), qPrintable(index.data().toString()));
        continue;
      }
      QVERIFY2(!seenMissing,
               qPrintable(QStringLiteral("column %1: a value after a missing one").arg(column)));
      QCOMPARE(sortValue.toDouble(), *raw);
      if (previous) {
        const bool inOrder = order == Qt::AscendingOrder ? *previous <= *raw : *previous >= *raw;
        QVERIFY2(inOrder, qPrintable(QStringLiteral("column %1 row %2: %3 then %4")
                                         .arg(column)
                                         .arg(row)
                                         .arg(*previous)
                                         .arg(*raw)));
      }
      previous = raw;
    }
  }

 private slots:
  void modelsUnderTester() {
    LayerTableModel table;
    LayerFilterModel proxy;
    proxy.setSourceModel(&table);
    QAbstractItemModelTester tableTester(&table,
                                         QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester proxyTester(&proxy,
                                         QAbstractItemModelTester::FailureReportingMode::QtTest);
    const std::vector<LayerReport> layers = syntheticLayers();
    QCOMPARE(layers.size(), size_t{35});

    table.setLayers(layers);
    QCOMPARE(table.rowCount(), 35);
    QCOMPARE(table.columnCount(), int{LayerTableModel::ColumnCount});
    QCOMPARE(proxy.rowCount(), 35);

    // Streaming while sorted and filtered, as during a run.
    table.clear();
    QCOMPARE(proxy.rowCount(), 0);
    proxy.sort(LayerTableModel::GptqError, Qt::AscendingOrder);
    proxy.setKinds({LinearKind::down, LinearKind::q});
    for (const LayerReport& r : layers) table.appendLayer(r);
    QCOMPARE(table.rowCount(), 35);
    QCOMPARE(proxy.rowCount(), 10);
    checkSorted(proxy, table, LayerTableModel::GptqError, Qt::AscendingOrder);
    for (int row = 0; row < proxy.rowCount(); ++row) {
      const auto kind =
          static_cast<LinearKind>(proxy.index(row, 0).data(LayerTableModel::KindRole).toInt());
      QVERIFY(kind == LinearKind::down || kind == LinearKind::q);
    }
    QCOMPARE(proxy.kinds(), (std::set<LinearKind>{LinearKind::q, LinearKind::down}));

    proxy.setKinds({});
    QCOMPARE(proxy.rowCount(), 35);
    proxy.setNamePattern(QStringLiteral("LAYERS.9."));  // case-insensitive substring
    QCOMPARE(proxy.rowCount(), 7);
    proxy.setNamePattern(QStringLiteral("layers.1"));  // 10, 11, 12
    QCOMPARE(proxy.rowCount(), 21);
    proxy.setNamePattern(QStringLiteral("mlp"));
    QCOMPARE(proxy.rowCount(), 15);
    proxy.setKinds({LinearKind::q});
    QCOMPARE(proxy.rowCount(), 0);
    proxy.setKinds({LinearKind::up});
    QCOMPARE(proxy.rowCount(), 5);
    proxy.setKinds({});
    proxy.setNamePattern(QString());
    QCOMPARE(proxy.rowCount(), 35);

    for (int column = 0; column < LayerTableModel::ColumnCount; ++column) {
      for (Qt::SortOrder order : {Qt::AscendingOrder, Qt::DescendingOrder}) {
        proxy.sort(column, order);
        checkSorted(proxy, table, column, order);
        if (QTest::currentTestFailed()) return;
      }
    }

    // Block 10 after block 9, not between 1 and 2 as text would have it.
    proxy.sort(LayerTableModel::Block, Qt::AscendingOrder);
    QStringList blocks;
    for (int row = 0; row < proxy.rowCount(); row += 7)
      blocks << proxy.index(row, 0).data().toString();
    QCOMPARE(blocks, (QStringList{"8", "9", "10", "11", "12"}));

    table.clear();
    QCOMPARE(proxy.rowCount(), 0);
    table.setLayers(layers);
    QCOMPARE(proxy.rowCount(), 35);
  }

  void numericOrderAcrossDecades() {
    LayerTableModel table;
    LayerFilterModel proxy;
    proxy.setSourceModel(&table);
    QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    std::vector<LayerReport> layers;
    // As text: "0.02" < "0.1" < "12" < "1e-05" < "3".
    for (double e : {0.1, 12.0, 1e-5, 3.0, 2e-2, 1e-3}) {
      LayerReport r;
      r.gptq_rel_error = e;
      layers.push_back(r);
    }
    LayerReport none;  // GPTQ did not run
    layers.push_back(none);
    table.setLayers(layers);
    proxy.sort(LayerTableModel::GptqError, Qt::AscendingOrder);
    QStringList shown;
    for (int row = 0; row < proxy.rowCount(); ++row)
      shown << proxy.index(row, LayerTableModel::GptqError).data().toString();
    QCOMPARE(shown, (QStringList{"1e-05", "0.001", "0.02", "0.1", "3", "12", ""}));
    proxy.sort(LayerTableModel::GptqError, Qt::DescendingOrder);
    shown.clear();
    for (int row = 0; row < proxy.rowCount(); ++row)
      shown << proxy.index(row, LayerTableModel::GptqError).data().toString();
    QCOMPARE(shown, (QStringList{"12", "3", "0.1", "0.02", "0.001", "1e-05", ""}));
  }

  void displayOfOneRow() {
    LayerTableModel table;
    table.setLayers({handPicked()});
    auto text = [&](int column) { return table.index(0, column).data().toString(); };
    QCOMPARE(text(LayerTableModel::Block), QStringLiteral("3"));
    QCOMPARE(text(LayerTableModel::Module), QStringLiteral("mlp.down_proj"));
    QCOMPARE(text(LayerTableModel::Shape), QStringLiteral("512 × 1376"));
    QCOMPARE(text(LayerTableModel::GptqError), QStringLiteral("0.01235"));
    QCOMPARE(text(LayerTableModel::RtnError), QStringLiteral("0.0456"));
    QCOMPARE(text(LayerTableModel::Ratio), QStringLiteral("0.271"));  // 0.0123456789 / 0.0456
    QCOMPARE(text(LayerTableModel::GptqLoss), QStringLiteral("12.35"));
    QCOMPARE(text(LayerTableModel::Damping), QStringLiteral("0.03 (raised ×2)"));
    QCOMPARE(text(LayerTableModel::HessMin), QStringLiteral("0"));
    QCOMPARE(text(LayerTableModel::HessMedian), QStringLiteral("0.1"));
    QCOMPARE(text(LayerTableModel::HessMax), QStringLiteral("1235"));
    QCOMPARE(text(LayerTableModel::Seconds), QStringLiteral("1.750"));
    QCOMPARE(text(LayerTableModel::BytesFp16), QStringLiteral("1.34 MiB"));
    QCOMPARE(text(LayerTableModel::BytesQuantized), QStringLiteral("120.56 KiB"));

    const QModelIndex gptq = table.index(0, LayerTableModel::GptqError);
    QCOMPARE(gptq.data(LayerTableModel::SortRole).toDouble(), 0.0123456789);
    QCOMPARE(table.index(0, LayerTableModel::Ratio).data(LayerTableModel::SortRole).toDouble(),
             0.0123456789 / 0.0456);
    QCOMPARE(gptq.data(LayerTableModel::KindRole).toInt(), static_cast<int>(LinearKind::down));
    QCOMPARE(gptq.data(LayerTableModel::NameRole).toString(),
             QStringLiteral("model.layers.3.mlp.down_proj"));
    QCOMPARE(gptq.data(Qt::TextAlignmentRole).toInt(),
             static_cast<int>(Qt::AlignRight | Qt::AlignVCenter));
    // Exact value and the note in the tooltip.
    const QString tip = gptq.data(Qt::ToolTipRole).toString();
    QVERIFY2(tip.contains(QStringLiteral("0.0123456789")), qPrintable(tip));
    QVERIFY2(tip.contains(QStringLiteral("raised to 0.03")), qPrintable(tip));
    // GPTQ beat RTN: no highlight.
    QVERIFY(!gptq.data(Qt::BackgroundRole).isValid());
    QCOMPARE(table.layer(0).name, std::string("model.layers.3.mlp.down_proj"));
    QCOMPARE(table.layers().size(), size_t{1});

    // Header: titles and an explanation for every column.
    for (int c = 0; c < LayerTableModel::ColumnCount; ++c) {
      QVERIFY(!table.headerData(c, Qt::Horizontal).toString().isEmpty());
      QVERIFY(!table.headerData(c, Qt::Horizontal, Qt::ToolTipRole).toString().isEmpty());
    }
    QCOMPARE(table.headerData(LayerTableModel::GptqError, Qt::Horizontal).toString(),
             QStringLiteral("GPTQ error"));
  }

  void missingValuesAndHighlights() {
    LayerReport noRtn = handPicked();
    noRtn.rtn_rel_error = -1;
    LayerReport noGptq = handPicked();
    noGptq.gptq_rel_error = noGptq.gptq_loss = -1;
    LayerReport worse = handPicked();
    worse.gptq_rel_error = 0.05;  // RTN 0.0456
    LayerReport fellBack = handPicked();
    fellBack.fell_back_to_rtn = true;
    fellBack.note = "quantized with RTN instead";
    LayerTableModel table;
    table.setLayers({noRtn, noGptq, worse, fellBack});
    auto text = [&](int row, int column) { return table.index(row, column).data().toString(); };

    QCOMPARE(text(0, LayerTableModel::RtnError), QString());
    QCOMPARE(text(0, LayerTableModel::Ratio), QString());
    QVERIFY(!table.index(0, LayerTableModel::Ratio).data(LayerTableModel::SortRole).isValid());
    QCOMPARE(text(0, LayerTableModel::GptqError), QStringLiteral("0.01235"));

    QCOMPARE(text(1, LayerTableModel::GptqError), QString());
    QCOMPARE(text(1, LayerTableModel::GptqLoss), QString());
    QCOMPARE(text(1, LayerTableModel::Ratio), QString());
    QCOMPARE(text(1, LayerTableModel::Damping), QString());
    QCOMPARE(text(1, LayerTableModel::RtnError), QStringLiteral("0.0456"));

    QCOMPARE(text(2, LayerTableModel::Ratio), QStringLiteral("1.096"));
    QVERIFY(table.index(2, LayerTableModel::Block).data(Qt::BackgroundRole).isValid());
    QVERIFY(table.index(2, LayerTableModel::Block).data(Qt::ForegroundRole).isValid());
    QVERIFY(table.index(2, 0).data(Qt::ToolTipRole).toString().contains(QStringLiteral("higher")));

    QVERIFY(table.index(3, LayerTableModel::HessMax).data(Qt::BackgroundRole).isValid());
    QVERIFY(table.index(3, 0).data(Qt::ToolTipRole).toString().contains(QStringLiteral("RTN")));
    QVERIFY(!table.index(0, 0).data(Qt::BackgroundRole).isValid());

    QVERIFY_THROWS_EXCEPTION(std::out_of_range, table.layer(4));
  }

  void csvOfSortedFilteredRows() {
    LayerTableModel table;
    LayerFilterModel proxy;
    proxy.setSourceModel(&table);
    std::vector<LayerReport> layers = syntheticLayers();
    LayerReport picked = handPicked();
    picked.rtn_rel_error = -1;
    layers.push_back(picked);
    table.setLayers(layers);
    proxy.setKinds({LinearKind::down});
    proxy.sort(LayerTableModel::Block, Qt::DescendingOrder);  // 12, 11, 10, 9, 8, 3

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(QStringLiteral("layers.csv"));
    QString error;
    QVERIFY2(gptqw::ui::exportCsv(proxy, path, &error), qPrintable(error));
    const QStringList lines = readAll(path).split(QStringLiteral("\r\n"));
    QCOMPARE(lines.size(), 1 + 6 + 1);  // header, rows, the empty text after the last CRLF
    QCOMPARE(lines.last(), QString());
    QCOMPARE(lines[0],
             QStringLiteral("block,module,shape,gptq_rel_error,rtn_rel_error,gptq_rtn_ratio,"
                            "gptq_loss,damp_fraction,hessian_min,hessian_median,hessian_max,"
                            "seconds,bytes_fp16,bytes_quantized"));
    QVERIFY2(lines[1].startsWith(QStringLiteral("12,mlp.down_proj,")), qPrintable(lines[1]));
    // Full precision from the sort role, empty where RTN did not run, a float's digits for a
    // float (0.1f, not 0.10000000149011612).
    QCOMPARE(lines[6], QStringLiteral("3,mlp.down_proj,512x1376,0.0123456789,,,12.3456,0.03,0,0.1,"
                                      "1234.75,1.75,1409024,123456"));

    // Overwrites an existing file.
    proxy.setKinds({});
    QVERIFY2(gptqw::ui::exportCsv(proxy, path, &error), qPrintable(error));
    QCOMPARE(readAll(path).count(QStringLiteral("\r\n")), 1 + 36);
  }

  void csvQuoting() {
    QCOMPARE(gptqw::ui::csvField(QStringLiteral("plain")), QStringLiteral("plain"));
    QCOMPARE(gptqw::ui::csvField(QStringLiteral("a,b")), QStringLiteral("\"a,b\""));
    QCOMPARE(gptqw::ui::csvField(QStringLiteral("say \"hi\"")),
             QStringLiteral("\"say \"\"hi\"\"\""));
    QCOMPARE(gptqw::ui::csvField(QStringLiteral("two\nlines")), QStringLiteral("\"two\nlines\""));

    // Any model: display text where there is no sort value, quoted as needed.
    QStandardItemModel model(1, 2);
    model.setHorizontalHeaderLabels({QStringLiteral("name, full"), QStringLiteral("value")});
    model.setItem(0, 0, new QStandardItem(QStringLiteral("model.layers.1,x")));
    auto* value = new QStandardItem(QStringLiteral("0.1"));
    value->setData(0.1, gptqw::ui::kCsvSortRole);
    model.setItem(0, 1, value);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("any.csv"));
    QString error;
    QVERIFY2(gptqw::ui::exportCsv(model, path, &error), qPrintable(error));
    QCOMPARE(readAll(path), QStringLiteral("\"name, full\",value\r\n\"model.layers.1,x\",0.1\r\n"));
  }

  void csvUnwritable() {
    LayerTableModel table;
    table.setLayers(syntheticLayers());
    for (const QString& path :
         {QStringLiteral("/nonexistent-gptqw-dir/sub/layers.csv"), QStringLiteral("/proc/x.csv")}) {
      QString error;
      QVERIFY(!gptqw::ui::exportCsv(table, path, &error));
      QVERIFY2(error.contains(path), qPrintable(error));
      QVERIFY(!QFile::exists(path));
    }
    QVERIFY(!gptqw::ui::exportCsv(table, QStringLiteral("/proc/x.csv")));  // no error wanted
  }
};

QTEST_MAIN(TestLayerTable)
#include "tst_layer_table.moc"
