// Hostile and heavy inputs, as files downloaded from the internet or full disks present them:
// each gives a clear error naming the file, in bounded memory and time, and nothing is left
// half-written. (Corrupt safetensors headers, huge claimed sizes and shapes whose element count
// overflows 64 bits are covered byte by byte in tst_safetensors.)
#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTest>
#include <csignal>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/text_file.h"
#include "model/tokenizer.h"
#include "test_support.h"

using namespace gptqw;
using test::qpath;
using test::CliResult;
using test::run_cli;
using test::run_program;

namespace {

QString model_dir() { return qpath(test::stories_dir()); }
QString text(const char* name) { return qpath(test::data(std::string("text/") + name)); }

void write_file(const QString& path, const QByteArray& bytes) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  QCOMPARE(f.write(bytes), qint64(bytes.size()));
}

// A copy of the sample model folder whose file `name` holds `bytes`.
QString model_with(QTemporaryDir& tmp, const QString& sub, const QString& name, const QByteArray& bytes) {
  const QString dir = tmp.filePath(sub);
  QDir().mkpath(dir);
  for (const char* f : {"config.json", "tokenizer.json", "model.safetensors"})
    if (name != f) QFile::copy(model_dir() + "/" + f, dir + "/" + f);
  write_file(dir + "/" + name, bytes);
  return dir;
}

// Everything in `dir` whose name starts with a dot: the exporter's temporary folders.
QStringList hidden_entries(const QString& dir) {
  return QDir(dir).entryList(QDir::Hidden | QDir::AllEntries | QDir::NoDotAndDotDot).filter(QRegularExpression("^\\."));
}

// The quantize command that the export tests run (small: 8 x 128 tokens).
QStringList quantize_args(const QString& out) {
  return {"quantize", "--model", model_dir(), "--calib", text("tinystories-sample.txt"),
          "--nsamples", "8", "--seqlen", "128", "--group-size", "32", "--out", out, "--quiet"};
}

}  // namespace

class TestHostile : public QObject {
  Q_OBJECT
  QTemporaryDir m_tmp;

