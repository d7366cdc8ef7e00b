// Data tests of the gptqw command line as a user runs it: the JSON each command promises,
// exit codes (0 ok, 1 bad input, 2 usage), errors naming the file, and the export rules (no
// silent overwrite, nothing half-written).
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTest>

#include "backend/backend.h"
#include "common/error.h"
#include "io/synthetic_model.h"
#include "pipeline/report.h"
#include "io/gptq_checkpoint.h"
#include "test_support.h"

using namespace gptqw;
using test::qpath;
using test::run_cli;

namespace {

QByteArray read_all(const QString& file) {
  QFile f(file);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

void write_all(const QString& file, const QByteArray& bytes) {
  QFile f(file);
  if (f.open(QIODevice::WriteOnly)) f.write(bytes);
}

}  // namespace

namespace {

QString model() { return qpath(test::stories_dir()); }
QString text(const char* name) { return qpath(test::data(std::string("text/") + name)); }

QJsonObject json_of(const test::CliResult& r) {
  QJsonParseError err;
  QJsonDocument d = QJsonDocument::fromJson(r.out, &err);
  if (err.error != QJsonParseError::NoError) qWarning("not JSON: %s\n%s", r.out.constData(), r.err.constData());
  return d.object();
}

}  // namespace

class TestCli : public QObject {
  Q_OBJECT
 private slots:
  void version() {
    auto r = run_cli({"--version"});
    QCOMPARE(r.exit_code, 0);
    QVERIFY(r.out.startsWith("gptqw " GPTQW_VERSION));
  }

  void evalJson() {
    auto r = run_cli({"eval", "--model", model(), "--text", text("tinystories-sample.txt"),
                      "--seqlen", "512", "--max-windows", "4", "--json"});
    QCOMPARE(r.exit_code, 0);
    QJsonObject j = json_of(r);
    for (const char* key : {"ppl", "tokens", "windows", "seqlen", "seconds"}) QVERIFY2(j.contains(key), key);
    QCOMPARE(j["windows"].toInt(), 4);
    QCOMPARE(j["seqlen"].toInt(), 512);
    QCOMPARE(j["tokens"].toInteger(), qint64(134731));
    QVERIFY(j["ppl"].toDouble() > 5 && j["ppl"].toDouble() < 15);
    QVERIFY(r.err.isEmpty());  // --json is quiet
  }

  // eval --against: an RTN export against its original; the original against itself gives
  // exactly zero divergence; an early stop says so; the precision needs an original.
  void evalAgainstOriginal() {
    QTemporaryDir tmp;
    const QString out = tmp.filePath("rtn");
    auto q = run_cli({"quantize", "--model", model(), "--calib", text("tinystories-sample.txt"),
                      "--nsamples", "4", "--seqlen", "128", "--group-size", "32", "--method", "rtn",
                      "--out", out, "--quiet"});
    QCOMPARE(q.exit_code, 0);
    const QStringList common = {"--against", model(), "--text", text("tinystories-sample.txt"),
                                "--seqlen", "256", "--max-windows", "6"};
    auto r = run_cli(QStringList{"eval", "--model", out, "--json"} + common);
    QCOMPARE(r.exit_code, 0);
    QJsonObject j = json_of(r);
    QCOMPARE(j["windows"].toInt(), 6);
    QVERIFY(!j["stopped_early"].toBool());
    const QJsonObject d = j["quantized"].toArray()[0].toObject()["divergence"].toObject();
    QCOMPARE(d["tokens"].toInt(), 6 * 255);
    QVERIFY(d["kld"].toObject()["value"].toDouble() > 0.01 && d["kld"].toObject()["se"].toDouble() > 0);
    const double same = d["top_agreement"].toArray()[0].toObject()["share"].toObject()["value"].toDouble();
    QVERIFY(same > 0.5 && same < 1);
    QVERIFY(d["ln_ppl_ratio"].toObject()["value"].toDouble() > 0);
    const double ppl = j["original"].toObject()["perplexity"].toObject()["ppl"].toDouble();
    auto plain = run_cli({"eval", "--model", model(), "--text", text("tinystories-sample.txt"),
                          "--seqlen", "256", "--max-windows", "6", "--json"});
    QCOMPARE(ppl, json_of(plain)["ppl"].toDouble());  // perplexity()'s number, to the bit
    QVERIFY(json_of(plain)["ppl_se"].toDouble() > 0);

    auto self = run_cli(QStringList{"eval", "--model", model(), "--json"} + common);
    QCOMPARE(self.exit_code, 0);
    const QJsonObject s = json_of(self)["quantized"].toArray()[0].toObject()["divergence"].toObject();
    QCOMPARE(s["kld"].toObject()["value"].toDouble(), 0.0);
    QCOMPARE(s["kld_percentiles"].toObject()["max"].toDouble(), 0.0);

    auto text_out = run_cli(QStringList{"eval", "--model", out, "--eval-precision", "1000"} + common);
    QCOMPARE(text_out.exit_code, 0);
    for (const char* line : {"stopped early after 2 of 6 windows", "Mean    KLD:", "Same top p:",
                             "Mean ln(PPL(Q)/PPL(base))     :", "99.9%   KLD:", "RMS Δp    :"})
      QVERIFY2(text_out.out.contains(line), line);
    QVERIFY(!text_out.out.contains("nan"));

    auto bad = run_cli({"eval", "--model", out, "--text", text("tinystories-sample.txt"), "--eval-precision", "0.01"});
    QCOMPARE(bad.exit_code, 2);
    QVERIFY2(bad.err.contains("--against"), bad.err.constData());
    bad = run_cli(QStringList{"eval", "--model", out, "--precision-of", "ppl"} + common);
    QCOMPARE(bad.exit_code, 2);
    QVERIFY2(bad.err.contains("--precision-of must be ln-ppl-ratio or kld"), bad.err.constData());
  }

