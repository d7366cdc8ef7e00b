// Generation: the token picker on hand-made logits (greedy, temperature, top-k, top-p, the draw
// thresholds worked out by hand), seeded sampling that repeats itself, side-by-side
// continuations of the sample model and a quantized version marked where they part, the
// prompts file, and `gptqw generate --with`.
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <fstream>

#include "common/error.h"
#include "model/model.h"
#include "pipeline/generations.h"
#include "pipeline/quantize.h"
#include "quant/rtn.h"
#include "test_support.h"

using namespace gptqw;

class TestGenerations : public QObject {
  Q_OBJECT
  QTemporaryDir m_tmp;

 private slots:
  void greedyPicksTheArgmaxLowestIdOnTies() {
    const float logits[] = {0.5f, 2.0f, -1.0f, 2.0f};
    QCOMPARE(pick_token(logits, 4, SamplingOptions{}, 0.99), 1);
    QCOMPARE(pick_token(logits, 4, SamplingOptions{}, 0.0), 1);
  }

  void samplingFollowsTheHandWorkedThresholds() {
    // Logits ln 4, ln 3, ln 2, ln 1 at temperature 1: probabilities 0.4, 0.3, 0.2, 0.1 in that
    // order, so u in [0, 0.4) picks 0, [0.4, 0.7) picks 1, [0.7, 0.9) picks 2, [0.9, 1) picks 3.
    const float logits[] = {std::log(4.f), std::log(3.f), std::log(2.f), std::log(1.f)};
    SamplingOptions s;
    s.temperature = 1;
    QCOMPARE(pick_token(logits, 4, s, 0.0), 0);
    QCOMPARE(pick_token(logits, 4, s, 0.39), 0);
    QCOMPARE(pick_token(logits, 4, s, 0.41), 1);
    QCOMPARE(pick_token(logits, 4, s, 0.69), 1);
    QCOMPARE(pick_token(logits, 4, s, 0.71), 2);
    QCOMPARE(pick_token(logits, 4, s, 0.91), 3);
    // Top-k 2: 0.4 and 0.3 renormalised to 4/7 and 3/7: u < 0.571 picks 0, above picks 1.
    s.top_k = 2;
    QCOMPARE(pick_token(logits, 4, s, 0.56), 0);
    QCOMPARE(pick_token(logits, 4, s, 0.58), 1);
    QCOMPARE(pick_token(logits, 4, s, 0.999), 1);
    // Top-p 0.65: the smallest prefix holding 65% is {0, 1} (0.4 + 0.3), as with top-k 2.
    s.top_k = 0;
    s.top_p = 0.65;
    QCOMPARE(pick_token(logits, 4, s, 0.58), 1);
    QCOMPARE(pick_token(logits, 4, s, 0.999), 1);
    // Temperature 2 flattens: weights 2, sqrt 3, sqrt 2, 1 (sum 6.146): 0 below 0.3254.
    s.top_p = 1;
    s.temperature = 2;
    QCOMPARE(pick_token(logits, 4, s, 0.32), 0);
    QCOMPARE(pick_token(logits, 4, s, 0.33), 1);
    // Order ties by id: equal logits, the lower id first.
    const float flat[] = {1.f, 1.f};
    s.temperature = 1;
    QCOMPARE(pick_token(flat, 2, s, 0.49), 0);
    QCOMPARE(pick_token(flat, 2, s, 0.51), 1);
  }

  void seededSamplingRepeatsItself() {
    Model m = load_model(test::stories_dir());
    const std::vector<int32_t> start = m.tokenizer->encode("Once upon a time", true);
    const std::vector<int32_t> stop = stop_tokens(*m.tokenizer, m.config());
    SamplingOptions s{1.2, 0, 1.0, 7};
    const auto a = generate(*m.weights, start, 32, stop, s);
    const auto b = generate(*m.weights, start, 32, stop, s);
    QCOMPARE(a, b);
    std::vector<std::vector<int32_t>> others;
    for (uint64_t seed = 8; seed < 12; ++seed) {
      s.seed = seed;
      others.push_back(generate(*m.weights, start, 32, stop, s));
    }
    // Another seed, another story (at least one of four differs from seed 7's).
    QVERIFY(std::any_of(others.begin(), others.end(), [&](const auto& o) { return o != a; }));
    QCOMPARE(generate(*m.weights, start, 32, stop, SamplingOptions{}),
             generate(*m.weights, start, 32, stop, SamplingOptions{0, 0, 1, 99}));
  }

