// Data tests of the gptqw command line as a user runs it: the JSON each command promises,
// exit codes (0 ok, 1 bad input, 2 usage), errors naming the file, and the export rules (no
// silent overwrite, nothing half-written).
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>

#include "io/synthetic_model.h"
#include "test_support.h"

using namespace gptqw;
using test::qpath;
using test::run_cli;

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
};

QTEST_GUILESS_MAIN(TestCli)
#include "tst_cli.moc"