  void llama2cModelWorksWhereverAModelIsTaken() {
    QString bin = qpath(test::stories_dir() / "llama2c/stories260K.bin");
    QString tok = qpath(test::stories_dir() / "llama2c/tok512.bin");
    auto a = run_cli({"eval", "--model", bin, "--tokenizer", tok, "--text", text("tinystories-sample.txt"),
                      "--seqlen", "512", "--max-windows", "4", "--json"});
    auto b = run_cli({"eval", "--model", model(), "--text", text("tinystories-sample.txt"),
                      "--seqlen", "512", "--max-windows", "4", "--json"});
    QCOMPARE(a.exit_code, 0);
    QVERIFY(std::abs(json_of(a)["ppl"].toDouble() / json_of(b)["ppl"].toDouble() - 1) < 1e-6);
    auto g = run_cli({"generate", "--model", bin, "--tokenizer", tok, "--tokens", "16"});
    QCOMPARE(g.exit_code, 0);
    QVERIFY2(g.out.startsWith("Once upon a time, there was a little girl named Lily"), g.out.constData());
    // A llama2.c model exports as a complete Hugging Face GPTQ folder (config written from it).
    QTemporaryDir tmp;
    QString out = tmp.filePath("q");
    auto q = run_cli({"quantize", "--model", bin, "--tokenizer", tok, "--calib", text("tinystories-sample.txt"),
                      "--nsamples", "4", "--seqlen", "128", "--group-size", "32", "--out", out, "--quiet"});
    QCOMPARE(q.exit_code, 0);
    auto e = run_cli({"eval", "--model", out, "--tokenizer", tok, "--text", text("tinystories-sample.txt"),
                      "--seqlen", "512", "--max-windows", "4", "--json"});
    QCOMPARE(e.exit_code, 0);
    QVERIFY(json_of(e)["ppl"].toDouble() > json_of(b)["ppl"].toDouble());  // quantized: a bit worse
  }

  void inspectJson() {
    auto r = run_cli({"inspect", "--model", model(), "--json"});
    QCOMPARE(r.exit_code, 0);
    QJsonObject j = json_of(r);
    QCOMPARE(j["parameters"].toInteger(), qint64(260032));
    QCOMPARE(j["num_layers"].toInt(), 5);
    QCOMPARE(j["num_kv_heads"].toInt(), 4);
    QCOMPARE(j["dtype"].toString(), QString("F32"));
    QCOMPARE(j["bytes_on_disk"].toInteger(), qint64(1044984));
    QCOMPARE(j["tensors"].toArray().size(), qsizetype(47));
  }

