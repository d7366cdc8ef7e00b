// Unit tests of the quality statistics (issue 17): the per-position comparison on hand-made
// distributions whose KLD, Δp, NLLs and top-K agreement are worked out in the comments, the
// estimators on small lists computed by hand, position and confidence buckets, the early stop,
// and the lockstep evaluator on a small random in-memory model: identical models give exactly
// zero divergence, each model's perplexity is perplexity()'s to the bit, chunking changes no
// bit, and the early stop ends after the window where the precision is reached.
#include <omp.h>

#include <QTest>
#include <cmath>
#include <limits>
#include <random>

#include "common/error.h"
#include "pipeline/divergence.h"
#include "pipeline/perplexity.h"
#include "pipeline/quantize.h"
#include "pipeline/statistics.h"
#include "test_support.h"

using namespace gptqw;

namespace {

const double ln2 = std::log(2.0);

// Relative closeness for values worked out by hand from logits rounded to float (about 1e-7).
bool near(double a, double b, double rel = 1e-6) {
  return std::abs(a - b) <= rel * std::max(1.0, std::abs(b));
}

TokenComparison compare(std::vector<float> x, std::vector<float> y, int32_t target) {
  return compare_tokens(TokenDistribution(x), TokenDistribution(y), target);
}

// A position whose NLLs are given (the rest 0): for the estimators of the NLL series.
TokenComparison nlls(double orig, double quant) {
  TokenComparison c;
  c.nll_orig = orig;
  c.nll_quant = quant;
  return c;
}

// A small Llama-shaped model with random weights, in memory: 2 blocks, hidden 16, 2 heads of 8,
// MLP 24, vocabulary 37 (or as given), untied head.
class RandomModel : public WeightSource {
 public:
  explicit RandomModel(unsigned seed, int vocab = 37) {
    m_c.model_type = "llama";
    m_c.hidden_size = 16;
    m_c.num_layers = 2;
    m_c.num_heads = m_c.num_kv_heads = 2;
    m_c.head_dim = 8;
    m_c.intermediate_size = 24;
    m_c.vocab_size = vocab;
    m_c.max_position_embeddings = 64;
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.f, 0.3f);
    auto random = [&](int64_t r, int64_t c) {
      Matrix m(r, c);
      for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = n(rng);
      return m;
    };
    for (int b = 0; b < m_c.num_layers; ++b) {
      BlockWeights w;
      w.attn_norm = Vector::Ones(m_c.hidden_size);
      w.mlp_norm = Vector::Ones(m_c.hidden_size);
      for (LinearKind k : kAllLinears) {
        const auto [N, K] = linear_shape(m_c, k);
        w[k].W = random(N, K);
      }
      m_blocks.push_back(w);
    }
    m_embedding = random(m_c.vocab_size, m_c.hidden_size);
    m_head = random(m_c.vocab_size, m_c.hidden_size) * 3.f;
  }
  const ModelConfig& config() const override { return m_c; }
  BlockWeights block(int i) const override { return m_blocks[i]; }
  Matrix embedding() const override { return m_embedding; }
  Vector final_norm() const override { return Vector::Ones(m_c.hidden_size); }
  Matrix lm_head() const override { return m_head; }
  std::vector<TensorInfo> tensors() const override { return {}; }
  uint64_t bytes_on_disk() const override { return 0; }
  std::string format() const override { return "random"; }
  std::string dtype() const override { return "F32"; }
  Matrix m_head;  // tests may spoil it

 private:
  ModelConfig m_c;
  std::vector<BlockWeights> m_blocks;
  Matrix m_embedding;
};

std::vector<int32_t> random_tokens(int n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = d(rng);
  return t;
}

