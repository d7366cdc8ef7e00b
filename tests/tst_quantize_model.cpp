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

// The 128 windows of 256 tokens of the quality table (seed 0's; tableWindowsAreSeedZeros).
const std::vector<int64_t> kTableOffsets = {
    62169,  25217,  89608,  71253,  73546,  73418,  29338,  120069, 2468,   40358,  59282,
    20154,  68452,  36095,  127375, 92864,  133062, 61538,  74240,  64549,  68700,  87783,
    39219,  55829,  13342,  119737, 122500, 1167,   70582,  94811,  75434,  127859, 127206,
    48164,  49560,  116019, 84914,  22791,  55742,  35643,  99901,  80802,  76741,  76265,
    37948,  100338, 54415,  123348, 101960, 124498, 54964,  6233,   113752, 88896,  23545,
    7699,   89487,  25088,  74975,  107774, 45139,  39813,  34836,  86830,  39622,  65666,
    97859,  84585,  114660, 7115,   86077,  54300,  110960, 61935,  46130,  109412, 23766,
    4966,   13779,  16775,  1790,   38545,  94500,  110109, 100026, 94019,  124534, 118494,
    115560, 119664, 88567,  55596,  113211, 92888,  94229,  68442,  120141, 98837,  107309,
    30016,  11743,  69342,  88118,  94557,  67014,  3899,   5619,   93233,  69464,  48199,
    49165,  85702,  46882,  100497, 3062,   81440,  49127,  19540,  115462, 121894, 39422,
    78863,  70592,  126889, 42718,  54653,  29200,  86008};

Run run_on(const QuantizeOptions& o, const CalibrationSet& calib) {
  Fixture& f = fx();
  Run r;
  r.gptq = std::make_shared<QuantizedModel>(f.model.weights);
  r.rtn = std::make_shared<QuantizedModel>(f.model.weights);
  r.result = quantize_model(*f.model.weights, calib, o,
                            [&](Method m, int b, LinearKind k, QuantizedWeights&& w) {
                              (m == Method::gptq ? *r.gptq : *r.rtn).set(b, k, dequantize_as_stored(w));
                            });
  return r;
}