  void errorsAndExitCodes() {
    auto r = run_cli({"eval", "--model", "/nonexistent/model", "--text", text("c4-sample.txt")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("/nonexistent/model"), r.err.constData());
    r = run_cli({"eval", "--model", model()});
    QCOMPARE(r.exit_code, 2);
    QVERIFY(r.err.contains("--text"));
    r = run_cli({"eval", "--model", model(), "--text", text("c4-sample.txt"), "--bogus"});
    QCOMPARE(r.exit_code, 2);
    QVERIFY(r.err.contains("--bogus"));
    r = run_cli({"quantize", "--model", model(), "--calib", text("tinystories-sample.txt"), "--bits", "5"});
    QCOMPARE(r.exit_code, 2);
    QVERIFY2(r.err.contains("bits"), r.err.constData());
    r = run_cli({"quantize", "--model", model(), "--calib", text("tinystories-sample.txt"),
                 "--nsamples", "100000", "--seqlen", "256", "--group-size", "32"});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("tinystories-sample.txt") && r.err.contains("nsamples"), r.err.constData());
    // Groups of 128 do not divide the sample model's 64 and 172 inputs: no module could be
    // loaded quantized, and the run says so (and how to go on) before it starts.
    r = run_cli({"quantize", "--model", model(), "--calib", text("tinystories-sample.txt"),
                 "--nsamples", "8", "--seqlen", "128"});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("no linear module") && r.err.contains("group_size 128") &&
                 r.err.contains("--pad-unloadable"), r.err.constData());
    r = run_cli({"nosuchcommand"});
    QCOMPARE(r.exit_code, 2);
  }

  // Only the current block is resident: a model 8 times deeper quantizes in the same peak
  // memory (the 32-block model is 45 MB of bf16 on disk; keeping every block would add ~40 MB).
  void peakMemoryDoesNotGrowWithDepth() {
    // AddressSanitizer keeps freed blocks in a quarantine (256 MB) instead of reusing them, so
    // the peak there grows with the number of allocations, not with what the program holds.
    GPTQW_SKIP_WHEN_SANITIZED("peak memory");
    QTemporaryDir tmp;
    qint64 rss[2];
    int i = 0;
    for (int layers : {4, 32}) {
      SyntheticModelOptions o;
      o.preset = "tiny";
      o.layers = layers;
      o.tokenizer_from = test::stories_dir();
      std::filesystem::path dir = std::filesystem::path(tmp.path().toStdString()) / std::to_string(layers);
      write_synthetic_model(dir, o);
      auto r = run_cli({"compare", "--model", qpath(dir), "--calib", text("tinystories-sample.txt"),
                        "--nsamples", "8", "--seqlen", "128", "--json"});
      QCOMPARE(r.exit_code, 0);
      rss[i++] = json_of(r)["peak_rss_bytes"].toInteger();
    }
    qDebug("peak RSS: 4 blocks %.1f MiB, 32 blocks %.1f MiB", rss[0] / 1048576.0, rss[1] / 1048576.0);
    QVERIFY(rss[0] > 0);
    QVERIFY2(rss[1] < rss[0] + 12 * 1048576, "peak memory grew with the number of blocks");
  }