// A random model, a copy with one linear layer scaled as a QuantizedModel overlay (the way a
// run's quantized models sit over the original), and random text of `windows` windows.
struct Perturbed {
  std::shared_ptr<RandomModel> model;
  QuantizedModel quant;
  std::vector<int32_t> ids;
  DivergenceOptions opt;
  Perturbed(unsigned seed, int vocab, int block, LinearKind kind, float factor, int seqlen,
            int windows)
      : model(std::make_shared<RandomModel>(seed, vocab)),
        quant(model),
        ids(random_tokens(seqlen * windows, vocab, seed + 100)) {
    quant.set(block, kind, Matrix(model->block(block)[kind].W * factor));
    opt.eval.seqlen = seqlen;
  }
  DivergenceResult compare(const DivergenceOptions& o) const {
    const WeightSource* q[] = {&quant};
    return compare_models(*model, q, ids, o);
  }
  DivergenceResult compare() const { return compare(opt); }
  // perplexity() of the original and the copy, on the first `windows` windows (0: all).
  double ppl_orig(int windows = 0) const { return ppl_of(*model, windows); }
  double ppl_quant(int windows = 0) const { return ppl_of(quant, windows); }

 private:
  double ppl_of(const WeightSource& w, int windows) const {
    PerplexityOptions p = opt.eval;
    p.max_windows = windows;
    return perplexity(w, ids, p).ppl;
  }
};

}  // namespace

class TestDivergence : public QObject {
  Q_OBJECT
 private slots:
  // The same logits on both sides: every term of the KLD is p (log p - log p) = 0 exactly.
  void identicalRowsGiveZero() {
    std::mt19937 rng(3);
    std::normal_distribution<float> n(0.f, 4.f);
    DivergenceStats s;
    for (int w = 0; w < 3; ++w) {
      s.start_window();
      for (int t = 0; t < 50; ++t) {
        std::vector<float> row(101);
        for (float& v : row) v = n(rng);
        s.add(row, row, t % 101, t);
      }
    }
    const DivergenceSummary r = summarize(s);
    QCOMPARE(r.tokens, int64_t(150));
    QCOMPARE(r.windows, 3);
    QCOMPARE(s.sums().kld, 0.0);
    QCOMPARE(r.kld.value, 0.0);
    QCOMPARE(r.kld.se, 0.0);
    QCOMPARE(r.kld_pct.max, 0.0);
    QCOMPARE(r.kld_pct.min, 0.0);
    QCOMPARE(r.dp.value, 0.0);
    QCOMPARE(r.dp_rms.value, 0.0);
    QCOMPARE(r.dp_rms.se, 0.0);  // sqrt of a zero mean square: 0 +- 0, not 0/0
    QCOMPARE(r.ln_ppl_ratio.value, 0.0);
    QCOMPARE(r.ln_ppl_ratio.se, 0.0);
    QCOMPARE(r.ppl_orig.value, r.ppl_quant.value);
    QCOMPARE(r.ppl_ratio.value, 1.0);
    QVERIFY(near(r.nll_correlation, 1.0, 1e-12));
    for (int k = 0; k < kTopRanks; ++k) {
      QCOMPARE(r.top_agreement[k].value, 1.0);
      QCOMPARE(r.top_agreement[k].se, 0.0);
      QCOMPARE(r.top_agree_count[k], int64_t(150));
    }
    // Identical models never satisfy the early stop: a relative precision of 0 is undefined.
    QVERIFY(std::isinf(precision_check(s, PrecisionOf::kld).relative));
    QVERIFY(!precision_reached(s, PrecisionOf::ln_ppl_ratio, 0.5));
  }