  void sideBySideMarksWhereTheyPart() {
    Model m = load_model(test::stories_dir());
    // A 2-bit RTN version of every linear layer: damaged enough to part from the original.
    QuantizedModel rtn(m.weights);
    QuantConfig q;
    q.bits = 2;
    q.group_size = -1;
    for (int b = 0; b < m.config().num_layers; ++b) {
      BlockWeights block = m.weights->block(b);
      for (LinearKind k : kAllLinears) rtn.set(b, k, rtn_quantize(block[k].W, q).Q);
    }
    GenerationSpec spec;
    spec.prompts = {"Once upon a time", ""};
    spec.new_tokens = 24;
    const auto same = generate_side_by_side({{"original", m.weights.get()}, {"again", m.weights.get()}},
                                            *m.tokenizer, spec);
    QCOMPARE(int(same.size()), 4);  // 2 prompts x (greedy, sampled)
    for (const PromptGenerations& g : same) {
      QCOMPARE(g.continuations[1].tokens, g.continuations[0].tokens);
      QCOMPARE(g.continuations[1].diverges_at_token, -1);
      QCOMPARE(g.continuations[1].diverges_at_byte, int64_t(-1));
    }
    const auto parted = generate_side_by_side({{"original", m.weights.get()}, {"rtn2", &rtn}}, *m.tokenizer, spec);
    int parted_count = 0;
    for (const PromptGenerations& g : parted) {
      const Continuation &ref = g.continuations[0], &c = g.continuations[1];
      QCOMPARE(ref.diverges_at_token, -1);
      if (c.diverges_at_token < 0) continue;
      ++parted_count;
      // Before the mark, the same tokens and the same text; at it, a different token.
      const size_t t = size_t(c.diverges_at_token);
      QVERIFY(std::equal(c.tokens.begin(), c.tokens.begin() + t, ref.tokens.begin()));
      QVERIFY(t == c.tokens.size() || t == ref.tokens.size() || c.tokens[t] != ref.tokens[t]);
      const size_t at = size_t(c.diverges_at_byte);
      QCOMPARE(c.text.substr(0, at), ref.text.substr(0, at));
      QVERIFY(at == c.text.size() || at == ref.text.size() || c.text[at] != ref.text[at]);
      // The text parts no later than the tokens do.
      QVERIFY(at <= m.tokenizer->decode(std::span(c.tokens).first(t + (t < c.tokens.size())), true).size());
    }
    QVERIFY2(parted_count > 0, "a 2-bit per-row RTN model wrote what the original wrote, every time");
  }

  void promptsFile() {
    const QString file = m_tmp.filePath("prompts.txt");
    {
      std::ofstream f(file.toStdString(), std::ios::binary);
      f << "Once upon a time\r\n\n   \ndef main():\\n    return\nLast line without newline";
    }
    const auto p = read_prompts(file.toStdString());
    QCOMPARE(int(p.size()), 3);
    QCOMPARE(p[0], std::string("Once upon a time"));
    QCOMPARE(p[1], std::string("def main():\n    return"));
    QCOMPARE(p[2], std::string("Last line without newline"));
    const QString empty = m_tmp.filePath("empty.txt");
    { std::ofstream f(empty.toStdString()); f << "\n \n"; }
    try {
      read_prompts(empty.toStdString());
      QFAIL("no error");
    } catch (const ConfigError& e) {
      QVERIFY2(QString(e.what()).contains("empty.txt") && QString(e.what()).contains("no prompt"), e.what());
    }
  }

  void cliComparesCheckpoints() {
    const QString out = m_tmp.filePath("q3");
    auto q = test::run_cli({"quantize", "--model", test::qpath(test::stories_dir()), "--calib",
                            test::qpath(test::data("text/tinystories-sample.txt")), "--nsamples", "16",
                            "--seqlen", "256", "--bits", "3", "--group-size", "32", "--out", out, "--quiet"});
    QVERIFY2(q.exit_code == 0, q.err.constData());
    auto g = test::run_cli({"generate", "--model", test::qpath(test::stories_dir()), "--prompt",
                            "Once upon a time", "--prompt", "The dog", "--tokens", "24", "--with", out});
    QVERIFY2(g.exit_code == 0, g.err.constData());
    const QString text = QString::fromUtf8(g.out);
    QCOMPARE(text.count("(reference)"), 4);  // 2 prompts x greedy and sampled
    QCOMPARE(text.count("prompt \""), 4);
    QVERIFY(text.contains("sampled: temperature 0.8"));
    auto j = test::run_cli({"generate", "--model", test::qpath(test::stories_dir()), "--prompt",
                            "Once upon a time", "--tokens", "24", "--with", out, "--json", "--temperature", "0"});
    QVERIFY2(j.exit_code == 0, j.err.constData());
    const QJsonArray arr = QJsonDocument::fromJson(j.out).array();
    QCOMPARE(arr.size(), 1);  // greedy only
    QCOMPARE(arr[0]["continuations"].toArray().size(), 2);
    QCOMPARE(arr[0]["continuations"][1]["model"].toString(), QString("q3"));
    // A checkpoint of another vocabulary is refused, naming it.
    auto bad = test::run_cli({"generate", "--model", test::qpath(test::stories_dir()), "--with",
                              test::qpath(test::data("models/does-not-exist"))});
    QVERIFY(bad.exit_code != 0);
    QVERIFY(bad.err.contains("does-not-exist"));
  }
};

QTEST_GUILESS_MAIN(TestGenerations)
#include "tst_generations.moc"
