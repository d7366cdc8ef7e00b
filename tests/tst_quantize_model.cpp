// Data tests of the sequential driver on the real stories260K model: GPTQ's reconstruction
// error is at most RTN's on every layer's own calibration inputs, the perplexity table at the
// issue's settings (pinned, with GPTQ beating RTN everywhere), reproducible calibration
// windows, cancellation, bad input, and the report's JSON round trip.
#include <QTest>
#include <cmath>
#include <fstream>

#include "common/error.h"
#include "common/text_file.h"
#include "io/gptq_checkpoint.h"
#include "io/gptq_export.h"
#include "pipeline/quantize.h"
#include "pipeline/report.h"
#include "quant/packing.h"
#include "test_support.h"

using namespace gptqw;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  Model model = load_model(test::stories_dir());
  std::vector<int32_t> tiny_ids =
      model.tokenizer->encode(read_text_file(test::data("text/tinystories-sample.txt")), true);
};

Fixture& fx() {
  static Fixture f;
  return f;
}

QuantizeOptions settings(int bits, int group_size, bool act_order) {
  QuantizeOptions o;
  o.gptq.quant.bits = bits;
  o.gptq.quant.group_size = group_size;
  o.gptq.act_order = act_order;
  return o;
}

struct Run {
  QuantizeResult result;
  std::shared_ptr<QuantizedModel> gptq, rtn;
};

Run run(const QuantizeOptions& o, int nsamples, int seqlen = 256, uint64_t seed = 0) {
  Fixture& f = fx();
  CalibrationSet calib = sample_calibration(f.tiny_ids, nsamples, seqlen, seed);
  Run r;
  r.gptq = std::make_shared<QuantizedModel>(f.model.weights);
  r.rtn = std::make_shared<QuantizedModel>(f.model.weights);
  r.result = quantize_model(*f.model.weights, calib, o,
                            [&](Method m, int b, LinearKind k, QuantizedWeights&& w) {
                              (m == Method::gptq ? *r.gptq : *r.rtn).set(b, k, dequantize_as_stored(w));
                            });
  return r;
}

double ppl(const WeightSource& w, const std::vector<int32_t>& ids, int max_windows = 0) {
  PerplexityOptions p;
  p.seqlen = 512;
  p.max_windows = max_windows;
  return perplexity(w, ids, p).ppl;
}

}  // namespace

