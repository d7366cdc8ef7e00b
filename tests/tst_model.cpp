// Data tests of model loading and the forward pass on the real stories260K model: the Hugging
// Face folder and the llama2.c file load as the same model (which checks the q/k RoPE row
// permutation independently of our forward pass), greedy decoding tells the known story, the
// perplexities agree with an independent PyTorch implementation (tools/reference/), and bad
// input is reported by file and problem.
#include <QTest>
#include <cmath>
#include <fstream>

#include "common/error.h"
#include "io/hf_checkpoint.h"
#include "io/llama2c.h"
#include "model/generate.h"
#include "model/model.h"
#include "pipeline/perplexity.h"
#include "test_support.h"

using namespace gptqw;
using test::contains;
using test::error_of;
namespace fs = std::filesystem;

namespace {

fs::path llama2c_bin() { return test::stories_dir() / "llama2c/stories260K.bin"; }
fs::path llama2c_tok() { return test::stories_dir() / "llama2c/tok512.bin"; }

// A copy of the stories260K folder in dir whose config.json is edited by fix.
template <class Fix>
fs::path model_copy(const fs::path& dir, Fix&& fix) {
  fs::create_directories(dir);
  for (const char* f : {"model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(test::stories_dir() / f, dir / f);
  std::ifstream in(test::stories_dir() / "config.json");
  nlohmann::json j = nlohmann::json::parse(in);
  fix(j);
  std::ofstream(dir / "config.json") << j.dump(2);
  return dir;
}

}  // namespace

class TestModel : public QObject {
  Q_OBJECT
 private slots:
  void hfAndLlama2cAreTheSameModel() {
    HfCheckpoint hf(test::stories_dir());
    Llama2cCheckpoint l2(llama2c_bin());
    const ModelConfig &a = hf.config(), &b = l2.config();
    QCOMPARE(a.hidden_size, 64);
    QCOMPARE(a.intermediate_size, 172);
    QCOMPARE(a.num_layers, 5);
    QCOMPARE(a.num_heads, 8);
    QCOMPARE(a.num_kv_heads, 4);
    QCOMPARE(a.vocab_size, 512);
    QVERIFY(a.tie_word_embeddings);
    QCOMPARE(b.hidden_size, a.hidden_size);
    QCOMPARE(b.intermediate_size, a.intermediate_size);
    QCOMPARE(b.num_kv_heads, a.num_kv_heads);
    QCOMPARE(b.vocab_size, a.vocab_size);
    QCOMPARE(b.tie_word_embeddings, a.tie_word_embeddings);
    QCOMPARE(b.max_position_embeddings, a.max_position_embeddings);
    // 260,032 weights (the data README's 264,128 also counts llama2.c's RoPE tables).
    QCOMPARE(a.parameter_count(), int64_t(260032));
    QVERIFY(hf.embedding() == l2.embedding());
    QVERIFY(hf.final_norm() == l2.final_norm());
    for (int i = 0; i < a.num_layers; ++i) {
      BlockWeights x = hf.block(i), y = l2.block(i);
      QVERIFY(x.attn_norm == y.attn_norm);
      QVERIFY(x.mlp_norm == y.mlp_norm);
      for (LinearKind k : kAllLinears)
        QVERIFY2(x[k].W == y[k].W, (std::to_string(i) + "." + std::string(linear_name(k))).c_str());
    }
    // Without the permutation q and k would differ: the check above is not vacuous.
    Llama2cCheckpoint raw(llama2c_bin());
    QVERIFY(permute_rope_rows(hf.block(0)[LinearKind::q].W, 8, 8) != hf.block(0)[LinearKind::q].W);
  }

  void greedyGenerationTellsTheStory() {
    for (const auto& [model, tok] : {std::pair{test::stories_dir(), fs::path()},
                                      std::pair{llama2c_bin(), llama2c_tok()}}) {
      Model m = load_model(model, tok);
      std::vector<int32_t> ids = generate(*m.weights, {m.tokenizer->bos_id()}, 24,
                                                 {m.tokenizer->eos_id()});
      std::string text = m.tokenizer->decode(ids, true);
      QVERIFY2(text.rfind("Once upon a time, there was a little girl named Lily.", 0) == 0,
               text.c_str());
    }
  }

  void perplexityMatchesIndependentReference_data() {
    QTest::addColumn<QString>("text");
    QTest::addColumn<double>("reference");
    // tools/reference/llama_reference.py (PyTorch, float64, written from the math) on the
    // ids of `gptqw tokenize --json`, seqlen 512, all windows; see tools/reference/README.md.
    QTest::newRow("tinystories") << "text/tinystories-sample.txt" << 8.840868076973292;
    QTest::newRow("wikitext-2") << "text/wikitext-2-raw-test.txt" << 119.37182615463665;
  }
  void perplexityMatchesIndependentReference() {
    QFETCH(QString, text);
    QFETCH(double, reference);
    if (text.contains("wikitext")) GPTQW_SKIP_WHEN_SANITIZED("perplexity over all of WikiText-2");
    PerplexityOptions opt;
    opt.seqlen = 512;
    Model hf = load_model(test::stories_dir());
    PerplexityResult r = perplexity_of_file(hf, test::data(text.toStdString()), opt);
    qDebug("%s: ppl %.6f over %d windows (%lld tokens) in %.2f s", qPrintable(text), r.ppl,
           r.windows, static_cast<long long>(r.tokens), r.seconds);
    QVERIFY2(std::abs(r.ppl / reference - 1) < 1e-4,
             qPrintable(QString("ppl %1, reference %2").arg(r.ppl, 0, 'f', 6).arg(reference, 0, 'f', 6)));
    // The llama2.c file and its tokenizer cut the text into as many tokens and give the same
    // window NLLs (the first 16 windows: the weights are compared exactly above).
    Model l2 = load_model(llama2c_bin(), llama2c_tok());
    opt.max_windows = 16;
    PerplexityResult r2 = perplexity_of_file(l2, test::data(text.toStdString()), opt);
    QCOMPARE(r2.tokens, r.tokens);
    QCOMPARE(r2.windows, 16);
    for (int i = 0; i < r2.windows; ++i) QVERIFY(std::abs(r2.window_nll[i] - r.window_nll[i]) < 1e-6);
  }

  void perplexityProtocol() {
    // Windows are non-overlapping with the tail dropped, and max-windows caps them.
    Model m = load_model(test::stories_dir());
    std::vector<int32_t> ids = m.tokenizer->encode("Once upon a time there was a cat. ", true);
    while (ids.size() < 300) ids.push_back(ids[1 + ids.size() % 8]);
    PerplexityOptions opt;
    opt.seqlen = 128;
    PerplexityResult all = perplexity(*m.weights, ids, opt);
    QCOMPARE(all.windows, 2);  // 300 tokens: two windows of 128, 44 dropped
    opt.max_windows = 1;
    PerplexityResult one = perplexity(*m.weights, ids, opt);
    QCOMPARE(one.windows, 1);
    QCOMPARE(one.window_nll[0], all.window_nll[0]);
    QVERIFY(std::abs(all.ppl - std::exp((all.window_nll[0] + all.window_nll[1]) / 2)) < 1e-9);
    // A window's NLL does not depend on the windows evaluated beside it.
    std::vector<int32_t> second(ids.begin() + 128, ids.begin() + 256);
    opt.max_windows = 0;
    PerplexityResult alone = perplexity(*m.weights, second, opt);
    QVERIFY(std::abs(alone.window_nll[0] - all.window_nll[1]) < 1e-5);
  }

  void badInputIsNamed() {
    QTemporaryDir tmp;
    fs::path dir(tmp.path().toStdString());

    fs::path wide = model_copy(dir / "wide", [](auto& j) { j["hidden_size"] = 128; });
    std::string e = error_of([&] { open_weights(wide); });
    QVERIFY2(contains(e, "model.embed_tokens.weight") && contains(e, "[512, 128]") &&
                 contains(e, "[512, 64]"), e.c_str());

    fs::path deep = model_copy(dir / "deep", [](auto& j) { j["num_hidden_layers"] = 6; });
    e = error_of([&] { open_weights(deep); });
    QVERIFY2(contains(e, "model.layers.5.") && contains(e, "missing"), e.c_str());

    fs::path notok = model_copy(dir / "notok", [](auto&) {});
    fs::remove(notok / "tokenizer.json");
    e = error_of([&] { load_model(notok); });
    QVERIFY2(contains(e, "tokenizer"), e.c_str());

    fs::path noconfig = dir / "noconfig";
    fs::create_directories(noconfig);
    e = error_of([&] { open_weights(noconfig); });
    QVERIFY2(contains(e, "config.json"), e.c_str());

    e = error_of([&] { open_weights(dir / "absent"); });
    QVERIFY2(contains(e, "absent") && contains(e, "no such"), e.c_str());

    // A truncated llama2.c file.
    {
      std::ifstream in(llama2c_bin(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), {});
      std::ofstream(dir / "half.bin", std::ios::binary).write(bytes.data(), bytes.size() / 2);
      std::ofstream(dir / "short.bin", std::ios::binary).write(bytes.data(), 10);
    }
    e = error_of([&] { open_weights(dir / "half.bin"); });
    QVERIFY2(contains(e, "half.bin") && contains(e, "bytes"), e.c_str());
    e = error_of([&] { open_weights(dir / "short.bin"); });
    QVERIFY2(contains(e, "short.bin") && contains(e, "too short"), e.c_str());

    // Texts: empty, shorter than one window, not UTF-8.
    Model m = load_model(test::stories_dir());
    PerplexityOptions opt;
    opt.seqlen = 512;
    std::ofstream(dir / "empty.txt").close();
    std::ofstream(dir / "short.txt") << "Once upon a time.";
    std::ofstream(dir / "latin1.txt") << "caf\xe9 au lait";
    e = error_of([&] { perplexity_of_file(m, dir / "empty.txt", opt); });
    QVERIFY2(contains(e, "empty.txt") && contains(e, "empty"), e.c_str());
    e = error_of([&] { perplexity_of_file(m, dir / "short.txt", opt); });
    QVERIFY2(contains(e, "short.txt") && contains(e, "fewer than one window"), e.c_str());
    e = error_of([&] { perplexity_of_file(m, dir / "latin1.txt", opt); });
    QVERIFY2(contains(e, "latin1.txt") && contains(e, "UTF-8"), e.c_str());
  }
};

QTEST_GUILESS_MAIN(TestModel)
#include "tst_model.moc"