 private slots:
  void deeplyNestedJson() {
    // A million levels of nesting: refused while parsing (copying, printing or destroying such
    // a value would recurse a million deep).
    const int n = 1000000;
    QString dir = model_with(m_tmp, "nested", "config.json", QByteArray(n, '[') + QByteArray(n, ']'));
    auto r = run_cli({"inspect", "--model", dir});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("config.json") && r.err.contains("nested more than 64 levels"), r.err.constData());
    dir = model_with(m_tmp, "nested2", "tokenizer.json", QByteArray(n, '[') + QByteArray(n, ']'));
    r = run_cli({"tokenize", "--tokenizer", dir, "--text", text("tinystories-sample.txt")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("tokenizer.json") && r.err.contains("nested more than 64 levels"), r.err.constData());
    // Nesting inside an otherwise valid file (a field no loader reads) is refused the same way.
    QFile src(model_dir() + "/config.json");
    QVERIFY(src.open(QIODevice::ReadOnly));
    QByteArray config = src.readAll().trimmed();
    config.chop(1);
    config += ", \"deep\": " + QByteArray(100000, '[') + QByteArray(100000, ']') + "}";
    dir = model_with(m_tmp, "nested3", "config.json", config);
    r = run_cli({"inspect", "--model", dir});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("nested more than 64 levels"), r.err.constData());
  }

  void enormousJson() {
    // A 64 MB config.json (one huge string field next to a valid config): read, checked, and
    // the model is refused or accepted on its merits, without blowing up.
    QFile src(model_dir() + "/config.json");
    QVERIFY(src.open(QIODevice::ReadOnly));
    QByteArray config = src.readAll().trimmed();
    config.chop(1);  // the closing brace
    config += ", \"padding\": \"" + QByteArray(64 << 20, 'x') + "\"}";
    const QString dir = model_with(m_tmp, "enormous", "config.json", config);
    auto r = run_cli({"inspect", "--model", dir, "--json"});
    QCOMPARE(r.exit_code, 0);
  }

  void tokenizerMergesMissingOrCircular() {
    const QByteArray base = R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "": 3}, "merges": [MERGES]}})";
    auto tokenizer_with = [&](const char* name, const QByteArray& merges) {
      const QString dir = m_tmp.filePath(name);
      QDir().mkpath(dir);
      write_file(dir + "/tokenizer.json", QByteArray(base).replace("MERGES", merges));
      return dir;
    };
    // A merge naming a token that is not in the vocabulary: refused, naming the merge.
    auto r = run_cli({"tokenize", "--tokenizer", tokenizer_with("missing", R"("a c")"), "--text", text("tinystories-sample.txt")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("tokenizer.json") && r.err.contains("unknown token 'c'"), r.err.constData());
    // Merges that feed back into themselves (a + "" = a, the same pair twice): they load and
    // encoding terminates.
    std::unique_ptr<Tokenizer> t = load_tokenizer(tokenizer_with("circular", R"("a ", "a b", "a b", ["ab", ""])").toStdString() + "/tokenizer.json");
    QElapsedTimer clock;
    clock.start();
    std::vector<int32_t> ids = t->encode(std::string(100000, 'a') + "b", false);
    QVERIFY(!ids.empty());
    QVERIFY(clock.elapsed() < 10000);
  }

  void gigabyteOfOneCharacterIsRefusedUpFront() {
    const QString big = m_tmp.filePath("one-gigabyte.txt");
    {
      QFile f(big);
      QVERIFY(f.open(QIODevice::WriteOnly));
      const QByteArray chunk(1 << 20, 'a');
      for (int i = 0; i < 1024; ++i) QCOMPARE(f.write(chunk), qint64(chunk.size()));
    }
    QElapsedTimer clock;
    clock.start();
    auto r = run_cli({"eval", "--model", model_dir(), "--text", big, "--seqlen", "512"});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains(big.toUtf8()) && r.err.contains("1024 MiB") && r.err.contains("refused"), r.err.constData());
    QVERIFY(clock.elapsed() < 20000);  // never read, never tokenized
    QFile::remove(big);
  }

  void pathsThatAreNotFiles() {
    // A directory and a FIFO where a text is expected (a FIFO must not block the reader).
    auto r = run_cli({"eval", "--model", model_dir(), "--text", m_tmp.path()});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("is a directory"), r.err.constData());
    const QString fifo = m_tmp.filePath("fifo.txt");
    QCOMPARE(::mkfifo(fifo.toUtf8().constData(), 0600), 0);
    r = run_cli({"eval", "--model", model_dir(), "--text", fifo}, 30000);
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("not a regular file"), r.err.constData());
    // A model folder that is a file, and one that does not exist.
    r = run_cli({"inspect", "--model", text("tinystories-sample.txt")});
    QCOMPARE(r.exit_code, 1);
    r = run_cli({"inspect", "--model", m_tmp.filePath("nowhere")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("nowhere"), r.err.constData());
  }

  void unreadableFile() {
    const QString file = m_tmp.filePath("unreadable.txt");
    write_file(file, "Once upon a time");
    QVERIFY(QFile::setPermissions(file, QFileDevice::Permissions()));
    const QStringList args = {"eval", "--model", model_dir(), "--text", file};
    CliResult r;
    if (::geteuid() == 0) {
      // Permissions do not stop root (CI runs as root): run gptqw as nobody, when nobody can
      // reach the program, the sample model and the scratch folder.
      const QStringList nobody = {"--reuid=65534", "--regid=65534", "--clear-groups", GPTQW_CLI_PATH};
      QVERIFY(QFile::setPermissions(m_tmp.path(), QFileDevice::ReadOwner | QFileDevice::WriteOwner |
                                                      QFileDevice::ExeOwner | QFileDevice::ExeOther));
      if (run_program("setpriv", nobody + QStringList{"inspect", "--model", model_dir()}).exit_code != 0)
        QSKIP("running as root, and nobody (uid 65534) cannot run gptqw on the sample model here");
      r = run_program("setpriv", nobody + args);
    } else {
      r = run_cli(args);
    }
    QCOMPARE(r.exit_code, 1);
    // Not the too-short-text error this file would also give if it could be read.
    QVERIFY2(r.err.contains(file.toUtf8() + ": cannot open for reading"), r.err.constData());
  }

  void exportToReadOnlyFileSystem() {
    // /proc refuses new folders whoever asks, like a read-only mount.
    auto r = run_cli(quantize_args("/proc/gptqw-export"));
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("/proc/gptqw-export: cannot export"), r.err.constData());
    QVERIFY(!QFileInfo::exists("/proc/gptqw-export"));
  }

  void diskFillsDuringExport() {
    // The file size limit (RLIMIT_FSIZE, 150 KiB) stands in for a full disk: the weights file
    // cannot be written to the end. SIGXFSZ is ignored so the write fails with EFBIG instead of
    // killing the process; ignored signals stay ignored across exec.
    const QString parent = m_tmp.filePath("full-disk");
    QDir().mkpath(parent);
    const QString out = parent + "/gptq";
    QStringList args = quantize_args(out);
    QString command = "ulimit -f 150; trap '' XFSZ; exec \"$0\" \"$@\"";
    QProcess p;
    p.start("bash", QStringList{"-c", command, QStringLiteral(GPTQW_CLI_PATH)} + args);
    QVERIFY(p.waitForFinished(300000));
    const QByteArray err = p.readAllStandardError();
    QCOMPARE(p.exitCode(), 1);
    QVERIFY2(err.contains("File too large") || err.contains("No space"), err.constData());
    QVERIFY(!QFileInfo::exists(out));
    QVERIFY2(hidden_entries(parent).isEmpty(), qPrintable(hidden_entries(parent).join(", ")));
  }

  void interruptDuringQuantizeLeavesNothing() {
    const QString parent = m_tmp.filePath("interrupted");
    QDir().mkpath(parent);
    const QString out = parent + "/gptq", report = parent + "/report.json";
    QStringList args = {"compare", "--model", model_dir(), "--calib", text("tinystories-sample.txt"),
                        "--nsamples", "256", "--seqlen", "512", "--group-size", "32",
                        "--eval", text("wikitext-2-raw-test.txt"), "--out", out, "--report", report};
    QProcess p;
    p.start(QStringLiteral(GPTQW_CLI_PATH), args);
    QVERIFY(p.waitForStarted());
    // Interrupt once the export folder exists (the run is under way).
    QElapsedTimer clock;
    clock.start();
    while (hidden_entries(parent).isEmpty() && clock.elapsed() < 60000) QTest::qWait(20);
    QVERIFY(!hidden_entries(parent).isEmpty());
    QTest::qWait(500);
    QCOMPARE(p.state(), QProcess::Running);
    ::kill(static_cast<pid_t>(p.processId()), SIGINT);
    QVERIFY(p.waitForFinished(60000));
    const QByteArray err = p.readAllStandardError();
    QCOMPARE(p.exitCode(), 130);
    QVERIFY2(err.contains("cancelled"), err.constData());
    QVERIFY(!QFileInfo::exists(out));
    QVERIFY(!QFileInfo::exists(report));
    QVERIFY2(hidden_entries(parent).isEmpty(), qPrintable(hidden_entries(parent).join(", ")));
  }
};

QTEST_MAIN(TestHostile)
#include "tst_hostile.moc"