  // Four tokens. Original logits (ln 4, ln 2, 0, 0): p = (4, 2, 1, 1) / 8 = (.5, .25, .125,
  // .125). Quantized (0, 0, 0, ln 2): q = (1, 1, 1, 2) / 5 = (.2, .2, .2, .4).
  //   KL(p || q) = .5 ln(.5/.2) + .25 ln(.25/.2) + .125 ln(.125/.2) + .125 ln(.125/.4)
  //              = .458145366 + .055785888 - .058750454 - .145393851 = 0.309786949
  // Correct token 2: p_c = .125, q_c = .2, Δp = +.075; NLL ln 8 = 2.079441542 and ln 5 =
  // 1.609437912. Top: original (0, 1, 2, 3) (2 and 3 tie: lower id first), quantized (3, 0, 1,
  // 2): they differ at rank 1, so no K agrees. The original's confidence is .5.
  void handMadeFourTokens() {
    const TokenComparison c =
        compare({float(2 * ln2), float(ln2), 0.f, 0.f}, {0.f, 0.f, 0.f, float(ln2)}, 2);
    QVERIFY2(near(c.kld, 0.3097869488842029), qPrintable(QString::number(c.kld, 'g', 17)));
    QVERIFY(near(c.p_orig, 0.125));
    QVERIFY(near(c.p_quant, 0.2));
    QVERIFY(near(c.dp, 0.075));
    QVERIFY(near(c.nll_orig, 2.0794415416798357));
    QVERIFY(near(c.nll_quant, 1.6094379124341003));
    QCOMPARE(c.top_agree, 0);
    QVERIFY(near(c.orig_top_prob, 0.5));
    // Correct token 0 instead: p_c = .5, q_c = .2, Δp = -.3; the KLD does not depend on it.
    const TokenComparison d =
        compare({float(2 * ln2), float(ln2), 0.f, 0.f}, {0.f, 0.f, 0.f, float(ln2)}, 0);
    QCOMPARE(d.kld, c.kld);
    QVERIFY(near(d.dp, -0.3));
    // Reversed: KL(q || p) = .2 ln(.2/.5) + .2 ln(.2/.25) + .2 ln(.2/.125) + .4 ln(.4/.125)
    //   = -.183258146 - .044628710 + .094000726 + .465260324 = 0.331374193: not symmetric.
    const TokenComparison e =
        compare({0.f, 0.f, 0.f, float(ln2)}, {float(2 * ln2), float(ln2), 0.f, 0.f}, 2);
    QVERIFY2(near(e.kld, 0.33137419313374655), qPrintable(QString::number(e.kld, 'g', 17)));
  }

  // Six tokens, original logits (5, 4, 3, 2, 1, 0); the quantized model swaps tokens 3 and 4:
  // (5, 4, 3, 1, 2, 0). Top-5: (0, 1, 2, 3, 4) and (0, 1, 2, 4, 3): K = 1, 2, 3 agree, 4 and 5
  // do not. With S = sum_k e^k (k = 0..5) = 234.204184, p_3 = e^2/S = .031549633 and p_4 = e/S
  // = .011606461, q_3 = p_4, q_4 = p_3, all else equal:
  //   KL = p_3 ln(p_3/p_4) + p_4 ln(p_4/p_3) = (p_3 - p_4) x 1 = 0.019943172.
  // Correct token 0: p_c = q_c = e^5/S = .633691323, Δp = 0. Confidence .633691323.
  void handMadeTopFive() {
    const TokenComparison c = compare({5, 4, 3, 2, 1, 0}, {5, 4, 3, 1, 2, 0}, 0);
    QCOMPARE(c.top_agree, 3);
    QVERIFY2(near(c.kld, 0.019943171769915356), qPrintable(QString::number(c.kld, 'g', 17)));
    QCOMPARE(c.dp, 0.0);
    QVERIFY(near(c.orig_top_prob, 0.6336913225737218));
    DivergenceStats s;
    s.add(c, 0);
    QCOMPARE(s.sums().top_agree, (std::array<int64_t, kTopRanks>{1, 1, 1, 0, 0}));

    // Ties rank by token id: all-equal logits give (0, 1, 2, 3, 4); raising token 5 alone
    // gives (5, 0, 1, 2, 3), which agrees at no K.
    const TokenDistribution flat(std::vector<float>(6, 1.f));
    QCOMPARE(std::vector<int32_t>(flat.top().begin(), flat.top().end()),
             (std::vector<int32_t>{0, 1, 2, 3, 4}));
    const TokenDistribution raised(std::vector<float>{1, 1, 1, 1, 1, 1.5f});
    QCOMPARE(std::vector<int32_t>(raised.top().begin(), raised.top().end()),
             (std::vector<int32_t>{5, 0, 1, 2, 3}));
    QCOMPARE(compare_tokens(flat, raised, 0).top_agree, 0);
    // Fewer than 5 tokens: the ranks that exist are compared, so identical 3-token rows agree
    // at every K.
    QCOMPARE(compare({1, 2, 3}, {1, 2, 3}, 0).top_agree, 3);
    // A token the original gives probability 0 (logit -inf) adds nothing to the KLD.
    const float inf = std::numeric_limits<float>::infinity();
    const TokenComparison z = compare({0, 0, -inf}, {0, 0, 0}, 0);
    // p = (.5, .5, 0), q = (1/3, 1/3, 1/3): KL = 2 x .5 ln(1.5) = ln 1.5 = 0.405465108.
    QVERIFY(near(z.kld, std::log(1.5)));
  }