  void compareWritesReportAndCheckpoint() {
    QTemporaryDir tmp;
    QString report = tmp.filePath("r.json"), out = tmp.filePath("ckpt");
    QStringList args = {"compare", "--model", model(), "--calib", text("tinystories-sample.txt"),
                        "--nsamples", "8", "--seqlen", "128", "--bits", "4", "--group-size", "32",
                        "--eval", text("tinystories-sample.txt"), "--eval-seqlen", "512",
                        "--eval-max-windows", "4", "--report", report, "--out", out, "--json", "--quiet"};
    auto r = run_cli(args);
    QCOMPARE(r.exit_code, 0);
    QJsonObject j = json_of(r);
    // The MLP's 172-wide side is not a multiple of 32: gate, up and down stay in fp16 by
    // default (GPTQ loaders could not read them quantized), 4 of 7 modules per block remain.
    QCOMPARE(j["layers"].toArray().size(), qsizetype(20));
    const QJsonArray kept = j["settings"].toObject()["kept_for_loaders"].toArray();
    QCOMPARE(kept.size(), qsizetype(3));
    QCOMPARE(kept[0].toObject()["module"].toString(), QString("mlp.gate_proj"));
    QVERIFY(kept[2].toObject()["reason"].toString().contains("in_features 172"));
    QJsonObject qc = QJsonDocument::fromJson([&] {
                       QFile f(out + "/quantize_config.json");
                       f.open(QIODevice::ReadOnly);
                       return f.readAll();
                     }()).object();
    QCOMPARE(qc["modules_not_quantized"].toArray().size(), qsizetype(3));
    QCOMPARE(qc["format"].toString(), qc["checkpoint_format"].toString());
    QJsonObject p = j["perplexity"].toObject();
    QVERIFY(p["gptq"].toDouble() < p["rtn"].toDouble());
    QVERIFY(QFile::exists(report));
    QVERIFY(QFile::exists(out + "/model.safetensors") && QFile::exists(out + "/quantize_config.json"));
    // The exported checkpoint evaluates to the in-memory GPTQ perplexity.
    auto e = run_cli({"eval", "--model", out, "--text", text("tinystories-sample.txt"), "--seqlen", "512",
                      "--max-windows", "4", "--json"});
    QCOMPARE(e.exit_code, 0);
    QVERIFY(std::abs(json_of(e)["ppl"].toDouble() / p["gptq"].toDouble() - 1) < 1e-4);
    // An existing destination is refused before any work, and left as it was.
    QFileInfo before(out + "/model.safetensors");
    auto again = run_cli(args);
    QCOMPARE(again.exit_code, 1);
    QVERIFY2(again.err.contains("exists"), again.err.constData());
    QCOMPARE(QFileInfo(out + "/model.safetensors").lastModified(), before.lastModified());
    QCOMPARE(QDir(tmp.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot | QDir::Hidden).size(), 2);
  }

  // Report version 2: every evaluation text's comparison with the original and the prompts'
  // generations, written and read back unchanged; a version-1 report still opens; a damaged
  // statistic is refused naming the file and the field.
  // gptqw advise, then quantize --plan: the plan's per-module settings reach the checkpoint's
  // "dynamic" and come back from it exactly; the report records the model and the windows.
  void adviseThenQuantizeWithThePlan() {
    QTemporaryDir tmp;
    const QString report = tmp.path() + "/advice.json", out = tmp.path() + "/planned";
    const QStringList common = {"--model", model(), "--calib", text("tinystories-sample.txt"),
                                "--nsamples", "8", "--seqlen", "64"};
    test::CliResult a = run_cli(QStringList{"advise"} + common +
                          QStringList{"--held-out", "4", "--try-bits", "2,4", "--try-groups", "32",
                                      "--budget", "3.6", "--budget", "4.5", "--report", report, "--quiet"});
    QVERIFY2(a.exit_code == 0, a.err.constData());
    QVERIFY2(a.out.contains("plan 3.60 bpw") && a.out.contains("sensitivity"), a.out.constData());
    const Report advised = load_report(report.toStdString());
    QVERIFY(advised.advice);
    QCOMPARE(advised.nsamples, 8);
    QCOMPARE(advised.model.num_layers, 5);
    const AdvicePoint& plan = advised.advice->plans.at(1);
    QVERIFY(plan.bits_per_weight <= 4.5);

    test::CliResult q = run_cli(QStringList{"quantize"} + common +
                          QStringList{"--plan", report, "--budget", "4.5", "--out", out, "--quiet"});
    QVERIFY2(q.exit_code == 0, q.err.constData());
    const GptqCheckpoint ck(out.toStdString());
    QCOMPARE(ck.settings().quant.bits, plan.global.bits);
    QCOMPARE(ck.settings().quant.group_size, plan.global.group_size);
    for (int b = 0; b < 5; ++b)
      for (LinearKind k : kAllLinears) {
        auto it = plan.per_module.find({b, k});
        const PrecisionChoice want = it == plan.per_module.end() ? plan.global : it->second;
        QCOMPARE(ck.is_quantized(b, k), !want.fp16);
        if (want.fp16) continue;
        const QuantConfig got = ck.settings().quant_of({b, k});
        QCOMPARE(got.bits, want.bits);
        QCOMPARE(got.group_size, want.group_size);
      }

    // The plan sets bits and group sizes: --bits with it is a usage error; a budget it lacks
    // is named.
    test::CliResult both = run_cli(QStringList{"quantize"} + common + QStringList{"--plan", report, "--bits", "3"});
    QCOMPARE(both.exit_code, 2);
    QCOMPARE(run_cli(QStringList{"quantize"} + common + QStringList{"--budget", "4"}).exit_code, 2);
    // The plan's report is an input: a run's report may not replace it.
    test::CliResult over = run_cli(QStringList{"quantize"} + common + QStringList{"--plan", report, "--report", report});
    QCOMPARE(over.exit_code, 1);
    QVERIFY2(over.err.contains("plan"), over.err.constData());
    QVERIFY(load_report(report.toStdString()).advice);
    QCOMPARE(run_cli(QStringList{"compare"} + common + QStringList{"--curve"}).exit_code, 2);
    test::CliResult none = run_cli(QStringList{"quantize"} + common + QStringList{"--plan", report, "--budget", "7"});
    QCOMPARE(none.exit_code, 1);
    QVERIFY2(none.err.contains("advice.json") && none.err.contains("no plan"), none.err.constData());
  }

