// Hostile and heavy inputs, as files downloaded from the internet, full disks, odd paths and
// impatient users present them: each gives a clear error naming the file, in bounded memory and
// time, nothing is left half-written, and nothing outside the named outputs is touched. (Corrupt
// safetensors headers, huge claimed sizes and shapes whose element count overflows 64 bits are
// covered byte by byte in tst_safetensors.) Every hostile input is built here at run time: links,
// FIFOs, /dev/zero, big generated JSON. The cases follow the classes of issue 13: writes that
// follow links or land on the source (1), --force (2), readers trusting a file's type and size
// (3), superlinear JSON parsing (4), signals while loading (5), small files costing huge memory
// (6), paths leaving the model folder (7), superlinear added-token matching (8), nonsense
// reported as a result (9).
#include <QCryptographicHash>
#include <QDir>
#include <QDirIterator>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonArray>
#include <QProcess>
#include <QTest>
#include <csignal>
#include <cstring>
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

QByteArray read_file(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return f.readAll();
}

// The files of the sample model folder that a copy holds.
const char* const kModelFiles[] = {"config.json", "tokenizer.json", "model.safetensors",
                                   "tokenizer_config.json", "LICENSE", "generation_config.json"};

// A copy of the sample model folder whose file `name` holds `bytes`.
QString model_with(QTemporaryDir& tmp, const QString& sub, const QString& name, const QByteArray& bytes) {
  const QString dir = tmp.filePath(sub);
  QDir().mkpath(dir);
  for (const char* f : {"config.json", "tokenizer.json", "model.safetensors"})
    if (name != f) QFile::copy(model_dir() + "/" + f, dir + "/" + f);
  write_file(dir + "/" + name, bytes);
  return dir;
}

// A full copy of the sample model folder.
QString model_copy(QTemporaryDir& tmp, const QString& sub) {
  const QString dir = tmp.filePath(sub);
  QDir().mkpath(dir);
  for (const char* f : kModelFiles) QFile::copy(model_dir() + "/" + f, dir + "/" + f);
  return dir;
}

// Every entry under `dir` (names, link targets, file contents): what "nothing was written,
// replaced or deleted" is checked against.
QByteArray tree_hash(const QString& dir) {
  QCryptographicHash h(QCryptographicHash::Sha256);
  QStringList entries;
  QDirIterator it(dir, QDir::AllEntries | QDir::Hidden | QDir::System | QDir::NoDotAndDotDot,
                  QDirIterator::Subdirectories);
  while (it.hasNext()) entries << it.next();
  entries.sort();
  for (const QString& e : entries) {
    const QFileInfo info(e);
    h.addData(e.toUtf8());
    if (info.isSymLink()) h.addData("->" + info.symLinkTarget().toUtf8());
    else if (info.isFile()) h.addData(read_file(e));
  }
  return h.result().toHex();
}

// Everything in `dir` whose name starts with a dot: the temporaries of outputs.
QStringList hidden_entries(const QString& dir) {
  return QDir(dir).entryList(QDir::Hidden | QDir::AllEntries | QDir::NoDotAndDotDot).filter(QRegularExpression("^\\."));
}

// The quantize command that the export tests run (small: 8 x 128 tokens).
QStringList quantize_args(const QString& out, const QString& model = model_dir()) {
  return {"quantize", "--model", model, "--calib", text("tinystories-sample.txt"),
          "--nsamples", "8", "--seqlen", "128", "--group-size", "32", "--out", out, "--quiet"};
}

// Overwrites elements [element, element + count) of a tensor of a safetensors file with
// `value` (its bytes in the tensor's dtype).
void patch_tensor(const QString& file, const QString& tensor, qint64 element, qint64 count,
                  const QByteArray& value) {
  QByteArray bytes = read_file(file);
  QVERIFY(bytes.size() > 8);
  quint64 n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | quint8(bytes[i]);
  const QJsonObject header = QJsonDocument::fromJson(bytes.mid(8, qsizetype(n))).object();
  QVERIFY2(header.contains(tensor), qPrintable(tensor));
  const qint64 begin = header[tensor].toObject()["data_offsets"].toArray()[0].toInteger();
  for (qint64 k = 0; k < count; ++k)
    bytes.replace(qsizetype(8 + n + begin + (element + k) * value.size()), value.size(), value);
  write_file(file, bytes);
}

QByteArray f32(float v) { return QByteArray(reinterpret_cast<const char*>(&v), 4); }

