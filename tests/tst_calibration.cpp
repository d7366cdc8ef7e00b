// Data tests of calibration data as users keep it (pipeline/calibration_corpus.h): a folder of
// .txt files and a JSONL file (default "text" field or a named one) give exactly the tokens of
// their documents joined with "\n\n" in one text file, so the same seed draws the same windows;
// malformed JSONL is reported by file, line and field; and the run's report records how the
// corpus was read.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>
#include <fstream>

#include "common/error.h"
#include "model/model.h"
#include "pipeline/calibration.h"
#include "test_support.h"

using namespace gptqw;
using test::contains;
using test::error_of;
using test::qpath;
namespace fs = std::filesystem;
using nlohmann::json;

class TestCalibration : public QObject {
  Q_OBJECT
  QTemporaryDir m_tmp;
  fs::path m_dir;
  std::vector<std::string> m_docs;

 private slots:
  void initTestCase() {
    QVERIFY(m_tmp.isValid());
    m_dir = m_tmp.path().toStdString();
    // Three stories of the sample text, cut at its <|endoftext|> separators.
    const std::string all = read_text_file(test::data("text/tinystories-sample.txt"));
    size_t pos = 0;
    for (int i = 0; i < 3; ++i) {
      size_t end = all.find("<|endoftext|>", pos + 2000);
      m_docs.push_back(all.substr(pos, end - pos));
      pos = end + 13;
    }
    fs::create_directories(m_dir / "folder");
    for (int i = 0; i < 3; ++i)  // names sort as 0, 1, 2; written in another order
      std::ofstream(m_dir / "folder" / ("doc" + std::to_string(2 - i) + ".txt")) << m_docs[2 - i];
    std::ofstream(m_dir / "folder" / "README.md") << "not a .txt file";
    std::ofstream joined(m_dir / "joined.txt");
    joined << m_docs[0] << "\n\n" << m_docs[1] << "\n\n" << m_docs[2];
    joined.close();
    std::ofstream jl(m_dir / "docs.jsonl");
    for (int i = 0; i < 3; ++i) jl << json({{"id", i}, {"text", m_docs[i]}, {"story", m_docs[i]}}).dump() << "\n\n";
  }

  void foldersAndJsonlAreTheirJoinedText() {
    Model m = load_model(test::stories_dir());
    CalibrationSet ref = sample_calibration(*m.tokenizer, m_dir / "joined.txt", 16, 128, 7);
    QCOMPARE(ref.format, std::string("text"));
    QCOMPARE(ref.documents, int64_t(1));
    CalibrationSet folder = sample_calibration(*m.tokenizer, m_dir / "folder", 16, 128, 7);
    QCOMPARE(folder.format, std::string("folder"));
    QCOMPARE(folder.documents, int64_t(3));
    QCOMPARE(folder.files, (std::vector<std::string>{"doc0.txt", "doc1.txt", "doc2.txt"}));
    QCOMPARE(folder.text_tokens, ref.text_tokens);
    QCOMPARE(folder.offsets, ref.offsets);
    QVERIFY(folder.tokens == ref.tokens);
    for (const char* field : {"text", "story"}) {
      CalibrationOptions o;
      o.jsonl_field = field;
      CalibrationSet jl = sample_calibration(*m.tokenizer, m_dir / "docs.jsonl", 16, 128, 7, o);
      QCOMPARE(jl.format, std::string("jsonl"));
      QCOMPARE(jl.field, std::string(field));
      QCOMPARE(jl.documents, int64_t(3));
      QVERIFY(jl.tokens == ref.tokens);
    }
  }

  void badCorporaAreNamed() {
    auto write = [&](const char* name, const std::string& body) {
      std::ofstream(m_dir / name) << body;
      return m_dir / name;
    };
    std::string e = error_of([&] { read_calibration_corpus(write("a.jsonl", "{\"text\": \"ok\"}\n[1, 2]\n")); });
    QVERIFY2(contains(e, "a.jsonl") && contains(e, "line 2") && contains(e, "JSON object"), e.c_str());
    e = error_of([&] { read_calibration_corpus(write("b.jsonl", "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n")); });
    QVERIFY2(contains(e, "line 2") && contains(e, "\"text\"") && contains(e, "--calib-field"), e.c_str());
    e = error_of([&] { read_calibration_corpus(write("c.jsonl", "{\"text\": 5}\n")); });
    QVERIFY2(contains(e, "line 1") && contains(e, "not a string"), e.c_str());
    e = error_of([&] { read_calibration_corpus(write("d.jsonl", "{\"text\": \"ok\"\n")); });
    QVERIFY2(contains(e, "d.jsonl") && contains(e, "line 1"), e.c_str());
    fs::create_directories(m_dir / "empty");
    e = error_of([&] { read_calibration_corpus(m_dir / "empty"); });
    QVERIFY2(contains(e, "empty") && contains(e, "no .txt"), e.c_str());
    e = error_of([&] { read_calibration_corpus(m_dir / "absent.jsonl"); });
    QVERIFY2(contains(e, "absent.jsonl"), e.c_str());
  }

  void reportRecordsHowTheCorpusWasRead() {
    auto r = test::run_cli({"quantize", "--model", qpath(test::stories_dir()), "--calib",
                            qpath(m_dir / "docs.jsonl"), "--calib-field", "story", "--nsamples", "4",
                            "--seqlen", "64", "--group-size", "32", "--method", "rtn", "--json"});
    QVERIFY2(r.exit_code == 0, r.err.constData());
    const QJsonObject c = QJsonDocument::fromJson(r.out).object()["calibration"].toObject();
    QCOMPARE(c["format"].toString(), QString("jsonl"));
    QCOMPARE(c["field"].toString(), QString("story"));
    QCOMPARE(c["documents"].toInt(), 3);
    QCOMPARE(c["separator"].toString(), QString("\n\n"));
    QCOMPARE(c["offsets"].toArray().size(), qsizetype(4));
  }
};

QTEST_GUILESS_MAIN(TestCalibration)
#include "tst_calibration.moc"