Run run(const QuantizeOptions& o, int nsamples, int seqlen = 256, uint64_t seed = 0) {
  return run_on(o, sample_calibration(fx().tiny_ids, nsamples, seqlen, seed));
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

  // The quality table: calibration on the 128 windows of 256 tokens of the TinyStories sample
  // checked in below, evaluation on the whole sample at seqlen 512 (263 windows).
  //
  // Two pins per row, each with its own tolerance:
  // - `engine`: what this engine computes. Its kernels give the same bits on every x86-64 CPU
  //   (AVX-512, AVX2 or neither), in builds with and without -march=native and at every thread
  //   count (core/linalg/cpu_kernels.h; scripts/baseline_check.sh and tst_cli's
  //   sameInputsSameBits prove it), so the tolerance is 1e-6: room for the C library's log in
  //   the final sum, nothing else. Measured cross-build spread: 0 (bit-identical exports).
  // - `reference`: what tools/reference/quantize_reference.py, an independent float32
  //   transcription of IST gptq (llama.py + gptq.py + quant.py) in PyTorch, gives on the same
  //   windows; the tolerance is the measured engine-vs-reference difference (in the comment)
  //   rounded up. Where every code agrees the two differ by 1e-8 (fp32 evaluation noise). With
  //   upstream's rounding, symmetric g32 rows differ by 1e-4 to 5e-3: at a symmetric grid's
  //   negative end the quotient is -(maxq+1)/2 up to one ulp, the two implementations' last bits
  //   differ, a code goes the other way and GPTQ's error feedback carries the difference on
  //   (quant/quantizer.h, round_quotient). The exact-ties rows decide those ties exactly, in the
  //   engine and in the reference (its default rule), and agree to 1e-7.
  //   RTN does not depend on the order of any sum: it agrees to 3e-8 everywhere.
  void perplexityTable_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<int>("group_size");
    QTest::addColumn<bool>("act_order");
    QTest::addColumn<bool>("sym");
    QTest::addColumn<bool>("exact_ties");
    QTest::addColumn<double>("rtn");
    QTest::addColumn<double>("engine");
    QTest::addColumn<double>("reference");
    QTest::addColumn<double>("reference_tol");  // relative
    // The row the sanitizer build runs too (the others are whole-corpus numbers that take
    // minutes there; gptqNeverWorseThanRtnPerLayer runs every quantizer path instrumented).
    QTest::addColumn<bool>("when_sanitized");
    // clang-format off
    //                                           bits  gs   act    sym      RTN                  engine GPTQ          reference GPTQ       tolerance (measured)
    QTest::newRow("4-bit per-row")            << 4 << -1 << false << true  << false << 10.779568435385032 << 10.05969316620636  << 10.059692911241946 << 3e-7  << false;  // 2.5e-8
    QTest::newRow("4-bit per-row act-order")  << 4 << -1 << true  << true  << false << 10.779568435385032 << 9.863441969242988  << 9.863441833921609  << 3e-7  << false;  // 1.4e-8
    QTest::newRow("4-bit g32")                << 4 << 32 << false << true  << false << 10.827271800533369 << 10.0481750894163   << 10.039779054246535 << 2e-3  << false;  // 8.4e-4
    QTest::newRow("4-bit g32 act-order")      << 4 << 32 << true  << true  << false << 10.827271800533369 << 9.898548152791198  << 9.846871249793116  << 1e-2  << true;   // 5.2e-3
    QTest::newRow("3-bit g32")                << 3 << 32 << false << true  << false << 28.868312327560993 << 17.49900443557549  << 17.518397700498614 << 3e-3  << false;  // 1.1e-3
    QTest::newRow("3-bit g32 act-order")      << 3 << 32 << true  << true  << false << 28.868312327560993 << 16.448997066702653 << 16.450300074443845 << 2e-4  << false;  // 7.9e-5
    QTest::newRow("2-bit g32")                << 2 << 32 << false << true  << false << 1226.2382654490098 << 405.86599803485257 << 405.8660024086335  << 3e-7  << false;  // 1.1e-8
    QTest::newRow("2-bit g32 act-order")      << 2 << 32 << true  << true  << false << 1226.2382654490098 << 432.29034673157014 << 432.2909384420493  << 3e-6  << false;  // 1.4e-6
    QTest::newRow("4-bit g32 asym")           << 4 << 32 << false << false << false << 10.444831271416787 << 9.956801230794637  << 9.95680114513131   << 3e-7  << false;  // 8.6e-9
    QTest::newRow("4-bit g32 act-order asym") << 4 << 32 << true  << false << false << 10.444831271416787 << 9.456832091311869  << 9.456831727664735  << 3e-7  << false;  // 3.8e-8
    QTest::newRow("3-bit g32 asym")           << 3 << 32 << false << false << false << 20.452235857004062 << 13.934454181367032 << 13.934453494884622 << 3e-7  << false;  // 4.9e-8
    // --exact-ties: every code equals the reference's (226,560 of 226,560 in each row), so the
    // rows agree to fp32 evaluation noise. (The asymmetric rows met no tie: their codes, and
    // so their numbers, are the same with and without the option.)
    QTest::newRow("4-bit g32 act-order exact")<< 4 << 32 << true  << true  << true  << 10.86295364609155  << 9.838021556496917  << 9.838021362280509  << 3e-7  << false;  // 2.0e-8
    QTest::newRow("4-bit g32 exact")          << 4 << 32 << false << true  << true  << 10.86295364609155  << 9.967389677161288  << 9.967389313546002  << 3e-7  << false;  // 3.6e-8
    QTest::newRow("3-bit g32 exact")          << 3 << 32 << false << true  << true  << 28.66645954307854  << 16.872172212658153 << 16.872171919141948 << 3e-7  << false;  // 1.7e-8
    // clang-format on
  }
  void perplexityTable() {
    QFETCH(int, bits);
    QFETCH(int, group_size);
    QFETCH(bool, act_order);
    QFETCH(bool, sym);
    QFETCH(bool, exact_ties);
    QFETCH(double, rtn);
    QFETCH(double, engine);
    QFETCH(double, reference);
    QFETCH(double, reference_tol);
    QFETCH(bool, when_sanitized);
    if (!when_sanitized) GPTQW_SKIP_WHEN_SANITIZED("this row of the pinned table");
    static const double original = ppl(*fx().model.weights, fx().tiny_ids);
    // tst_model checks it against float64 PyTorch (8.840868077, 1e-8).
    QVERIFY(std::abs(original / 8.840868132464418 - 1) < 1e-6);
    QuantizeOptions o = settings(bits, group_size, act_order);
    o.gptq.quant.sym = sym;
    o.gptq.quant.exact_ties = exact_ties;
    Run r = run_on(o, calibration_from_offsets(fx().tiny_ids, kTableOffsets, 256));
    const double rtn_ppl = ppl(*r.rtn, fx().tiny_ids), gptq = ppl(*r.gptq, fx().tiny_ids);
    qDebug("%d-bit g%d%s%s%s: original %.6f  rtn %.6f  gptq %.6f (reference %.6f, %+.3f%%)  recovered %.1f%%",
           bits, group_size, act_order ? " act-order" : "", sym ? "" : " asym",
           exact_ties ? " exact-ties" : "", original, rtn_ppl,
           gptq, reference, 100 * (gptq / reference - 1), 100 * (rtn_ppl - gptq) / (rtn_ppl - original));
    QVERIFY2(gptq < rtn_ppl, qPrintable(QString("gptq %1 >= rtn %2").arg(gptq).arg(rtn_ppl)));
    if (bits == 4 && group_size == 32 && act_order) QVERIFY((rtn_ppl - gptq) / (rtn_ppl - original) >= 0.40);
    QVERIFY2(std::abs(rtn_ppl / rtn - 1) < 1e-6, qPrintable(QString("rtn %1 pinned %2").arg(rtn_ppl, 0, 'g', 17).arg(rtn, 0, 'g', 17)));
    QVERIFY2(std::abs(gptq / engine - 1) < 1e-6,
             qPrintable(QString("gptq %1, the engine's pin %2").arg(gptq, 0, 'g', 17).arg(engine, 0, 'g', 17)));
    QVERIFY2(std::abs(gptq / reference - 1) < reference_tol,
             qPrintable(QString("gptq %1, the reference's %2 (tolerance %3)").arg(gptq).arg(reference).arg(reference_tol)));
  }

  // The driver's two ways through a block (each part once, keeping the activations; or each
  // group re-running the block from its start) give the same bits, with every option that
  // changes which parts run.
  void stagedAndRecomputedBlocksAgree_data() {
    QTest::addColumn<bool>("act_order");
    QTest::addColumn<QString>("skip");
    QTest::newRow("4-bit g32") << false << QString();
    QTest::newRow("act-order, o and up skipped") << true << QString("o_proj,up_proj");
  }
  void stagedAndRecomputedBlocksAgree() {
    QFETCH(bool, act_order);
    QFETCH(QString, skip);
    QuantizeOptions o = settings(4, 32, act_order);
    for (const QString& m : skip.split(',', Qt::SkipEmptyParts)) o.skip.insert(parse_linear_name(m.toStdString()));
    // 12 windows of 1024 tokens: more than one of block_forward's 8192-token chunks.
    const CalibrationSet calib = sample_calibration(fx().tiny_ids, 12, 1024, 3);
    auto codes = [&](uint64_t budget) {
      o.staged_budget_bytes = budget;
      std::vector<std::pair<Codes, Matrix>> out;
      QuantizeResult r = quantize_model(*fx().model.weights, calib, o,
                                        [&](Method m, int, LinearKind, QuantizedWeights&& w) {
                                          if (m == Method::gptq) out.emplace_back(w.codes, w.scales);
                                        });
      return std::make_pair(out, r);
    };
    const auto [staged, rs] = codes(uint64_t(1) << 40);
    const auto [recomputed, rr] = codes(0);
    QCOMPARE(staged.size(), size_t(5 * (7 - o.skip.size())));
    QVERIFY(staged == recomputed);
    for (size_t i = 0; i < rs.layers.size(); ++i)
      QCOMPARE(rs.layers[i].gptq_rel_error, rr.layers[i].gptq_rel_error);
  }

  // The table's windows are the sampler's for seed 0: a change in the sampler shows here, not
  // as moved pins.
  void tableWindowsAreSeedZeros() {
    QCOMPARE(sample_calibration(fx().tiny_ids, 128, 256, 0).offsets, kTableOffsets);
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
    std::map<LayerId, Codes> codes;
    CalibrationSet calib = sample_calibration(fx().tiny_ids, 16, 256, 0);
    quantize_model(*fx().model.weights, calib, o, [&](Method, int b, LinearKind k, QuantizedWeights&& w) {
      writer.add(b, k, w);
      in_memory.set(b, k, dequantize_as_stored(w));
      codes[{b, k}] = w.codes;
    });
    writer.finish();
    auto imported = open_weights(eo.output_dir);
    const auto* gptq = dynamic_cast<const GptqCheckpoint*>(imported.get());
    QVERIFY(gptq);
    QVERIFY(gptq->settings().zero_format() == (sym ? ZeroFormat::v1 : ZeroFormat::v2));
    for (const auto& [key, c] : codes) {
      QuantizedWeights back = gptq->quantized(key.block, key.kind);
      QVERIFY(back.codes == c);
      QVERIFY(back.Q == in_memory.block(key.block)[key.kind].W);
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
    PerplexitySummary ps;
    ps.text = "x.txt";
    ps.seqlen = 512;
    ps.windows = 3;
    ps.tokens = 2000;
    ps.original = 8.8;
    ps.rtn = 10.2;
    ps.seconds = 1.5;
    rep.perplexity = ps;
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
    // A report made before the environment, the calibration fingerprint and the corpus format
    // were recorded still opens: those read as unknown, everything else as it was.
    nlohmann::json older = to_json(rep);
    older.erase("environment");
    for (const char* key : {"file_bytes", "sha256", "format", "field", "documents", "files", "separator"})
      older["calibration"].erase(key);
    older["settings"].erase("exact_ties");
    const Report old_back = report_from_json(older, f);
    QVERIFY(old_back.calib_sha256.empty());
    QCOMPARE(old_back.calib_file_bytes, uint64_t(0));
    QVERIFY(old_back.environment.cpu_model.empty());
    QCOMPARE(old_back.layers.size(), size_t(35));
    QCOMPARE(old_back.calib_offsets, rep.calib_offsets);
    // Reports made before the damping's rename call it damp_percent (holding the same fraction),
    // in the settings and in every layer's gptq object: read as damp_fraction.
    nlohmann::json percent = to_json(rep);
    auto rename = [](nlohmann::json& obj) {
      obj["damp_percent"] = obj["damp_fraction"];
      obj.erase("damp_fraction");
    };
    rename(percent["settings"]);
    for (auto& l : percent["layers"]) rename(l["gptq"]);
    QVERIFY(percent.dump().find("damp_fraction") == std::string::npos);
    const Report percent_back = report_from_json(percent, f);
    QCOMPARE(percent_back.options.gptq.damp_fraction, rep.options.gptq.damp_fraction);
    QCOMPARE(percent_back.layers.size(), rep.layers.size());
    for (size_t i = 0; i < rep.layers.size(); ++i)
      QCOMPARE(percent_back.layers[i].damp_fraction, rep.layers[i].damp_fraction);
    QCOMPARE(to_json(percent_back).dump(), to_json(rep).dump());
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