  // Sorted 1..10: fraction f sits at f x 9. p90 at 8.1 -> 9 + .1 (10 - 9) = 9.1; the median at
  // 4.5 -> (5 + 6) / 2 = 5.5; p99.9 at 8.991 -> 9.991; p0.1 at .009 -> 1.009. Odd count 1..5:
  // median 3, p25 at 1.0 -> 2.
  void percentilesOnKnownLists() {
    std::vector<float> v;
    for (int i = 10; i >= 1; --i) v.push_back(float(i));  // percentiles() sorts a copy
    const Percentiles p = percentiles(v);
    QCOMPARE(p.min, 1.0);
    QCOMPARE(p.max, 10.0);
    QVERIFY(near(p.p90, 9.1, 1e-12));
    QVERIFY(near(p.median, 5.5, 1e-12));
    QVERIFY(near(p.p99_9, 9.991, 1e-12));
    QVERIFY(near(p.p0_1, 1.009, 1e-12));
    QVERIFY(near(p.p25, 3.25, 1e-12));  // 2.25 -> 3 + .25
    const Percentiles q = percentiles(std::vector<float>{5, 1, 4, 2, 3});
    QCOMPARE(q.median, 3.0);
    QCOMPARE(q.p25, 2.0);
    QCOMPARE(percentiles(std::vector<float>{}).max, 0.0);
    QCOMPARE(percentiles(std::vector<float>{7}).p99, 7.0);
  }