// The sample tokenizer.json with `extra` added-token entries appended to its added_tokens.
QByteArray tokenizer_with_added(const QByteArray& extra) {
  QByteArray t = read_file(model_dir() + "/tokenizer.json");
  const qsizetype at = t.indexOf("\"added_tokens\": [");
  if (at < 0) return {};
  const qsizetype close = t.indexOf(']', at);
  t.insert(close, extra);
  return t;
}

QByteArray added_entry(qint64 id, const QByteArray& content) {
  return ",{\"id\":" + QByteArray::number(id) + ",\"content\":\"" + content +
         "\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
         "\"special\":true}";
}

struct Interrupted {
  int exit_code = -1;
  qint64 ms_to_exit = -1;  // from the signal to the end of the process
  QByteArray out, err;
};

// Starts gptqw, sends `sig` after `after_ms`, and measures how long it takes to end.
Interrupted interrupt_after(const QStringList& args, int after_ms, int sig) {
  QProcess p;
  p.start(QStringLiteral(GPTQW_CLI_PATH), args);
  Interrupted r;
  if (!p.waitForStarted()) return r;
  QTest::qWait(after_ms);
  if (p.state() != QProcess::Running) {
    p.waitForFinished();
    r.err = "ended before the signal: " + p.readAllStandardError();
    return r;
  }
  QElapsedTimer clock;
  clock.start();
  ::kill(static_cast<pid_t>(p.processId()), sig);
  if (!p.waitForFinished(120000)) {
    p.kill();
    p.waitForFinished();
  }
  r.ms_to_exit = clock.elapsed();
  r.exit_code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  r.out = p.readAllStandardOutput();
  r.err = p.readAllStandardError();
  return r;
}