class TestQuantizeModel : public QObject {
  Q_OBJECT
 private slots:
  void gptqNeverWorseThanRtnPerLayer_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<int>("group_size");
    QTest::addColumn<bool>("act_order");
    QTest::newRow("4-bit per-row") << 4 << -1 << false;
    QTest::newRow("4-bit g32 act-order") << 4 << 32 << true;
    QTest::newRow("3-bit g32") << 3 << 32 << false;
    QTest::newRow("2-bit g64 act-order") << 2 << 64 << true;
    QTest::newRow("8-bit per-row") << 8 << -1 << false;
  }
  void gptqNeverWorseThanRtnPerLayer() {
    QFETCH(int, bits);
    QFETCH(int, group_size);
    QFETCH(bool, act_order);
    Run r = run(settings(bits, group_size, act_order), 32);
    QCOMPARE(r.result.layers.size(), size_t(35));  // 5 blocks x 7 linears
    QCOMPARE(r.gptq->size(), size_t(35));
    for (const auto& l : r.result.layers) {
      QVERIFY(l.gptq_rel_error >= 0 && l.rtn_rel_error > 0);
      // The error GPTQ minimises, measured on the inputs it saw: never above RTN's (a hair
      // of fp32 slack for 8 bits, where both are ~1e-6).
      QVERIFY2(l.gptq_rel_error <= l.rtn_rel_error * (1 + 1e-3),
               qPrintable(QString("%1: gptq %2 rtn %3").arg(l.name.c_str()).arg(l.gptq_rel_error).arg(l.rtn_rel_error)));
      QCOMPARE(int64_t(l.hessian_diag.size()), l.in_features);
      QVERIFY(l.hessian.min <= l.hessian.median && l.hessian.median <= l.hessian.max);
      QCOMPARE(l.perm.size(), act_order ? size_t(l.in_features) : size_t(0));
      QVERIFY(l.bits_per_weight > bits && l.bits_per_weight < bits + 2.5);
    }
  }

  // The Hessian diagonal in the report is H[i,i] = 2 / n_seq * sum_t x[t,i]^2 over the layer's
  // calibration inputs. Block 0's q/k/v inputs are the RMS-normed embeddings, computed here
  // independently of the driver.
  void hessianDiagonalIsTheInputsSecondMoment() {
    Fixture& f = fx();
    const int nsamples = 8, seqlen = 256;
    CalibrationSet calib = sample_calibration(f.tiny_ids, nsamples, seqlen, 0);
    QuantizeOptions o = settings(4, 32, false);
    o.run_rtn = false;
    QuantizeResult result = quantize_model(*f.model.weights, calib, o, {});
    const Matrix emb = f.model.weights->embedding();
    const Vector norm_w = f.model.weights->block(0).attn_norm;
    const float eps = f.model.config().rms_norm_eps;
    std::vector<double> expected(emb.cols(), 0.0);
    for (int32_t id : calib.tokens) {
      const auto x = emb.row(id);
      const double r = 1.0 / std::sqrt(double(x.squaredNorm()) / x.size() + eps);
      for (Eigen::Index i = 0; i < x.size(); ++i) expected[i] += std::pow(x[i] * r * norm_w[i], 2);
    }
    const LayerReport& q = result.layers.at(0);
    QCOMPARE(q.name, std::string("model.layers.0.self_attn.q_proj"));
    QCOMPARE(q.hessian_diag.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const double want = 2.0 / nsamples * expected[i];
      QVERIFY2(std::abs(q.hessian_diag[i] - want) <= 1e-4 * want,
               qPrintable(QString("H[%1,%1] = %2, expected %3").arg(i).arg(q.hessian_diag[i]).arg(want)));
    }
    for (const LayerReport& l : result.layers)
      QVERIFY2(l.hessian.min >= 0, qPrintable(QString::fromStdString(l.name)));
  }

  // The issue's quality table: calibration 128 x 256 tokens of the TinyStories sample,
  // evaluation on it with seqlen 512. Values pinned from this implementation (closing note of
  // the engine issue); the assertions that matter are GPTQ < RTN at every setting and at least
  // 40% of RTN's loss recovered at 4-bit g32 with act-order.
  void perplexityTable_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<int>("group_size");
    QTest::addColumn<bool>("act_order");
    QTest::addColumn<double>("pinned_rtn");
    QTest::addColumn<double>("pinned_gptq");
    // The row the sanitizer build runs too (gptqNeverWorseThanRtnPerLayer runs every
    // quantizer path there). Its code sums in another order: this row's GPTQ gives 9.8640
    // there, and 3-bit g32 moved 1.0%, to 17.675.
    QTest::addColumn<bool>("when_sanitized");
    QTest::newRow("4-bit per-row") << 4 << -1 << false << 10.7796 << 10.0597 << false;
    QTest::newRow("4-bit per-row act-order") << 4 << -1 << true << 10.7796 << 9.8634 << false;
    QTest::newRow("4-bit g32") << 4 << 32 << false << 10.8273 << 10.0482 << false;
    QTest::newRow("4-bit g32 act-order") << 4 << 32 << true << 10.8273 << 9.8479 << true;
    QTest::newRow("3-bit g32") << 3 << 32 << false << 28.8683 << 17.4990 << false;
    QTest::newRow("3-bit g32 act-order") << 3 << 32 << true << 28.8683 << 16.4490 << false;
    QTest::newRow("2-bit g32") << 2 << 32 << false << 1226.24 << 405.866 << false;
    QTest::newRow("2-bit g32 act-order") << 2 << 32 << true << 1226.24 << 432.290 << false;
  }
  void perplexityTable() {
    QFETCH(int, bits);
    QFETCH(int, group_size);
    QFETCH(bool, act_order);
    QFETCH(double, pinned_rtn);
    QFETCH(double, pinned_gptq);
    QFETCH(bool, when_sanitized);
    if (!when_sanitized) GPTQW_SKIP_WHEN_SANITIZED("this row of the pinned table");
    static const double original = ppl(*fx().model.weights, fx().tiny_ids);
    QVERIFY(std::abs(original / 8.8409 - 1) < 1e-4);  // tst_model checks it against PyTorch
    Run r = run(settings(bits, group_size, act_order), 128);
    double rtn = ppl(*r.rtn, fx().tiny_ids), gptq = ppl(*r.gptq, fx().tiny_ids);
    qDebug("%d-bit g%d%s: original %.4f  rtn %.4f  gptq %.4f  recovered %.1f%%", bits, group_size,
           act_order ? " act-order" : "", original, rtn, gptq, 100 * (rtn - gptq) / (rtn - original));
    QVERIFY2(gptq < rtn, qPrintable(QString("gptq %1 >= rtn %2").arg(gptq).arg(rtn)));
    if (bits == 4 && group_size == 32 && act_order) QVERIFY((rtn - gptq) / (rtn - original) >= 0.40);
    // fp32 summation order may differ between machines: 1% tolerance on the pins, 5% at 2 bits
    // where the model is so damaged that a flipped tie moves the result visibly.
    const double tol = bits == 2 ? 0.05 : 0.01;
    QVERIFY2(std::abs(rtn / pinned_rtn - 1) < tol, qPrintable(QString("rtn %1 pinned %2").arg(rtn).arg(pinned_rtn)));
    QVERIFY2(std::abs(gptq / pinned_gptq - 1) < tol, qPrintable(QString("gptq %1 pinned %2").arg(gptq).arg(pinned_gptq)));
  }

  void calibrationIsReproducible() {
    const auto& ids = fx().tiny_ids;
    CalibrationSet a = sample_calibration(ids, 16, 256, 7), b = sample_calibration(ids, 16, 256, 7),
                   c = sample_calibration(ids, 16, 256, 8);
    QCOMPARE(a.offsets, b.offsets);
    QVERIFY(a.offsets != c.offsets);
    QCOMPARE(a.tokens.size(), size_t(16 * 256));
    for (int i = 0; i < 16; ++i) {
      QVERIFY(a.offsets[i] >= 0 && a.offsets[i] + 256 <= int64_t(ids.size()));
      QCOMPARE(a.tokens[size_t(i) * 256], ids[a.offsets[i]]);
    }
    CalibrationSet again = calibration_from_offsets(ids, a.offsets, 256);
    QCOMPARE(again.tokens, a.tokens);
  }

  void calibrationBadInput() {
    std::vector<int32_t> few(100, 5);
    auto message = [&](int n, int seqlen) -> std::string {
      try {
        sample_calibration(few, n, seqlen, 0);
      } catch (const ConfigError& e) {
        return e.what();
      }
      return "";
    };
    QVERIFY(message(1, 128).find("fewer than one window") != std::string::npos);
    QVERIFY(message(4, 50).find("at most 2 windows") != std::string::npos);
    QVERIFY(message(0, 10).find("nsamples") != std::string::npos);
    QTemporaryDir tmp;
    fs::path f = fs::path(tmp.path().toStdString()) / "short.txt";
    std::ofstream(f) << "Once upon a time.";
    try {
      sample_calibration(*fx().model.tokenizer, f, 4, 256, 0);
      QFAIL("no error");
    } catch (const ConfigError& e) {
      QVERIFY2(std::string(e.what()).find("short.txt") != std::string::npos, e.what());
    }
  }

  void skippedModulesStayFullPrecision() {
    QuantizeOptions o = settings(3, 32, false);
    o.skip = {parse_linear_name("down_proj"), parse_linear_name("mlp.gate_proj")};
    Run r = run(o, 8, 128);
    QCOMPARE(r.result.layers.size(), size_t(25));  // 5 blocks x 5 quantized linears
    for (const auto& l : r.result.layers)
      QVERIFY(l.kind != LinearKind::down && l.kind != LinearKind::gate);
    QCOMPARE(r.gptq->size(), size_t(25));
    QVERIFY(r.gptq->block(1)[LinearKind::down].W == fx().model.weights->block(1)[LinearKind::down].W);
    QVERIFY_THROWS_EXCEPTION(ConfigError, parse_linear_name("mlp.fc1"));
  }

  void cancelStopsCleanly() {
    CalibrationSet calib = sample_calibration(fx().tiny_ids, 8, 128, 0);
    int calls = 0, sunk = 0;
    try {
      quantize_model(*fx().model.weights, calib, settings(4, 32, false),
                     [&](Method, int, LinearKind, QuantizedWeights&&) { ++sunk; },
                     [&](const Progress&) { return ++calls < 12; });
      QFAIL("not cancelled");
    } catch (const Cancelled&) {
    }
    QVERIFY(sunk > 0 && sunk < 70);
  }

  void nonFiniteWeightsNamed() {
    auto bad = std::make_shared<QuantizedModel>(fx().model.weights);
    Matrix W = fx().model.weights->block(2)[LinearKind::up].W;
    W(3, 5) = std::numeric_limits<float>::quiet_NaN();
    bad->set(2, LinearKind::up, W);
    CalibrationSet calib = sample_calibration(fx().tiny_ids, 4, 128, 0);
    try {
      quantize_model(*bad, calib, settings(4, 32, false), {});
      QFAIL("no error");
    } catch (const Error& e) {
      QVERIFY2(std::string(e.what()).find("model.layers.2.mlp") != std::string::npos, e.what());
    }
  }

  // Export -> import gives the engine's codes bit for bit and the in-memory model's perplexity
  // to 1e-4 (the in-memory model is evaluated with F16 scales, as stored; the residue is the
  // F16 cast of embeddings and norms).
  void exportRoundTripKeepsPerplexity_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<bool>("sym");
    QTest::newRow("4-bit sym g32 act-order") << 4 << true;
    QTest::newRow("3-bit asym g32 act-order") << 3 << false;
  }
  void exportRoundTripKeepsPerplexity() {
    QFETCH(int, bits);
    QFETCH(bool, sym);
    QuantizeOptions o = settings(bits, 32, true);
    o.gptq.quant.sym = sym;
    o.run_rtn = false;
    QTemporaryDir tmp;
    GptqExportOptions eo;
    eo.source_dir = test::stories_dir();
    eo.output_dir = fs::path(tmp.path().toStdString()) / "q";
    eo.settings.quant = o.gptq.quant;
    eo.settings.desc_act = true;
    GptqWriter writer(*fx().model.weights, eo);
    QuantizedModel in_memory(fx().model.weights);
    std::map<std::pair<int, int>, Codes> codes;
    CalibrationSet calib = sample_calibration(fx().tiny_ids, 16, 256, 0);
    quantize_model(*fx().model.weights, calib, o, [&](Method, int b, LinearKind k, QuantizedWeights&& w) {
      writer.add(b, k, w);
      in_memory.set(b, k, dequantize_as_stored(w));
      codes[{b, int(k)}] = w.codes;
    });
    writer.finish();
    auto imported = open_weights(eo.output_dir);
    const auto* gptq = dynamic_cast<const GptqCheckpoint*>(imported.get());
    QVERIFY(gptq);
    QVERIFY(gptq->settings().zero_format() == (sym ? ZeroFormat::v1 : ZeroFormat::v2));
    for (const auto& [key, c] : codes) {
      QuantizedWeights back = gptq->quantized(key.first, LinearKind(key.second));
      QVERIFY(back.codes == c);
      QVERIFY(back.Q == in_memory.block(key.first)[LinearKind(key.second)].W);
    }
    // Equal codes and weights make equal perplexities on any windows: 32 of them show it.
    double a = ppl(in_memory, fx().tiny_ids, 32), b = ppl(*imported, fx().tiny_ids, 32);
    qDebug("in memory %.6f, exported %.6f", a, b);
    QVERIFY2(std::abs(b / a - 1) < 1e-4, qPrintable(QString("%1 vs %2").arg(a).arg(b)));
  }

  void reportRoundTrip() {
    QuantizeOptions o = settings(3, 32, true);
    Run r = run(o, 8, 128);
    Report rep;
    rep.tool_version = "test";
    rep.created = utc_now_iso8601();
    rep.backend = "cpu";
    rep.threads = 2;
    rep.model = summarize(*fx().model.weights, test::stories_dir().string());
    rep.options = o;
    rep.calib_offsets = {1, 2, 3};
    rep.memory = memory_summary(fx().model.config(), r.result.layers);
    rep.layers = r.result.layers;
    rep.perplexity = PerplexitySummary{"x.txt", 512, 3, 2000, 8.8, 10.2, std::nullopt, 1.5};
    QTemporaryDir tmp;
    fs::path f = fs::path(tmp.path().toStdString()) / "report.json";
    save_report(rep, f);
    Report back = load_report(f);
    QCOMPARE(to_json(back).dump(), to_json(rep).dump());
    QVERIFY(!back.perplexity->gptq);
    QCOMPARE(back.layers.size(), size_t(35));
    QVERIFY(rep.memory.quantized_bytes < rep.memory.fp16_bytes);
    // Corrupt reports are named, and so is the field. A float field beyond float's range
    // (fuzz_report's finding) would have become infinity and been saved as null.
    auto refused = [&](const std::string& text, const char* field) {
      std::ofstream(f) << text;
      try {
        load_report(f);
        QFAIL("no error");
      } catch (const FormatError& e) {
        const std::string what = e.what();
        QVERIFY2(what.find("report.json") != std::string::npos && what.find(field) != std::string::npos, e.what());
      }
    };
    refused(R"({"schema": "gptq-workbench-report", "schema_version": 1})", "");
    nlohmann::json j = to_json(rep);
    j["layers"][0]["hessian"]["diag"][0] = 1e308;
    refused(j.dump(), "'diag'");
    j = to_json(rep);
    j["layers"][0]["hessian"]["max"] = "big";
    refused(j.dump(), "'max'");
  }
};

QTEST_GUILESS_MAIN(TestQuantizeModel)
#include "tst_quantize_model.moc"