  // x = (1, 2, 3, 4): mean 2.5, mean of squares 30/4 = 7.5, variance 7.5 - 6.25 = 1.25,
  // se = sqrt(1.25 / 3) = 0.645497224 (= sample sd 1.290994 / sqrt 4).
  // y = (2, 4, 6, 9): mean 5.25, mean of squares 137/4 = 34.25, variance 6.6875,
  // se = sqrt(6.6875 / 3) = 1.493039406; mean(xy) = (2 + 8 + 18 + 36)/4 = 16,
  // cov = (16 - 2.5 x 5.25) / 3 = 0.958333333.
  // ln ratio = 5.25 - 2.5 = 2.75 +- sqrt(.416667 + 2.229167 - 2 x .958333) = 0.853912564, which is
  // the se of the paired differences (1, 2, 3, 5): variance 9.75 - 7.5625 = 2.1875, sqrt(2.1875/3).
  void standardErrorsByHand() {
    const Estimate m = mean_estimate(10, 30, 4);
    QCOMPARE(m.value, 2.5);
    QVERIFY(near(m.se, 0.6454972243679028, 1e-12));
    QVERIFY(near(mean_covariance(10, 21, 64, 4), 0.9583333333333334, 1e-12));
    const Estimate p = proportion_estimate(3, 4);  // sqrt(.75 x .25 / 3) = .25
    QCOMPARE(p.value, 0.75);
    QVERIFY(near(p.se, 0.25, 1e-12));
    QCOMPARE(mean_estimate(5, 25, 1).se, 0.0);              // one value: no spread to measure
    const Estimate e = exp_estimate({std::log(8.0), 0.1});  // 8 +- .8
    QVERIFY(near(e.value, 8, 1e-12) && near(e.se, 0.8, 1e-12));
    const Estimate r = sqrt_estimate({4, 0.2});  // 2 +- .2 / 4
    QVERIFY(near(r.value, 2, 1e-12) && near(r.se, 0.05, 1e-12));

    DivergenceStats s;
    const double x[] = {1, 2, 3, 4}, y[] = {2, 4, 6, 9};
    for (int i = 0; i < 4; ++i) s.add(nlls(x[i], y[i]), i);
    const DivergenceSummary d = summarize(s);
    QVERIFY(near(d.ln_ppl_ratio.value, 2.75, 1e-12));
    QVERIFY2(near(d.ln_ppl_ratio.se, 0.8539125638299665, 1e-12),
             qPrintable(QString::number(d.ln_ppl_ratio.se, 'g', 17)));
    QVERIFY(near(d.ppl_orig.value, std::exp(2.5), 1e-12));
    QVERIFY(near(d.ppl_orig.se, std::exp(2.5) * 0.6454972243679028, 1e-12));
    QVERIFY(near(d.ppl_quant.se, std::exp(5.25) * 1.4930394055974097, 1e-12));
    QVERIFY(near(d.nll_correlation, 0.9583333333333334 / (0.6454972243679028 * 1.4930394055974097),
                 1e-12));
    QVERIFY(near(d.ppl_ratio.value, std::exp(2.75), 1e-12));
    QVERIFY(near(d.ppl_diff.value, std::exp(5.25) - std::exp(2.5), 1e-12));

    // Δp (.1, -.1, .3, .1): mean .1, mean of squares .12/4 = .03, variance .02, se sqrt(.02/3)
    // = 0.081649658; RMS sqrt(.03) = 0.173205081; Δp^2 (.01, .01, .09, .01) has mean .03 and
    // mean of squares (3e-4 + 81e-4)/4 = 21e-4, variance 21e-4 - 9e-4 = 12e-4, se sqrt(4e-4) =
    // .02, so RMS se = .02 / (2 x .173205081) = 0.057735027.
    DivergenceStats t;
    for (double dp : {0.1, -0.1, 0.3, 0.1}) {
      TokenComparison c;
      c.dp = dp;
      t.add(c, 0);
    }
    const DivergenceSummary u = summarize(t);
    QVERIFY(near(u.dp.value, 0.1, 1e-12));
    QVERIFY(near(u.dp.se, 0.08164965809277261, 1e-9));
    QVERIFY(near(u.dp_rms.value, 0.17320508075688773, 1e-12));
    QVERIFY(near(u.dp_rms.se, 0.05773502691896258, 1e-9));
  }