// "Within a second" (the sanitizer build runs the same polls about 3x slower).
constexpr qint64 kCancelMs = test::sanitized ? 3000 : 1000;

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
    // A 64 MB config.json (one huge string field next to a valid config) is over the 16 MiB
    // limit of configuration files: refused by its size, before it is read.
    QFile src(model_dir() + "/config.json");
    QVERIFY(src.open(QIODevice::ReadOnly));
    QByteArray config = src.readAll().trimmed();
    config.chop(1);  // the closing brace
    const QByteArray head = config;
    config += ", \"padding\": \"" + QByteArray(64 << 20, 'x') + "\"}";
    QString dir = model_with(m_tmp, "enormous", "config.json", config);
    auto r = run_cli({"inspect", "--model", dir, "--json"});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("config.json: is 64.0 MiB; configuration files over 16 MiB are refused"), r.err.constData());
    // 8 MB, under the limit: read, checked, accepted on its merits.
    dir = model_with(m_tmp, "large", "config.json", head + ", \"padding\": \"" + QByteArray(8 << 20, 'x') + "\"}");
    r = run_cli({"inspect", "--model", dir, "--json"});
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
    // A sparse 1 GiB file: its size is all the reader may look at.
    const QString big = m_tmp.filePath("one-gigabyte.txt");
    {
      QFile f(big);
      QVERIFY(f.open(QIODevice::WriteOnly));
      QVERIFY(f.resize(qint64(1) << 30));
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
    QVERIFY2(r.err.contains("/proc/gptqw-export: cannot"), r.err.constData());
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

  // --- 1. Writes that follow links or land on the source ---------------------------------------

  void reportNeverWrittenThroughAPlantedLink() {
    // Links planted where a fixed temporary name would go (FILE.tmp and friends), pointing at
    // a decoy: the report goes through a uniquely named temporary created exclusively, so the
    // decoy is never written, and the links are left alone.
    const QString dir = m_tmp.filePath("planted");
    QDir().mkpath(dir);
    const QString decoy = m_tmp.filePath("planted-decoy.txt"), report = dir + "/report.json";
    write_file(decoy, "precious");
    for (const char* suffix : {".tmp", ".tmp~", "~", ".part", ".new"})
      QVERIFY(QFile::link(decoy, report + suffix));
    auto r = run_cli({"quantize", "--model", model_dir(), "--calib", text("tinystories-sample.txt"),
                      "--nsamples", "4", "--seqlen", "64", "--group-size", "32", "--report", report,
                      "--quiet"});
    QCOMPARE(r.exit_code, 0);
    QCOMPARE(read_file(decoy), QByteArray("precious"));
    QVERIFY(QJsonDocument::fromJson(read_file(report)).object().contains("layers"));
    QVERIFY(!QFileInfo(report).isSymLink());
    // The destination itself a link: refused, not followed.
    const QString linked = dir + "/linked.json";
    QVERIFY(QFile::link(decoy, linked));
    r = run_cli({"quantize", "--model", model_dir(), "--calib", text("tinystories-sample.txt"),
                 "--nsamples", "4", "--seqlen", "64", "--report", linked, "--quiet"});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains(linked.toUtf8() + ": is a symbolic link"), r.err.constData());
    QCOMPARE(read_file(decoy), QByteArray("precious"));
    QStringList temporaries = QDir(dir).entryList(QDir::Hidden | QDir::Files).filter("gptqw-tmp");
    QVERIFY2(temporaries.isEmpty(), qPrintable(temporaries.join(", ")));
  }

  void reportOntoTheSourceIsRefusedBeforeTheRun() {
    // --report naming a file of the model, the calibration text, a folder, or a file in a
    // missing folder: refused in moments, before the (long) run, with nothing created or
    // changed: no export folder, no temporary, the model folder byte for byte as it was.
    const QString model = model_copy(m_tmp, "report-source");
    const QString parent = m_tmp.filePath("report-source-out");
    QDir().mkpath(parent);
    const QString calib = m_tmp.filePath("report-source-calib.txt");
    QVERIFY(QFile::copy(text("tinystories-sample.txt"), calib));
    const QByteArray model_before = tree_hash(model), calib_before = read_file(calib);
    const struct {
      QString report;
      const char* says;
    } cases[] = {
        {model + "/config.json", "is inside the source model"},
        {model + "/model.safetensors", "is inside the source model"},
        {calib, "is the calibration text"},
        {parent, "is a directory"},
        {parent + "/missing/report.json", "does not exist"},
    };
    for (const auto& c : cases) {
      QElapsedTimer clock;
      clock.start();
      // A run of a minute or more if it started: 256 windows of 512 tokens and an evaluation.
      auto r = run_cli({"compare", "--model", model, "--calib", calib, "--nsamples", "256",
                        "--seqlen", "512", "--eval", text("wikitext-2-raw-test.txt"), "--out",
                        parent + "/gptq", "--report", c.report, "--quiet"});
      QCOMPARE(r.exit_code, 1);
      QVERIFY2(r.err.contains(c.report.toUtf8()) && r.err.contains(c.says), r.err.constData());
      QVERIFY2(clock.elapsed() < 10000, qPrintable(QString::number(clock.elapsed())));
      QVERIFY(!QFileInfo::exists(parent + "/gptq"));
      QVERIFY2(hidden_entries(parent).isEmpty(), qPrintable(hidden_entries(parent).join(", ")));
    }
    QCOMPARE(tree_hash(model), model_before);
    QCOMPARE(read_file(calib), calib_before);
  }

  // --- 2. --force -------------------------------------------------------------------------------

  void forceReplacesOnlyItsOwnExports() {
    const QString parent = m_tmp.filePath("force");
    QDir().mkpath(parent);
    // A folder of someone's documents: refused, saying why, untouched.
    const QString docs = parent + "/documents";
    QDir().mkpath(docs + "/sub");
    write_file(docs + "/notes.txt", "mine");
    write_file(docs + "/sub/thesis.tex", "mine too");
    const QByteArray docs_before = tree_hash(docs);
    auto r = run_cli(quantize_args(docs) << "--force");
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains(docs.toUtf8() + ": is not replaced") &&
                 r.err.contains("quantize_config.json"), r.err.constData());
    QCOMPARE(tree_hash(docs), docs_before);
    // A link to that folder: refused, not followed, the target untouched.
    const QString link = parent + "/link";
    QVERIFY(QFile::link(docs, link));
    r = run_cli(quantize_args(link) << "--force");
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains(link.toUtf8() + ": is a symbolic link"), r.err.constData());
    QCOMPARE(tree_hash(docs), docs_before);
    QVERIFY(QFileInfo(link).isSymLink());
    // An empty folder, and then our own export, are replaced.
    const QString out = parent + "/gptq";
    QDir().mkpath(out);
    QCOMPARE(run_cli(quantize_args(out) << "--force").exit_code, 0);
    QVERIFY(QFileInfo::exists(out + "/model.safetensors"));
    r = run_cli(quantize_args(out) << "--force");
    QCOMPARE(r.exit_code, 0);
    // ... but not once something of the user's is in it.
    write_file(out + "/README.md", "my notes on this export");
    const QByteArray out_before = tree_hash(out);
    r = run_cli(quantize_args(out) << "--force");
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("'README.md'"), r.err.constData());
    QCOMPARE(tree_hash(out), out_before);
    QVERIFY2(hidden_entries(parent).isEmpty(), qPrintable(hidden_entries(parent).join(", ")));
  }

  void forceCannotDeleteWeightsAShardIndexPointsAt() {
    // W is an earlier export of ours (so --force may replace it), and it also holds the weights
    // a model's index points at through ../W/: --out W --force used to delete them while they
    // were being read. The model is refused when it is opened (its shard leaves its folder),
    // before anything could replace W.
    const QString parent = m_tmp.filePath("force-shard");
    const QString model = parent + "/model", weights = parent + "/W";
    QDir().mkpath(model);
    QCOMPARE(run_cli(quantize_args(weights)).exit_code, 0);
    const QString shard = "model-00001-of-00001.safetensors";  // a name an export writes
    QVERIFY(QFile::copy(model_dir() + "/model.safetensors", weights + "/" + shard));
    for (const char* f : {"config.json", "tokenizer.json"}) QVERIFY(QFile::copy(model_dir() + "/" + f, model + "/" + f));
    QJsonObject map;
    const QByteArray st = read_file(weights + "/" + shard);
    quint64 n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | quint8(st[i]);
    for (const QString& name : QJsonDocument::fromJson(st.mid(8, qsizetype(n))).object().keys())
      if (name != "__metadata__") map[name] = "../W/" + shard;
    write_file(model + "/model.safetensors.index.json",
               QJsonDocument(QJsonObject{{"weight_map", map}}).toJson());
    const QByteArray before = tree_hash(weights);
    auto r = run_cli(quantize_args(weights, model) << "--force");
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("'../W/" + shard.toUtf8() + "'") && r.err.contains("outside the model folder"),
             r.err.constData());
    QCOMPARE(tree_hash(weights), before);
    QVERIFY2(hidden_entries(parent).isEmpty(), qPrintable(hidden_entries(parent).join(", ")));
  }

  // --- 3. Readers that trust the file's type and size -------------------------------------------

  void fifosDevicesAndOversizedFilesAreErrors() {
    // A FIFO as config.json, tokenizer.json or quantize_config.json (the GPTQ probe used to
    // block on it), /dev/zero behind a link given as the tokenizer or the text, a sparse
    // 300 MiB tokenizer.json: each an error naming the file, at once.
    struct Case {
      QString file;
      QStringList args;
      QByteArray says;
    };
    std::vector<Case> cases;
    for (const char* name : {"config.json", "tokenizer.json", "quantize_config.json"}) {
      const QString dir = model_copy(m_tmp, QString("fifo-") + name);
      QFile::remove(dir + "/" + name);
      QCOMPARE(::mkfifo((dir + "/" + name).toUtf8().constData(), 0600), 0);
      cases.push_back({dir + "/" + name, {"eval", "--model", dir, "--text", text("tinystories-sample.txt")}, "is a FIFO"});
    }
    const QString zero_json = m_tmp.filePath("zero-tokenizer.json"), zero_txt = m_tmp.filePath("zero.txt");
    QVERIFY(QFile::link("/dev/zero", zero_json));
    QVERIFY(QFile::link("/dev/zero", zero_txt));
    cases.push_back({zero_json, {"tokenize", "--tokenizer", zero_json, "--text", text("tinystories-sample.txt")}, "is a character device"});
    cases.push_back({zero_txt, {"eval", "--model", model_dir(), "--text", zero_txt}, "is a character device"});
    const QString sparse = m_tmp.filePath("sparse-tokenizer.json");
    {
      QFile f(sparse);
      QVERIFY(f.open(QIODevice::WriteOnly));
      QVERIFY(f.resize(qint64(300) << 20));
    }
    cases.push_back({sparse, {"tokenize", "--tokenizer", sparse, "--text", text("tinystories-sample.txt")}, "is 300 MiB; tokenizer.json files over 256 MiB are refused"});
    for (const Case& c : cases) {
      QElapsedTimer clock;
      clock.start();
      auto r = run_cli(c.args, 30000);
      QCOMPARE(r.exit_code, 1);
      QVERIFY2(r.err.contains(c.file.toUtf8() + ": " + c.says), r.err.constData());
      QVERIFY2(!r.err.contains("bad_alloc"), r.err.constData());
      QVERIFY2(clock.elapsed() < 10000, qPrintable(QString::number(clock.elapsed())));
    }
  }

  // --- 4. Superlinear JSON parsing --------------------------------------------------------------

  void tenMegabytesOfEmptyObjectsParseInLinearTime() {
    // [{},{},...]: the depth-limit parse callback made nlohmann re-scan (480 KB took 42 s,
    // 3 MB hours). 10 MB of it as config.json, tokenizer.json and a safetensors header's
    // metadata: read, parsed and refused (not the object expected) in moments.
    QByteArray arr;
    const int n = (10 << 20) / 3;
    arr.reserve(n * 3 + 2);
    arr += '[';
    for (int i = 0; i < n; ++i) arr += i ? ",{}" : "{}";
    arr += ']';
    QByteArray header = "{\"__metadata__\":" + arr + "}";
    QByteArray st(8, '\0');
    for (int i = 0; i < 8; ++i) st[i] = char((quint64(header.size()) >> (8 * i)) & 0xff);
    st += header;
    const QString cfg = model_with(m_tmp, "quadratic-config", "config.json", arr);
    const QString tok = model_with(m_tmp, "quadratic-tokenizer", "tokenizer.json", arr);
    const QString wts = model_with(m_tmp, "quadratic-header", "model.safetensors", st);
    const struct {
      QStringList args;
      const char* says;
    } cases[] = {
        {{"inspect", "--model", cfg}, "config.json: expected a JSON object"},
        {{"tokenize", "--tokenizer", tok, "--text", text("tinystories-sample.txt")}, "tokenizer.json: not a tokenizer.json"},
        {{"inspect", "--model", wts}, "model.safetensors: __metadata__ is array"},
    };
    for (const auto& c : cases) {
      QElapsedTimer clock;
      clock.start();
      auto r = run_cli(c.args, 120000);
      QCOMPARE(r.exit_code, 1);
      QVERIFY2(r.err.contains(c.says), r.err.constData());
      QVERIFY2(clock.elapsed() < 20000, qPrintable(QString::number(clock.elapsed())));
    }
  }

  // --- 5. Signals while loading and tokenizing --------------------------------------------------

  void interruptWhileLoadingTheTokenizer() {
    // A tokenizer.json with 300,000 added tokens takes seconds to load; Ctrl+C (SIGINT) in the
    // middle ends the process within a second, with code 130 and no output.
    QByteArray extra;
    for (int i = 0; i < 300000; ++i) extra += added_entry(512 + i, "<extra_" + QByteArray::number(i) + ">");
    const QString tok = m_tmp.filePath("slow-tokenizer.json");
    write_file(tok, tokenizer_with_added(extra));
    auto r = interrupt_after({"tokenize", "--tokenizer", tok, "--text", text("tinystories-sample.txt")}, 300, SIGINT);
    QCOMPARE(r.exit_code, 130);
    QVERIFY2(r.err.contains("cancelled"), r.err.constData());
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.ms_to_exit < kCancelMs, qPrintable(QString::number(r.ms_to_exit)));
    qInfo("SIGINT while loading: ended %lld ms later", r.ms_to_exit);
  }

  void interruptWhileTokenizing() {
    // 32 MB of text take the sample tokenizer many seconds: SIGTERM while tokenizing, for
    // `tokenize` and for a quantize run with --out and --report (calibration text), ends within
    // a second with code 130, leaving no export, no report and no temporary behind.
    const QString big = m_tmp.filePath("big-calib.txt");
    {
      const QByteArray sample = read_file(text("tinystories-sample.txt"));
      QFile f(big);
      QVERIFY(f.open(QIODevice::WriteOnly));
      while (f.size() < (32 << 20)) QCOMPARE(f.write(sample), qint64(sample.size()));
    }
    auto r = interrupt_after({"tokenize", "--tokenizer", model_dir(), "--text", big}, 1000, SIGTERM);
    QCOMPARE(r.exit_code, 130);
    QVERIFY(r.out.isEmpty());
    QVERIFY2(r.ms_to_exit < kCancelMs, qPrintable(QString::number(r.ms_to_exit)));
    qInfo("SIGTERM while tokenizing: ended %lld ms later", r.ms_to_exit);

    const QString parent = m_tmp.filePath("interrupted-tokenizing");
    QDir().mkpath(parent);
    const QString out = parent + "/gptq", report = parent + "/report.json";
    r = interrupt_after({"quantize", "--model", model_dir(), "--calib", big, "--nsamples", "8",
                         "--seqlen", "128", "--group-size", "32", "--out", out, "--report", report,
                         "--quiet"},
                        1000, SIGTERM);
    QCOMPARE(r.exit_code, 130);
    QVERIFY2(r.ms_to_exit < kCancelMs, qPrintable(QString::number(r.ms_to_exit)));
    QVERIFY(!QFileInfo::exists(out));
    QVERIFY(!QFileInfo::exists(report));
    QVERIFY2(hidden_entries(parent).isEmpty(), qPrintable(hidden_entries(parent).join(", ")));
    QFile::remove(big);
  }

  // --- 6. Small files that cost huge memory -----------------------------------------------------

  void manyAliasesOfOneShard() {
    // 20,000 spellings of one shard file ("./model.safetensors", ".//model.safetensors", ...):
    // each file is mapped once, and more than a few names for one file are refused outright.
    const QString dir = model_copy(m_tmp, "aliases");
    const QByteArray st = read_file(dir + "/model.safetensors");
    quint64 n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | quint8(st[i]);
    const QStringList tensors = QJsonDocument::fromJson(st.mid(8, qsizetype(n))).object().keys();
    QByteArray index = "{\"weight_map\": {";
    for (int i = 0; i < 20000; ++i) {
      // "./" (a + 1) times, "/" b times: 20,000 different names the kernel resolves to one file.
      QByteArray spelling = QByteArray("./").repeated(i % 141 + 1) + QByteArray(i / 141, '/') + "model.safetensors";
      index += (i ? ",\"" : "\"") + tensors[i % tensors.size()].toUtf8() + "#" + QByteArray::number(i) + "\": \"" + spelling + "\"";
    }
    index += "}}";
    write_file(dir + "/model.safetensors.index.json", index);
    auto r = run_cli({"inspect", "--model", dir});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("model.safetensors.index.json: names the shard file") &&
                 r.err.contains("in more than 8 ways"), r.err.constData());
    // A few spellings of one file are fine (and it is still mapped once).
    QJsonObject map;
    int i = 0;
    for (const QString& t : tensors)
      if (t != "__metadata__") map[t] = (i++ % 2) ? "./model.safetensors" : "model.safetensors";
    write_file(dir + "/model.safetensors.index.json", QJsonDocument(QJsonObject{{"weight_map", map}}).toJson());
    r = run_cli({"inspect", "--model", dir, "--json"});
    QCOMPARE(r.exit_code, 0);
  }

  void addedTokenIdsStayInsideTheVocabulary() {
    // A 14 KB tokenizer.json with one added token of id 2^24 - 1 cost 551 MB of empty slots:
    // ids must be below the number of entries the file defines.
    const QString tok = m_tmp.filePath("far-id-tokenizer.json");
    write_file(tok, tokenizer_with_added(added_entry((1 << 24) - 1, "<far>")));
    auto r = run_cli({"tokenize", "--tokenizer", tok, "--text", text("tinystories-sample.txt")});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains(tok.toUtf8() + ": added token '<far>' has id 16777215, outside the 516 ids"),
             r.err.constData());
    // The next id after the vocabulary is fine.
    write_file(tok, tokenizer_with_added(added_entry(512, "<near>")));
    r = run_cli({"tokenize", "--tokenizer", tok, "--text", text("tinystories-sample.txt"), "--max-chars", "100"});
    QCOMPARE(r.exit_code, 0);
  }

  void positionsFollowTheSequenceRun() {
    // max_position_embeddings 2^30 made `generate` ask for a 32 GB RoPE table. Under a 2 GB
    // address-space limit the generation now runs (it needs positions for prompt + tokens).
    const QString dir = model_copy(m_tmp, "long-context");
    QByteArray config = read_file(dir + "/config.json");
    config.replace("\"max_position_embeddings\": 512", "\"max_position_embeddings\": 1073741824");
    write_file(dir + "/config.json", config);
    QProcess p;
    p.start("bash", {"-c", "ulimit -v 2000000; exec \"$0\" \"$@\"", QStringLiteral(GPTQW_CLI_PATH),
                     "generate", "--model", dir, "--prompt", "Once upon a time", "--tokens", "16"});
    QVERIFY(p.waitForFinished(120000));
    const QByteArray err = p.readAllStandardError();
    if (test::sanitized && err.contains("AddressSanitizer"))
      QSKIP("sanitizer build: ASan's shadow memory does not fit a 2 GB address-space limit");
    QCOMPARE(p.exitCode(), 0);
    QVERIFY2(p.readAllStandardOutput().startsWith("Once upon a time"), err.constData());
  }

  // --- 7. Paths that leave the model folder -----------------------------------------------------

  void shardsAndCopiedFilesStayInsideTheModelFolder() {
    const QString outside = m_tmp.filePath("outside");
    QDir().mkpath(outside);
    QVERIFY(QFile::copy(model_dir() + "/model.safetensors", outside + "/model.safetensors"));
    write_file(outside + "/secret.txt", "SECRET-CONTENT");
    // An index entry with ../ and a shard that is a link to a file elsewhere: refused, naming it.
    const QString dotdot = model_copy(m_tmp, "dotdot");
    QFile::remove(dotdot + "/model.safetensors");
    const QByteArray st = read_file(outside + "/model.safetensors");
    quint64 n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | quint8(st[i]);
    QJsonObject map;
    for (const QString& t : QJsonDocument::fromJson(st.mid(8, qsizetype(n))).object().keys())
      if (t != "__metadata__") map[t] = "../outside/model.safetensors";
    write_file(dotdot + "/model.safetensors.index.json", QJsonDocument(QJsonObject{{"weight_map", map}}).toJson());
    auto r = run_cli({"inspect", "--model", dotdot});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("'../outside/model.safetensors'") && r.err.contains("outside the model folder"), r.err.constData());
    const QString linked = model_copy(m_tmp, "linked-shard");
    QFile::remove(linked + "/model.safetensors");
    QVERIFY(QFile::link(outside + "/model.safetensors", linked + "/model.safetensors"));
    r = run_cli({"inspect", "--model", linked});
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains(linked.toUtf8() + "/model.safetensors: leads to") && r.err.contains("outside the model folder"),
             r.err.constData());
    // A LICENSE or special_tokens_map.json linked to a file elsewhere, or a FIFO: the export
    // copies neither; it refuses, naming the file, and nothing is written.
    const QString parent = m_tmp.filePath("copied-out");
    QDir().mkpath(parent);
    for (const char* name : {"LICENSE", "special_tokens_map.json"}) {
      const QString model = model_copy(m_tmp, QString("copies-") + name);
      QFile::remove(model + "/" + name);
      QVERIFY(QFile::link(outside + "/secret.txt", model + "/" + name));
      r = run_cli(quantize_args(parent + "/gptq", model));
      QCOMPARE(r.exit_code, 1);
      QVERIFY2(r.err.contains(model.toUtf8() + "/" + name + ": leads to"), r.err.constData());
      QVERIFY(!QFileInfo::exists(parent + "/gptq"));
    }
    const QString fifo_model = model_copy(m_tmp, "copies-fifo");
    QFile::remove(fifo_model + "/LICENSE");
    QCOMPARE(::mkfifo((fifo_model + "/LICENSE").toUtf8().constData(), 0600), 0);
    r = run_cli(quantize_args(parent + "/gptq", fifo_model), 60000);
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains(fifo_model.toUtf8() + "/LICENSE: is a FIFO"), r.err.constData());
    QVERIFY(!QFileInfo::exists(parent + "/gptq"));
    QVERIFY2(hidden_entries(parent).isEmpty(), qPrintable(hidden_entries(parent).join(", ")));
  }

  // --- 8. Superlinear added-token matching ------------------------------------------------------

  void longAddedTokensMatchInLinearTime() {
    // One 100,000-character added token against a 100,000-character text took 20 s when a trie
    // was walked from every position; and "a" with "a" * 100,000 + "b" against 100,000 "a"s.
    const QByteArray a100k(100000, 'a');
    const QString t1 = m_tmp.filePath("long-added.json"), t2 = m_tmp.filePath("pair-added.json");
    write_file(t1, tokenizer_with_added(added_entry(512, a100k)));
    write_file(t2, tokenizer_with_added(added_entry(512, "a") + added_entry(513, a100k + "b")));
    const QString miss = m_tmp.filePath("a99999.txt"), hit = m_tmp.filePath("a100000.txt");
    write_file(miss, QByteArray(99999, 'a'));
    write_file(hit, a100k);
    const struct {
      QString tokenizer, text;
      int ids;
    } cases[] = {{t1, miss, -1}, {t1, hit, 1}, {t2, hit, 100000}};
    for (const auto& c : cases) {
      QElapsedTimer clock;
      clock.start();
      auto r = run_cli({"tokenize", "--tokenizer", c.tokenizer, "--text", c.text, "--no-special", "--json"}, 120000);
      QCOMPARE(r.exit_code, 0);
      QVERIFY2(clock.elapsed() < 5000, qPrintable(QString::number(clock.elapsed())));
      const QJsonObject j = QJsonDocument::fromJson(r.out).object();
      if (c.ids > 0) QCOMPARE(j["n_ids"].toInt(), c.ids);
    }
  }

  // --- 9. Nonsense reported as a result ---------------------------------------------------------

  void nonFiniteWeightsAndMeaninglessSettingsAreErrors() {
    // A NaN in a norm weight, an infinity in a GPTQ checkpoint's scales, rope_theta <= 0,
    // rms_norm_eps = 0: errors naming the tensor or field, never "perplexity nan".
    const QStringList eval = {"eval", "--text", text("tinystories-sample.txt"), "--seqlen", "256", "--max-windows", "2"};
    const QString nan_norm = model_copy(m_tmp, "nan-norm");
    patch_tensor(nan_norm + "/model.safetensors", "model.layers.2.post_attention_layernorm.weight", 7, 1,
                 f32(std::numeric_limits<float>::quiet_NaN()));
    auto r = run_cli(QStringList{eval} << "--model" << nan_norm);
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("tensor 'model.layers.2.post_attention_layernorm.weight': NaN at element 7"), r.err.constData());
    QVERIFY(!r.out.contains("nan"));

    const QString parent = m_tmp.filePath("inf-scales");
    QDir().mkpath(parent);
    QCOMPARE(run_cli(quantize_args(parent + "/gptq")).exit_code, 0);
    const quint16 inf16 = 0x7c00;
    patch_tensor(parent + "/gptq/model.safetensors", "model.layers.0.self_attn.q_proj.scales", 3, 1,
                 QByteArray(reinterpret_cast<const char*>(&inf16), 2));
    r = run_cli(QStringList{eval} << "--model" << parent + "/gptq");
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("tensor 'model.layers.0.self_attn.q_proj.scales': +inf at element 3"), r.err.constData());

    for (const auto& [field, value] : {std::pair{"rope_theta", "-10000.0"}, {"rope_theta", "0"},
                                       {"rms_norm_eps", "0"}, {"rms_norm_eps", "-1e-05"}}) {
      const QString dir = model_copy(m_tmp, QString("bad-") + field + value);
      QJsonObject config = QJsonDocument::fromJson(read_file(dir + "/config.json")).object();
      config[field] = QString(value).toDouble();
      write_file(dir + "/config.json", QJsonDocument(config).toJson());
      r = run_cli(QStringList{eval} << "--model" << dir);
      QCOMPARE(r.exit_code, 1);
      QVERIFY2(r.err.contains("config.json: field '" + QByteArray(field) + "' must be a positive number"), r.err.constData());
    }

    // Finite weights whose products overflow (a row of down_proj at 3e38): the loss is not
    // finite, and eval says so instead of printing "perplexity nan" with exit 0.
    const QString overflow = model_copy(m_tmp, "overflow");
    patch_tensor(overflow + "/model.safetensors", "model.layers.4.mlp.down_proj.weight", 0, 172, f32(3e38f));
    r = run_cli(QStringList{eval} << "--model" << overflow);
    QCOMPARE(r.exit_code, 1);
    QVERIFY2(r.err.contains("perplexity: window 0") && r.err.contains("non-finite loss"), r.err.constData());
    QVERIFY(!r.out.contains("nan"));
  }

  void numericOptionsAreRangeChecked() {
    // No silent wrap-around: each is a usage error (exit 2) naming the option.
    const QStringList base = {"quantize", "--model", model_dir(), "--calib", text("tinystories-sample.txt"), "--quiet"};
    const struct {
      QStringList args;
      const char* option;
    } cases[] = {
        {QStringList{base} << "--bits" << "4294967300", "--bits"},
        {QStringList{base} << "--group-size" << "4294967295", "--group-size"},
        {QStringList{base} << "--out" << m_tmp.filePath("never") << "--shard-size" << "-1", "--shard-size"},
        {QStringList{base} << "--out" << m_tmp.filePath("never") << "--shard-size" << "nan", "--shard-size"},
        {QStringList{base} << "--out" << m_tmp.filePath("never") << "--shard-size" << "inf", "--shard-size"},
        {QStringList{base} << "--seqlen" << "99999999999999999999", "--seqlen"},
        {QStringList{base} << "--damp" << "nan", "--damp"},
        {{"eval", "--model", model_dir(), "--text", text("tinystories-sample.txt"), "--threads", "20000"}, "--threads"},
        {{"generate", "--model", model_dir(), "--tokens", "-5"}, "--tokens"},
    };
    for (const auto& c : cases) {
      auto r = run_cli(c.args);
      QCOMPARE(r.exit_code, 2);
      QVERIFY2(r.err.contains(QByteArray("option ") + c.option + " must be"), r.err.constData());
      QVERIFY2(!r.err.contains("libgomp"), r.err.constData());
    }
    QVERIFY(!QFileInfo::exists(m_tmp.filePath("never")));
  }
};

QTEST_MAIN(TestHostile)
#include "tst_hostile.moc"