  void reportVersion2() {
    QTemporaryDir tmp;
    const QString report = tmp.filePath("r.json");
    auto r = run_cli({"compare", "--model", model(), "--calib", text("tinystories-sample.txt"), "--nsamples", "8",
                      "--seqlen", "128", "--group-size", "32", "--eval", text("tinystories-sample.txt"), "--eval",
                      text("code-sample.txt"), "--eval-seqlen", "256", "--eval-max-windows", "6", "--prompt",
                      "Once upon a time", "--gen-tokens", "8", "--report", report, "--json", "--quiet"});
    QVERIFY2(r.exit_code == 0, r.err.constData());
    const QJsonObject j = json_of(r);
    QCOMPARE(j["schema_version"].toInt(), 2);
    const QJsonArray quality = j["quality"].toArray();
    QCOMPARE(quality.size(), qsizetype(2));
    QVERIFY(quality[1].toObject()["text"].toString().endsWith("code-sample.txt"));
    for (const auto& q : quality) {
      const QJsonObject models = q.toObject()["models"].toObject();
      const double rtn = models["rtn"].toObject()["divergence"].toObject()["kld"].toObject()["value"].toDouble();
      const double gptq = models["gptq"].toObject()["divergence"].toObject()["kld"].toObject()["value"].toDouble();
      QVERIFY2(gptq > 0 && rtn > gptq, qPrintable(QString("KLD rtn %1, gptq %2").arg(rtn).arg(gptq)));
      QCOMPARE(q.toObject()["windows"].toInt(), 6);
    }
    // The chart's perplexities are the first text's, with their errors.
    QCOMPARE(j["perplexity"].toObject()["gptq"].toDouble(),
             quality[0].toObject()["models"].toObject()["gptq"].toObject()["ppl"].toObject()["value"].toDouble());
    QVERIFY(j["perplexity"].toObject()["gptq_se"].toDouble() > 0);
    const QJsonArray gen = j["generations"].toArray();
    QCOMPARE(gen.size(), qsizetype(2));  // greedy and sampled
    QCOMPARE(gen[0].toObject()["continuations"].toArray().size(), qsizetype(3));

    const nlohmann::json file = nlohmann::json::parse(read_all(report).toStdString());
    const Report back = load_report(report.toStdString());
    QCOMPARE(int(back.quality.size()), 2);
    QCOMPARE(int(back.generations.size()), 2);
    QCOMPARE(QString::fromStdString(to_json(back).dump()), QString::fromStdString(file.dump()));

    nlohmann::json v1 = file;
    v1["schema_version"] = 1;
    for (const char* key : {"quality", "generations"}) v1.erase(key);
    for (const char* key : {"original_se", "rtn_se", "gptq_se"}) v1["perplexity"].erase(key);
    const QString v1_file = tmp.filePath("v1.json");
    write_all(v1_file, QByteArray::fromStdString(v1.dump()));
    const Report old = load_report(v1_file.toStdString());
    QVERIFY(old.quality.empty() && old.perplexity && !old.perplexity->gptq_se);
    QCOMPARE(*old.perplexity->gptq, *back.perplexity->gptq);

    nlohmann::json bad = file;
    bad["quality"][0]["models"]["gptq"]["divergence"]["kld"]["value"] = "x";
    const QString bad_file = tmp.filePath("bad.json");
    write_all(bad_file, QByteArray::fromStdString(bad.dump()));
    try {
      load_report(bad_file.toStdString());
      QFAIL("a damaged report opened");
    } catch (const FormatError& e) {
      QVERIFY2(QString(e.what()).contains("bad.json") && QString(e.what()).contains("value"), e.what());
    }
  }