  // Buckets [0, 2), [2, 5), [5, ...): positions 0..6 with KLD = position / 10 fall 2, 3, 2; their
  // mean KLDs are .05, .3 and .55. Confidence buckets take the original's top probability.
  void positionAndConfidenceBuckets() {
    DivergenceStats s({0, 2, 5});
    const float conf[] = {0.1f, 0.3f, 0.6f, 0.8f, 0.97f, 1.0f, 0.25f};
    for (int t = 0; t < 7; ++t) {
      TokenComparison c;
      c.kld = t / 10.0;
      c.orig_top_prob = conf[t];
      c.nll_orig = 1;
      c.nll_quant = 1 + t / 10.0;
      s.add(c, t);
    }
    const DivergenceSummary r = summarize(s);
    QCOMPARE(r.by_position.size(), size_t(3));
    QCOMPARE(r.by_position[0].tokens, int64_t(2));
    QCOMPARE(r.by_position[1].tokens, int64_t(3));
    QCOMPARE(r.by_position[2].tokens, int64_t(2));
    QCOMPARE(r.by_position[1].first, 2);
    QCOMPARE(r.by_position[1].end, 5);
    QCOMPARE(r.by_position[2].end, -1);
    QVERIFY(near(r.by_position[0].est.kld.value, 0.05, 1e-12));
    QVERIFY(near(r.by_position[1].est.kld.value, 0.3, 1e-12));
    QVERIFY(near(r.by_position[2].est.kld.value, 0.55, 1e-12));
    QVERIFY(near(r.by_position[2].est.ppl_quant.value, std::exp(1.55), 1e-12));
    QVERIFY(near(r.by_position[0].est.ppl_orig.value, std::exp(1.0), 1e-12));
    // [0, .25): position 0; [.25, .5): 1 and 6 (.25 opens it); [.5, .75): 2; [.75, .95): 3;
    // [.95, 1]: 4 and 5 (1 included).
    QCOMPARE(r.by_confidence.size(), size_t(5));
    const int64_t counts[] = {1, 2, 1, 1, 2};
    for (int b = 0; b < 5; ++b) QCOMPARE(r.by_confidence[b].tokens, counts[b]);
    QVERIFY(near(r.by_confidence[1].kld_mean, 0.35, 1e-7));    // (.1 + .6) / 2
    QVERIFY(near(r.by_confidence[4].kld_median, 0.45, 1e-7));  // (.4 + .5) / 2
    QVERIFY(near(r.by_confidence[1].share, 2.0 / 7, 1e-12));
    for (const std::vector<int>& wrong : {std::vector<int>{1, 5}, std::vector<int>{0, 5, 5}}) {
      const std::string e = test::error_of([&] { DivergenceStats bad(wrong); });
      QVERIFY2(test::contains(e, "position buckets must start at 0"), e.c_str());
    }
  }

  // Two windows, original NLLs 0 so the ln ratio's differences are the quantized NLLs:
  // window 1 (.1, .3), window 2 (.2, .4). Positions: mean .25, variance .075 - .0625 = .0125,
  // se sqrt(.0125 / 3) = .064550, x 1.959964 = .126515. Windows: means .2 and .3, variance
  // .065 - .0625 = .0025, se sqrt(.0025 / 1) = .05, x t(1) 12.706205 = .635310. The half-width
  // is the larger, .635310, relative 2.541241: not below 2.5, below 2.6.
  void earlyStopHelper() {
    DivergenceStats s;
    s.start_window();
    s.add(nlls(0, 0.1), 0);
    QVERIFY(std::isinf(precision_check(s, PrecisionOf::ln_ppl_ratio).half_width));  // 1 window
    s.add(nlls(0, 0.3), 1);
    s.start_window();
    s.add(nlls(0, 0.2), 0);
    s.add(nlls(0, 0.4), 1);
    const PrecisionCheck c = precision_check(s, PrecisionOf::ln_ppl_ratio);
    QVERIFY(near(c.value, 0.25, 1e-12));
    QVERIFY2(near(c.half_width, 0.6353102500000001, 1e-9),
             qPrintable(QString::number(c.half_width, 'g', 17)));
    QVERIFY(near(c.relative, 2.5412410000000003, 1e-9));
    QVERIFY(!precision_reached(s, PrecisionOf::ln_ppl_ratio, 2.5));
    QVERIFY(precision_reached(s, PrecisionOf::ln_ppl_ratio, 2.6));
    // Student's t: the table's ends and the expansion beyond it.
    QCOMPARE(student_t_975(1), 12.706205);
    QCOMPARE(student_t_975(30), 2.042272);
    QVERIFY(near(student_t_975(31), 2.039513, 1e-6));
    QVERIFY(near(student_t_975(100), 1.983972, 1e-6));
    QVERIFY(near(student_t_975(1000000), 1.959966, 1e-6));
  }