  // gptqw calibration-matrix: each corpus's GPTQ on each text, each cell what `compare` with that
  // corpus measures on that text; the report holds the matrix and the window opens it.
  void calibrationMatrix() {
    QTemporaryDir tmp;
    const QString report = tmp.filePath("m.json");
    const QStringList common = {"--model", model(), "--nsamples", "8", "--seqlen", "128", "--group-size", "32",
                                "--eval", text("tinystories-sample.txt"), "--eval", text("code-sample.txt"),
                                "--eval-seqlen", "256", "--eval-max-windows", "4", "--quiet"};
    auto m = run_cli(QStringList{"calibration-matrix", "--calib", text("tinystories-sample.txt"), "--calib",
                                 text("code-sample.txt"), "--report", report} + common);
    QVERIFY2(m.exit_code == 0, m.err.constData());
    QVERIFY(m.out.contains("GPTQ mean KLD") && m.out.contains("RTN (no calibration)"));
    const Report r = load_report(report.toStdString());
    QVERIFY(r.calibration_matrix.has_value());
    const CalibrationMatrix& cm = *r.calibration_matrix;
    QCOMPARE(int(cm.calibs.size()), 2);
    QCOMPARE(int(cm.texts.size()), 2);
    auto c = run_cli(QStringList{"compare", "--calib", text("code-sample.txt"), "--json"} + common);
    QVERIFY2(c.exit_code == 0, c.err.constData());
    const QJsonArray quality = json_of(c)["quality"].toArray();
    for (int t = 0; t < 2; ++t) {
      const QJsonObject gptq = quality[t].toObject()["models"].toObject()["gptq"].toObject();
      QCOMPARE(cm.cells[1][size_t(t)].find("gptq")->ppl.value, gptq["ppl"].toObject()["value"].toDouble());
      QCOMPARE(cm.values("gptq", "kld")[1][size_t(t)],
               gptq["divergence"].toObject()["kld"].toObject()["value"].toDouble());
    }
    // RTN uses no calibration: the same in both rows.
    QCOMPARE(cm.values("rtn", "kld")[0], cm.values("rtn", "kld")[1]);
    auto refused = run_cli(QStringList{"calibration-matrix", "--calib", text("code-sample.txt"), "--out",
                                       tmp.filePath("x")} + common);
    QCOMPARE(refused.exit_code, 2);
    QVERIFY(refused.err.contains("--out"));
    auto twice = run_cli(QStringList{"compare", "--calib", text("code-sample.txt"), "--calib",
                                     text("tinystories-sample.txt")} + common);
    QCOMPARE(twice.exit_code, 2);
    QVERIFY(twice.err.contains("calibration-matrix"));
  }

  // --device: cpu runs on the CPU backend and the report says so; cuda where no CUDA backend
  // answers is refused before anything runs, with the reason; any other word is a usage error.
  void deviceChoice() {
    const QStringList run = {"quantize", "--model", model(), "--calib", text("tinystories-sample.txt"),
                             "--nsamples", "4", "--seqlen", "128", "--group-size", "32",
                             "--json", "--quiet", "--device"};
    auto r = run_cli(run + QStringList{"cpu"});
    QCOMPARE(r.exit_code, 0);
    QJsonObject j = json_of(r);
    QCOMPARE(j["backend"].toString(), QString("cpu"));
    QCOMPARE(j["settings"].toObject()["device"].toString(), QString("cpu"));
    r = run_cli(run + QStringList{"tpu"});
    QCOMPARE(r.exit_code, 2);
    QVERIFY2(r.err.contains("--device") && r.err.contains("auto, cpu or cuda"), r.err.constData());
    r = run_cli(run + QStringList{"cuda"});
    if (cuda_backend_or_null(nullptr) == nullptr) {
      QCOMPARE(r.exit_code, 1);
      QVERIFY2(r.err.contains(QByteArray::fromStdString(cuda_status())), r.err.constData());
      QVERIFY(r.out.isEmpty());
    } else {
      QCOMPARE(r.exit_code, 0);
      QVERIFY(json_of(r)["backend"].toString().startsWith("cuda"));
    }
  }

  void padUnloadableQuantizesEveryModule() {
    auto r = run_cli({"quantize", "--model", model(), "--calib", text("tinystories-sample.txt"),
                      "--nsamples", "8", "--seqlen", "128", "--group-size", "32",
                      "--pad-unloadable", "--json"});
    QCOMPARE(r.exit_code, 0);
    QJsonObject j = json_of(r);
    QCOMPARE(j["layers"].toArray().size(), qsizetype(35));
    QVERIFY(j["settings"].toObject()["pad_unloadable"].toBool());
    QCOMPARE(j["settings"].toObject()["kept_for_loaders"].toArray().size(), qsizetype(0));
  }

  // Same inputs, same bits: a run repeated, on 1, 2 and all threads, and on every kernel level
  // this CPU runs (what other CPUs would run), exports byte-identical weights; the reports agree
  // in everything but the clock, the memory high-water mark and the thread count.
  void sameInputsSameBits() {
    QTemporaryDir tmp;
    auto run = [&](const QString& tag, const QStringList& extra, const QString& kernels = {}) {
      QStringList args = {"compare", "--model", model(), "--calib", text("tinystories-sample.txt"),
                          "--nsamples", "8", "--seqlen", "128", "--bits", "4", "--group-size", "32",
                          "--act-order", "--eval", text("tinystories-sample.txt"), "--eval-seqlen",
                          "256", "--eval-max-windows", "4", "--report", tmp.filePath(tag + ".json"),
                          "--out", tmp.filePath(tag), "--quiet"};
      QProcess p;
      QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
      if (!kernels.isEmpty()) env.insert("GPTQW_KERNELS", kernels);
      p.setProcessEnvironment(env);
      p.start(QStringLiteral(GPTQW_CLI_PATH), args + extra);
      if (!p.waitForFinished(300000) || p.exitCode() != 0)
        qWarning("%s: %s", qPrintable(tag), p.readAllStandardError().constData());
      return p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
    };
    auto weights = [&](const QString& tag) {
      QFile f(tmp.filePath(tag + "/model.safetensors"));
      return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
    };
    // The report without what legitimately changes between two runs.
    auto report = [&](const QString& tag) {
      QFile f(tmp.filePath(tag + ".json"));
      if (!f.open(QIODevice::ReadOnly)) return QJsonObject();
      QJsonObject j = QJsonDocument::fromJson(f.readAll()).object();
      for (const char* key : {"created", "timing", "peak_rss_bytes", "threads", "environment"}) j.remove(key);
      QJsonObject p = j["perplexity"].toObject();
      p.remove("seconds");
      j["perplexity"] = p;
      QJsonArray quality;
      for (const auto& v : j["quality"].toArray()) {
        QJsonObject q = v.toObject();
        q.remove("seconds");
        quality.append(q);
      }
      j["quality"] = quality;
      QJsonArray layers;
      for (const auto& v : j["layers"].toArray()) {
        QJsonObject l = v.toObject();
        for (const char* m : {"gptq", "rtn"}) {
          QJsonObject o = l[m].toObject();
          o.remove("seconds");
          l[m] = o;
        }
        layers.append(l);
      }
      j["layers"] = layers;
      return j;
    };
    QVERIFY(run("a", {"--threads", "2"}));
    QVERIFY(run("b", {"--threads", "2"}));
    QVERIFY(run("t1", {"--threads", "1"}));
    QVERIFY(run("tall", {}));
    const QByteArray w = weights("a");
    QVERIFY(w.size() > 100000);
    for (const char* tag : {"b", "t1", "tall"}) QVERIFY2(weights(tag) == w, tag);
    QCOMPARE(report("b"), report("a"));
    QCOMPARE(report("t1"), report("a"));
    for (const char* level : {"generic", "avx2", "avx512"}) {
      const bool runs = run(QString("k-") + level, {}, level);
      if (!runs) {
        // A level this CPU lacks is refused, naming the variable; any other failure is a bug.
        QVERIFY(QString(level) != "generic");
        continue;
      }
      QVERIFY2(weights(QString("k-") + level) == w, level);
      QCOMPARE(report(QString("k-") + level), report("a"));
      // The level asked for is the one that ran.
      QFile f(tmp.filePath(QString("k-") + level + ".json"));
      QVERIFY(f.open(QIODevice::ReadOnly));
      QCOMPARE(QJsonDocument::fromJson(f.readAll())["environment"]["kernels"].toString(), QString(level));
    }
  }