  void nonFiniteIsAnError() {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::string e = test::error_of([&] {
      TokenDistribution d(std::vector<float>{0, nan, 1});
    });
    QVERIFY2(test::contains(e, "logit of token 1"), e.c_str());
    DivergenceStats s;
    TokenComparison c;
    c.kld = std::numeric_limits<double>::infinity();
    const std::string f = test::error_of([&] { s.add(c, 17); });
    QVERIFY2(test::contains(f, "position 17") && test::contains(f, "non-finite"), f.c_str());
    QCOMPARE(s.sums().n, int64_t(0));  // nothing half-added
    const std::string g = test::error_of([&] { compare({0, 1}, {0, 1}, 2); });
    QVERIFY2(test::contains(g, "target token 2"), g.c_str());
  }

  // The evaluator with the original as its own "quantized" model: zero divergence, and both
  // perplexities are perplexity()'s to the bit.
  void evaluatorIdenticalModels() {
    const RandomModel m(1);
    const std::vector<int32_t> ids = random_tokens(16 * 5 + 3, 37, 2);
    DivergenceOptions o;
    o.eval.seqlen = 16;
    o.position_buckets = {0, 4, 10};
    const WeightSource* q[] = {&m};
    const DivergenceResult r = compare_models(m, q, ids, o);
    const PerplexityResult p = perplexity(m, ids, o.eval);
    QCOMPARE(r.windows, 5);
    QCOMPARE(r.windows_available, 5);
    QVERIFY(!r.stopped_early);
    QCOMPARE(r.original.ppl, p.ppl);
    QCOMPARE(r.original.nll_mean, p.nll_mean);
    QCOMPARE(r.original.ppl_se, p.ppl_se);
    QCOMPARE(r.original.window_nll, p.window_nll);
    QCOMPARE(r.quantized[0].perplexity.ppl, p.ppl);
    const DivergenceSummary& s = r.quantized[0].summary;
    QCOMPARE(s.tokens, int64_t(5 * 15));
    QCOMPARE(s.windows, 5);
    QCOMPARE(s.kld.value, 0.0);
    QCOMPARE(s.dp.value, 0.0);
    QCOMPARE(s.ln_ppl_ratio.value, 0.0);
    QCOMPARE(s.top_agreement[0].value, 1.0);
    QCOMPARE(s.top_agreement[4].value, 1.0);
    // Positions 0..14 of each window: 4, 6 and 5 per window in the buckets.
    QCOMPARE(s.by_position[0].tokens, int64_t(20));
    QCOMPARE(s.by_position[1].tokens, int64_t(30));
    QCOMPARE(s.by_position[2].tokens, int64_t(25));
    // The float64 PPL of the statistics and the fp32-exponential PPL of perplexity() are the
    // same number to about 1e-7.
    QVERIFY(near(s.ppl_orig.value, p.ppl, 1e-6));
    QVERIFY(p.ppl_se > 0 && near(s.ppl_orig.se, p.ppl_se, 1e-5));
  }

  // A perturbed copy (one layer changed, as a QuantizedModel overlay): its perplexity is
  // perplexity()'s to the bit, the KLD is positive, and neither changes when the activation
  // budget cuts the windows into chunks of one, or when a second quantized model is added.
  void evaluatorPerturbedAndChunked() {
    const Perturbed p(1, 37, 1, LinearKind::up, 1.1f, 16, 6);
    const DivergenceResult a = p.compare();
    QCOMPARE(a.quantized[0].perplexity.ppl, p.ppl_quant());
    QCOMPARE(a.original.ppl, p.ppl_orig());
    QVERIFY(a.quantized[0].summary.kld.value > 0);
    QVERIFY(a.quantized[0].summary.kld.se > 0);

    DivergenceOptions small = p.opt;
    small.eval.activation_budget = 1;  // one window per chunk
    const DivergenceResult b = p.compare(small);
    QCOMPARE(b.quantized[0].perplexity.ppl, a.quantized[0].perplexity.ppl);
    QCOMPARE(b.quantized[0].stats.sums().kld, a.quantized[0].stats.sums().kld);
    QCOMPARE(b.quantized[0].summary.kld_pct.p99, a.quantized[0].summary.kld_pct.p99);

    const WeightSource* two[] = {p.model.get(), &p.quant};
    const DivergenceResult c = compare_models(*p.model, two, p.ids, p.opt);
    QCOMPARE(c.quantized.size(), size_t(2));
    QCOMPARE(c.quantized[0].summary.kld.value, 0.0);
    QCOMPARE(c.quantized[1].stats.sums().kld, a.quantized[0].stats.sums().kld);
  }