  // --calib-from reruns on exactly the windows of an earlier report, and refuses another text.
  void rerunOnAReportsWindows() {
    QTemporaryDir tmp;
    const QString calib = text("tinystories-sample.txt");
    QStringList common = {"compare", "--model", model(), "--bits", "4", "--group-size", "32", "--quiet"};
    auto first = run_cli(common + QStringList{"--calib", calib, "--nsamples", "6", "--seqlen", "100",
                                              "--seed", "11", "--report", tmp.filePath("r1.json"),
                                              "--out", tmp.filePath("e1")});
    QCOMPARE(first.exit_code, 0);
    auto again = run_cli(common + QStringList{"--calib-from", tmp.filePath("r1.json"), "--report",
                                              tmp.filePath("r2.json"), "--out", tmp.filePath("e2")});
    QCOMPARE(again.exit_code, 0);
    auto read = [&](const QString& f) {
      QFile file(tmp.filePath(f));
      return file.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(file.readAll()).object() : QJsonObject();
    };
    const QJsonObject c1 = read("r1.json")["calibration"].toObject(), c2 = read("r2.json")["calibration"].toObject();
    QCOMPARE(c1["offsets"].toArray().size(), qsizetype(6));
    QCOMPARE(c2["offsets"], c1["offsets"]);
    QCOMPARE(c2["seqlen"].toInt(), 100);
    QCOMPARE(c2["seed"].toInt(), 11);
    QCOMPARE(c1["sha256"].toString().size(), qsizetype(64));
    QCOMPARE(c2["sha256"], c1["sha256"]);
    QCOMPARE(c1["file_bytes"].toInteger(), QFileInfo(calib).size());
    QFile e1(tmp.filePath("e1/model.safetensors")), e2(tmp.filePath("e2/model.safetensors"));
    QVERIFY(e1.open(QIODevice::ReadOnly) && e2.open(QIODevice::ReadOnly));
    QVERIFY(e1.readAll() == e2.readAll());
    // Where the report was made.
    const QJsonObject env = read("r1.json")["environment"].toObject();
    for (const char* key : {"cpu_features", "build_target", "kernels", "compiler", "build_flags"})
      QVERIFY2(!env[key].toString().isEmpty(), key);
    QCOMPARE(env["version"].toString(), QString(GPTQW_VERSION));

    // A copy of the text with one byte changed is another text: refused, naming both files.
    QFile src(calib);
    QVERIFY(src.open(QIODevice::ReadOnly));
    QByteArray changed = src.readAll();
    changed[1000] = changed[1000] == 'a' ? 'b' : 'a';
    QFile copy(tmp.filePath("changed.txt"));
    QVERIFY(copy.open(QIODevice::WriteOnly) && copy.write(changed) == changed.size());
    copy.close();
    auto refused = run_cli(common + QStringList{"--calib-from", tmp.filePath("r1.json"), "--calib",
                                                tmp.filePath("changed.txt")});
    QCOMPARE(refused.exit_code, 1);
    QVERIFY2(refused.err.contains("changed.txt") && refused.err.contains("tinystories-sample.txt") &&
                 refused.err.contains("SHA-256"),
             refused.err.constData());
    // The windows come from the report: its own window options are a usage error.
    auto usage = run_cli(common + QStringList{"--calib-from", tmp.filePath("r1.json"), "--seqlen", "64"});
    QCOMPARE(usage.exit_code, 2);
  }
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