  // With a loose precision the walk ends after the second window (the first at which a
  // between-window spread exists), and says so; its perplexities are those of 2 windows.
  // A precision never reached runs every window, not "stopped early".
  void evaluatorEarlyStop() {
    const Perturbed p(1, 37, 0, LinearKind::q, 1.2f, 16, 20);
    DivergenceOptions o = p.opt;
    o.precision = 1e6;
    o.precision_of = PrecisionOf::kld;
    o.check_chunk = 3;
    const DivergenceResult r = p.compare(o);
    QCOMPARE(r.windows, 2);
    QCOMPARE(r.windows_available, 20);
    QVERIFY(r.stopped_early);
    QCOMPARE(r.quantized[0].summary.windows, 2);
    QCOMPARE(r.original.ppl, p.ppl_orig(2));
    QCOMPARE(r.quantized[0].perplexity.ppl, p.ppl_quant(2));
    QVERIFY(r.quantized[0].summary.kld.value > 0);

    o.precision = 1e-12;
    const DivergenceResult all = p.compare(o);
    QCOMPARE(all.windows, 20);
    QVERIFY(!all.stopped_early);
    o.precision = 0;
    QVERIFY_EXCEPTION_THROWN(p.compare(o), ConfigError);
  }

  // A vocabulary large enough that the walk takes one window at a time (512 x 40,000 logits
  // are above its 64 MB threshold) and the rows of a block are compared in parallel instead:
  // the same sums with 1 thread as with all, and perplexity()'s perplexities.
  void evaluatorLargeVocabularyRowsInParallel() {
    const Perturbed p(4, 40000, 1, LinearKind::down, 1.1f, 512, 2);
    const DivergenceResult all = p.compare();
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const DivergenceResult one = p.compare();
    omp_set_num_threads(threads);
    QCOMPARE(all.quantized[0].stats.sums().kld, one.quantized[0].stats.sums().kld);
    QCOMPARE(all.quantized[0].stats.sums().dp2, one.quantized[0].stats.sums().dp2);
    QCOMPARE(all.quantized[0].summary.top_agree_count, one.quantized[0].summary.top_agree_count);
    QCOMPARE(all.quantized[0].perplexity.ppl, p.ppl_quant());
    QCOMPARE(all.original.ppl, p.ppl_orig());
    QCOMPARE(all.quantized[0].summary.tokens, int64_t(2 * 511));
    QVERIFY(all.quantized[0].summary.kld.value > 0);
  }

  // A quantized model whose outputs are NaN: an error naming the window and the model.
  void evaluatorNonFiniteNamesTheWindow() {
    const RandomModel m(1);
    RandomModel bad(1);
    bad.m_head(5, 3) = std::numeric_limits<float>::quiet_NaN();
    const std::vector<int32_t> ids = random_tokens(16 * 3, 37, 2);
    DivergenceOptions o;
    o.eval.seqlen = 16;
    const WeightSource* q[] = {&bad};
    const std::string e = test::error_of([&] { compare_models(m, q, ids, o); });
    QVERIFY2(test::contains(e, "window 0 (tokens 0 to 16), quantized model 1") &&
                 test::contains(e, "logit of token 5"),
             e.c_str());
    const WeightSource* none[] = {&m};
    QVERIFY_EXCEPTION_THROWN(
        compare_models(m, std::span<const WeightSource* const>(none, 0), ids, o), ConfigError);
    o.eval.seqlen = 64;  // longer than the text
    QVERIFY_EXCEPTION_THROWN(compare_models(m, none, ids, o), ConfigError);
  }
};

QTEST_GUILESS_MAIN(TestDivergence)
#include "tst_divergence.moc"
