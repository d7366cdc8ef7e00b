// Unit tests of core/quant/gptq, hessian and the CPU backend: the hand-worked two-weight
// example, GPTQ == RTN when H is diagonal, GPTQ's output error <= RTN's over random correlated
// layers in every configuration, dead inputs, g_idx in its three cases, damping raised on an
// indefinite H and the fallback to RTN, errors naming the layer, the Hessian running mean and
// the fp32 Cholesky-inverse against a double-precision computation.
#include <Eigen/Cholesky>
#include <QTest>
#include <cmath>
#include <random>

#include "backend/cpu_backend.h"
#include "common/threads.h"
#include "common/error.h"
#include "pipeline/layer_metrics.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "quant/rtn.h"
#include "test_matrices.h"

using namespace gptqw;

namespace {

// ||W X^T - Q X^T||^2 for inputs X [T, K]: the loss GPTQ minimises.
double output_error(const Matrix& W, const Matrix& Q, const Matrix& X) {
  const Eigen::MatrixXd D = (W - Q).cast<double>() * X.cast<double>().transpose();
  return D.squaredNorm();
}

// T inputs of width K with strongly correlated channels of different scales: X = Z A, Z
// Gaussian, A a random mixing matrix with a decaying diagonal.
Matrix correlated_inputs(Eigen::Index T, Eigen::Index K, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Matrix Z(T, K), A(K, K);
  for (Eigen::Index i = 0; i < Z.size(); ++i) Z.data()[i] = normal(rng);
  for (Eigen::Index i = 0; i < A.size(); ++i) A.data()[i] = 0.3f * normal(rng);
  for (Eigen::Index i = 0; i < K; ++i) A(i, i) += 1.0f + 3.0f * float(i % 7) / 7.0f;
  return Z * A;
}

Matrix hessian_of(const Matrix& X, int batches = 4) {
  HessianAccumulator acc(X.cols(), "test");
  const Eigen::Index per = X.rows() / batches;
  for (int b = 0; b < batches; ++b) acc.add_batch(X.middleRows(b * per, per), 1);
  return acc.H();
}

// A K x K Hessian of correlated inputs; `dead`: inputs 3, K/2 and K-1 never fire (their rows
// and columns are zero); `raise`: an eigenvalue of about -2% of the mean diagonal, so that 1%
// damping does not make it positive definite (GPTQModel's raise is needed).
Matrix test_hessian(int K, unsigned seed, bool dead, bool raise) {
  Matrix H = hessian_of(correlated_inputs(2 * K, K, seed));
  if (raise) {
    const float m = H.diagonal().mean();
    const Eigen::VectorXf v = Eigen::VectorXf::Ones(K) / std::sqrt(float(K));
    const float lambda = (v.transpose() * H * v)(0, 0);
    H -= (lambda + 0.02f * m) * v * v.transpose();
  }
  if (dead)
    for (int d : {3, K / 2, K - 1}) {
      H.row(d).setZero();
      H.col(d).setZero();
    }
  return H;
}

// Every weight reads back from the checkpoint layout: Q[n,k] = s[g,n] * (q[n,k] - z[g,n]).
bool layout_consistent(const QuantizedWeights& w, int maxq) {
  for (Eigen::Index n = 0; n < w.Q.rows(); ++n)
    for (Eigen::Index k = 0; k < w.Q.cols(); ++k) {
      const int g = w.g_idx[k];
      if (w.codes(n, k) > maxq || w.zeros(g, n) < 0 || w.zeros(g, n) > maxq) return false;
      if (w.Q(n, k) != w.scales(g, n) * float(int(w.codes(n, k)) - w.zeros(g, n))) return false;
    }
  return true;
}

Grid fixed_grid(float scale, float zero, int maxq) {
  Grid g;
  g.scale = Vector::Constant(1, scale);
  g.zero = Vector::Constant(1, zero);
  g.maxq = maxq;
  return g;
}

}  // namespace

class TestGptq : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase() { set_threads(2); }

  void handWorkedExample() {
    // One row W = [0.80, -0.40]; inputs x1 = [2, 1], x2 = [1, 3], so
    //   X^T X = [[4+1, 2+3], [2+3, 1+9]] = [[5, 5], [5, 10]]  (used as H, no damping).
    // Grid: 2 bits, step 0.5, zero 1 -> levels {-0.5, 0, 0.5, 1.0}.
    // The output error of a choice q is e^T H e with e = w - q:
    //   q = [1.0, -0.5]: e = [-0.2,  0.1]: 5(.04) + 10(-.02) + 10(.01) = 0.20 - 0.20 + 0.10 = 0.10
    //   q = [0.5, -0.5]: e = [ 0.3,  0.1]: 0.45 + 0.30 + 0.10 = 0.85
    //   q = [0.5,  0.0]: e = [ 0.3, -0.4]: 0.45 - 1.20 + 1.60 = 0.85
    //   q = [1.0,  0.0]: e = [-0.2, -0.4]: 0.20 + 0.80 + 1.60 = 2.60
    // RTN: 0.8/0.5 = 1.6 -> 2 -> 1.0; -0.4/0.5 = -0.8 -> -1 -> -0.5: [1.0, -0.5], error 0.10.
    // GPTQ: H^-1 = [[0.4, -0.2], [-0.2, 0.2]]; column 1 rounds to 1.0 (e1 = -0.2) and moves w2
    // by -e1 * Hinv12 / Hinv11 = 0.2 * -0.5 = -0.1 to -0.5 -> -0.5: [1.0, -0.5], the best.
    Matrix W(1, 2);
    W << 0.80f, -0.40f;
    Matrix X(2, 2);
    X << 2, 1, 1, 3;
    const Matrix H = X.transpose() * X;
    QCOMPARE(H(0, 1), 5.0f);
    QCOMPARE(H(1, 1), 10.0f);
    GptqOptions o;
    o.quant = test::quant_config(2, false);
    o.fixed_grid = fixed_grid(0.5f, 1.0f, 3);
    o.damp_fraction = 0;
    o.layer = "hand";

    const float levels[] = {-0.5f, 0.0f, 0.5f, 1.0f};
    double best = 1e30;
    Matrix best_q(1, 2);
    for (float a : levels)
      for (float b : levels) {
        Matrix q(1, 2);
        q << a, b;
        const double e = output_error(W, q, X);
        if (e < best) best = e, best_q = q;
      }
    QCOMPARE(best_q(0, 0), 1.0f);
    QCOMPARE(best_q(0, 1), -0.5f);
    QVERIFY(std::abs(best - 0.10) < 1e-6);

    const GptqResult g = gptq_quantize(W, H, o);
    QCOMPARE(g.weights.Q(0, 0), 1.0f);
    QCOMPARE(g.weights.Q(0, 1), -0.5f);
    QCOMPARE(int(g.weights.codes(0, 0)), 3);
    QCOMPARE(int(g.weights.codes(0, 1)), 0);
    Matrix rtn_q(1, 2);
    Codes rtn_c(1, 2);
    quantize_on_grid(W, *o.fixed_grid, rtn_q, rtn_c);
    QVERIFY(output_error(W, rtn_q, X) >= output_error(W, g.weights.Q, X) - 1e-9);
    // The reported loss: sum (w - q)^2 / d^2 / 2 with d = Hinv's diagonal,
    // Hinv = chol(H^-1)^T: d1 = sqrt(0.4), d2 = sqrt(0.2 - 0.2^2/0.4) = sqrt(0.1).
    // Column 2 after the update is w2 = -0.5, quantized exactly: loss = 0.04 / 0.4 / 2 = 0.05.
    QVERIFY(std::abs(g.loss - 0.05) < 1e-5);
    // The default damping (1% of mean diag) does not change the choice.
    o.damp_fraction = 0.01;
    QVERIFY(gptq_quantize(W, H, o).weights.Q == g.weights.Q);
  }

  void handWorkedExampleGptqBeatsRtn() {
    // Same inputs and grid, W = [0.70, -0.30]:
    //   RTN: 1.4 -> 1 -> 0.5; -0.6 -> -1 -> -0.5: e = [0.2, 0.2]: 0.2 + 0.4 + 0.4 = 1.0
    //   GPTQ: e1 = 0.2 moves w2 by 0.2 * 0.5 = +0.1 to -0.2 -> -0.4 -> 0: q = [0.5, 0],
    //         e = [0.2, -0.3]: 0.2 - 0.6 + 0.9 = 0.5, half RTN's error.
    //   The best choice [1.0, -0.5] (e = [-0.3, 0.2]: 0.45 - 0.6 + 0.4 = 0.25) is not found:
    //   GPTQ is greedy, column by column.
    Matrix W(1, 2);
    W << 0.70f, -0.30f;
    Matrix X(2, 2);
    X << 2, 1, 1, 3;
    GptqOptions o;
    o.quant = test::quant_config(2, false);
    o.fixed_grid = fixed_grid(0.5f, 1.0f, 3);
    o.damp_fraction = 0;
    const GptqResult g = gptq_quantize(W, X.transpose() * X, o);
    QCOMPARE(g.weights.Q(0, 0), 0.5f);
    QCOMPARE(g.weights.Q(0, 1), 0.0f);
    Matrix rtn_q(1, 2);
    Codes rtn_c(1, 2);
    quantize_on_grid(W, *o.fixed_grid, rtn_q, rtn_c);
    QCOMPARE(rtn_q(0, 1), -0.5f);
    QVERIFY(std::abs(output_error(W, rtn_q, X) - 1.0) < 1e-5);
    QVERIFY(std::abs(output_error(W, g.weights.Q, X) - 0.5) < 1e-5);
  }

  void identityHessianEqualsRtn() {
    // With H diagonal, Hinv is diagonal: no error is propagated, so every column is rounded on
    // its own, exactly as RTN does, and group grids see the original W.
    const Matrix W = test::random_matrix(32, 64, 5, 0.1f);
    const Matrix I = Matrix::Identity(64, 64);
    for (int bits : {2, 3, 4, 8})
      for (bool sym : {false, true})
        for (int gs : {-1, 16, 24})
          for (bool act : {false, true}) {
            GptqOptions o;
            o.quant = test::quant_config(bits, sym, gs);
            o.act_order = act;  // equal diagonals: the stable sort keeps the identity order
            const GptqResult g = gptq_quantize(W, I, o);
            const QuantizedWeights r = rtn_quantize(W, o.quant);
            QVERIFY(g.weights.Q == r.Q);
            QVERIFY(g.weights.codes == r.codes);
            QVERIFY(g.weights.scales == r.scales);
            QVERIFY(g.weights.zeros == r.zeros);
            QVERIFY(g.weights.g_idx == r.g_idx);
            QCOMPARE(g.damp_raises, 0);
            QVERIFY(!g.fell_back_to_rtn);
          }
    // Unequal diagonal, no act-order: still RTN.
    Matrix D = Matrix::Zero(64, 64);
    for (int i = 0; i < 64; ++i) D(i, i) = 1.0f + float((i * 13) % 17);
    GptqOptions o;
    o.quant = test::quant_config(4, false, 16);
    QVERIFY(gptq_quantize(W, D, o).weights.Q == rtn_quantize(W, o.quant).Q);
  }

  void gptqBeatsRtnOnRandomLayers() {
    // 64 x 96 layer, 256 correlated inputs. The comparison is on ||W X^T - Q X^T||^2.
    const Matrix X = correlated_inputs(256, 96, 1);
    const Matrix W = test::random_matrix(64, 96, 2, 0.05f);
    const Matrix H = hessian_of(X);
    struct Case {
      int gs;
      bool act, stat, sym;
    };
    const Case cases[] = {{-1, false, false, true},  {-1, true, false, true},
                          {-1, false, false, false}, {32, false, false, true},
                          {32, true, false, true},   {32, false, true, true},
                          {32, true, true, false},   {40, true, false, false},
                          {40, true, true, true},    {16, false, false, false}};
    for (int bits : {2, 3, 4, 8})
      for (const Case& c : cases) {
        GptqOptions o;
        o.quant = test::quant_config(bits, c.sym, c.gs);
        o.act_order = c.act;
        o.static_groups = c.stat;
        o.blocksize = 32;  // several blocks, so the lazy batch update is exercised
        const GptqResult g = gptq_quantize(W, H, o);
        const QuantizedWeights r = rtn_quantize(W, o.quant);
        const double eg = output_error(W, g.weights.Q, X), er = output_error(W, r.Q, X);
        const QString what = QString("bits %1 gs %2 act %3 static %4 sym %5: gptq %6 rtn %7")
                                 .arg(bits)
                                 .arg(c.gs)
                                 .arg(c.act)
                                 .arg(c.stat)
                                 .arg(c.sym)
                                 .arg(eg)
                                 .arg(er);
        QVERIFY2(eg <= er, qPrintable(what));
        QVERIFY2(layout_consistent(g.weights, o.quant.maxq()), qPrintable(what));
        QCOMPARE(g.perm.size(), c.act ? size_t(96) : size_t(0));
        QVERIFY(g.loss > 0);
      }
  }

  void blocksizeDoesNotChangeTheMath() {
    // The lazy batch update is exact algebra: blocks of 5 and of 128 give the same result up to
    // fp32 summation order, so (nearly) all codes agree and the losses match closely.
    const Matrix X = correlated_inputs(128, 40, 4);
    const Matrix W = test::random_matrix(16, 40, 6, 0.05f);
    const Matrix H = hessian_of(X);
    GptqOptions o;
    o.quant = test::quant_config(4, true);
    o.blocksize = 128;
    const GptqResult a = gptq_quantize(W, H, o);
    o.blocksize = 5;
    const GptqResult b = gptq_quantize(W, H, o);
    const double agree = double((a.weights.codes.array() == b.weights.codes.array()).count()) /
                         double(a.weights.codes.size());
    QVERIFY2(agree >= 0.98, qPrintable(QString::number(agree)));
    QVERIFY(std::abs(a.loss - b.loss) <= 0.02 * a.loss);
  }

  void deadColumns() {
    Matrix X = correlated_inputs(64, 24, 8);
    X.col(5).setZero();
    X.col(17).setZero();
    HessianAccumulator acc(24, "dead");
    acc.add_batch(X, 2);
    QCOMPARE(acc.dead_columns(), int64_t(2));
    const Matrix W = test::random_matrix(8, 24, 9);
    GptqOptions plain;
    const HessianFactor f = factor_hessian(acc.H(), plain);
    QCOMPARE(f.dead_columns, int64_t(2));
    for (int i = 0; i < 24; ++i) QCOMPARE(f.dead[i], uint8_t(i == 5 || i == 17));
    for (bool act : {false, true}) {
      GptqOptions o;
      o.quant = test::quant_config(4, false, 8);
      o.act_order = act;
      const GptqResult g = gptq_quantize(W, acc.H(), o);
      QCOMPARE(g.dead_columns, int64_t(2));
      QVERIFY(g.weights.Q.col(5).isZero(0));
      QVERIFY(g.weights.Q.col(17).isZero(0));
      QVERIFY(!g.weights.Q.col(4).isZero(0));
    }
  }

  void gIdxThreeCases() {
    // Diagonal [1, 5, 3, 8, 2, 7, 4, 6] (plus a small coupling): act-order quantizes channels
    // by decreasing diagonal 8, 7, 6, 5, 4, 3, 2, 1, i.e. channels 3, 5, 7, 1, 6, 2, 4, 0.
    // With groups of 3 over positions (0-2, 3-5, 6-7):
    //   act-order, not static: channel -> group of its position:
    //     3,5,7 -> 0; 1,6,2 -> 1; 4,0 -> 2: g_idx = [2, 1, 1, 0, 2, 0, 1, 0]
    //   act-order + static groups, or no act-order: k / 3 = [0, 0, 0, 1, 1, 1, 2, 2].
    const float diag[] = {1, 5, 3, 8, 2, 7, 4, 6};
    Matrix H = Matrix::Constant(8, 8, 0.05f);
    for (int i = 0; i < 8; ++i) H(i, i) = diag[i];
    QCOMPARE(act_order_permutation(H.diagonal()), (std::vector<int32_t>{3, 5, 7, 1, 6, 2, 4, 0}));
    const Matrix W = test::random_matrix(4, 8, 10);
    const std::vector<int32_t> by_k = {0, 0, 0, 1, 1, 1, 2, 2};
    const std::vector<int32_t> by_position = {2, 1, 1, 0, 2, 0, 1, 0};
    struct Case {
      bool act, stat;
      std::vector<int32_t> expected;
    };
    const Case cases[] = {{false, false, by_k}, {true, false, by_position}, {true, true, by_k}};
    for (const Case& c : cases) {
      GptqOptions o;
      o.quant = test::quant_config(4, false, 3);
      o.act_order = c.act;
      o.static_groups = c.stat;
      const GptqResult g = gptq_quantize(W, H, o);
      QCOMPARE(g.weights.g_idx, c.expected);
      QCOMPARE(g.weights.scales.rows(), Eigen::Index(3));
      QVERIFY(layout_consistent(g.weights, 15));
      if (c.stat)  // static grids come from the original W's column groups
        for (int grp = 0; grp < 3; ++grp) {
          const Grid expect = find_grid(W.middleCols(grp * 3, std::min(3, 8 - grp * 3)), o.quant);
          QVERIFY(g.weights.scales.row(grp) == expect.scale.transpose());
        }
    }
    QCOMPARE(make_g_idx(8, -1, {}, false), std::vector<int32_t>(8, 0));
    // Stable tie rule: equal diagonals keep increasing channel order.
    Matrix T = Matrix::Identity(3, 3);
    T(0, 0) = T(2, 2) = 2;
    QCOMPARE(act_order_permutation(T.diagonal()), (std::vector<int32_t>{0, 2, 1}));
  }

  void dampingRaisedOnIndefiniteHessian() {
    // A rank-8 PSD H of size 32 shifted by -0.05 * mean(diag): smallest eigenvalue about
    // -0.05 m, mean diagonal 0.95 m. 1% damping cannot make it positive definite; the
    // damping is raised by 0.01 until it exceeds 0.05 / 0.95 = 0.0526 (from 0.06 on).
    const Matrix X = test::random_matrix(8, 32, 12);
    Matrix H = X.transpose() * X;
    const float m = H.diagonal().mean();
    H.diagonal().array() -= 0.05f * m;
    const Matrix W = test::random_matrix(16, 32, 13);
    GptqOptions o;
    o.quant = test::quant_config(4, true);
    o.layer = "model.layers.7.mlp.up_proj";
    const GptqResult g = gptq_quantize(W, H, o);
    QVERIFY(!g.fell_back_to_rtn);
    QVERIFY2(g.damp_raises >= 5, qPrintable(QString::number(g.damp_raises)));
    QVERIFY2(g.damp_fraction > 0.0526 && g.damp_fraction < 0.2,
             qPrintable(QString::number(g.damp_fraction)));
    QVERIFY(std::abs(g.damp_abs - float(g.damp_fraction) * 0.95f * m) < 1e-3f * m);
    QVERIFY(g.note.find("model.layers.7.mlp.up_proj") != std::string::npos);
    QVERIFY(g.note.find("raised") != std::string::npos);
    QVERIFY(layout_consistent(g.weights, 15));
    // No raise without a failure.
    GptqOptions plain;
    const GptqResult ok = gptq_quantize(W, X.transpose() * X, plain);
    QCOMPARE(ok.damp_raises, 0);
    QCOMPARE(ok.damp_fraction, 0.01);
    QVERIFY(ok.note.empty());
  }

  void fallbackToRtnWhenDampingCannotHelp() {
    // Eigenvalues of [[1, 2], [2, 1]] are 3 and -1, mean diagonal 1: it takes damping > 1,
    // beyond the bound, so GPTQ gives up and quantizes with RTN.
    Matrix H(2, 2);
    H << 1, 2, 2, 1;
    const Matrix W = test::random_matrix(3, 2, 14);
    GptqOptions o;
    o.quant = test::quant_config(4, false);
    o.layer = "layers.0.q";
    o.act_order = true;
    const GptqResult g = gptq_quantize(W, H, o);
    QVERIFY(g.fell_back_to_rtn);
    QVERIFY(g.perm.empty());
    QVERIFY(g.damp_raises > 0);
    QVERIFY(g.weights.Q == rtn_quantize(W, o.quant).Q);
    QVERIFY(g.note.find("layers.0.q") != std::string::npos);
    QVERIFY(g.note.find("RTN") != std::string::npos);
    // Without the raise, it falls back at once.
    o.damp_step = 0;
    const GptqResult g0 = gptq_quantize(W, H, o);
    QVERIFY(g0.fell_back_to_rtn);
    QCOMPARE(g0.damp_raises, 0);
    // And when fallback is refused, the error names the layer.
    o.fallback_to_rtn = false;
    try {
      gptq_quantize(W, H, o);
      QFAIL("no exception");
    } catch (const Error& e) {
      QVERIFY(std::string(e.what()).find("layers.0.q") != std::string::npos);
    }
  }

  void nonFiniteInputsNameTheLayer() {
    Matrix W = test::random_matrix(4, 6, 15);
    const Matrix H = Matrix::Identity(6, 6);
    GptqOptions o;
    o.layer = "model.layers.3.self_attn.v_proj";
    W(1, 2) = std::numeric_limits<float>::quiet_NaN();
    try {
      gptq_quantize(W, H, o);
      QFAIL("no exception for NaN in W");
    } catch (const Error& e) {
      const std::string msg = e.what();
      QVERIFY2(msg.find("model.layers.3.self_attn.v_proj") != std::string::npos, e.what());
      QVERIFY2(msg.find("[4, 6]") != std::string::npos, e.what());
    }
    W(1, 2) = 0;
    Matrix Hbad = H;
    Hbad(3, 3) = std::numeric_limits<float>::infinity();
    try {
      gptq_quantize(W, Hbad, o);
      QFAIL("no exception for Inf in H");
    } catch (const Error& e) {
      QVERIFY2(std::string(e.what()).find("v_proj") != std::string::npos, e.what());
    }
    try {
      gptq_quantize(W, Matrix::Identity(5, 5), o);
      QFAIL("no exception for a wrong Hessian shape");
    } catch (const Error& e) {
      QVERIFY2(std::string(e.what()).find("[5, 5]") != std::string::npos, e.what());
    }
    HessianAccumulator acc(6, "model.layers.3.self_attn.v_proj");
    Matrix X = test::random_matrix(3, 6, 16);
    X(0, 0) = std::numeric_limits<float>::quiet_NaN();
    QVERIFY_THROWS_EXCEPTION(Error, acc.add_batch(X, 1));
    QVERIFY_THROWS_EXCEPTION(Error, acc.add_batch(test::random_matrix(3, 5, 1), 1));
  }

  void cancelBetweenBlocks() {
    const Matrix W = test::random_matrix(4, 40, 17);
    GptqOptions o;
    o.blocksize = 8;
    int calls = 0;
    o.keep_going = [&](double) { return ++calls < 2; };
    QVERIFY_THROWS_EXCEPTION(Cancelled, gptq_quantize(W, Matrix::Identity(40, 40), o));
    QCOMPARE(calls, 2);
  }

  void hessianRunningMean() {
    // Batches of 1 and 3 sequences: H = (2 / 4) * sum over all tokens of x x^T.
    const Matrix X = test::random_matrix(40, 12, 18);
    HessianAccumulator acc(12, "h");
    acc.add_batch(X.topRows(10), 1);
    acc.add_batch(X.bottomRows(30), 3);
    QCOMPARE(acc.n_samples(), int64_t(4));
    const Eigen::MatrixXd expect = 0.5 * X.cast<double>().transpose() * X.cast<double>();
    const Eigen::MatrixXd got = acc.H().cast<double>();
    QVERIFY2((got - expect).norm() <= 1e-5 * expect.norm(),
             qPrintable(QString::number((got - expect).norm() / expect.norm())));
    QVERIFY(acc.H() == acc.H().transpose());
    QCOMPARE(acc.dead_columns(), int64_t(0));
  }

  void choleskyInverseMatchesDouble() {
    // Sizes that exercise the recursion (leaf 256, two levels at 600) and odd splits; compare the
    // fp32 upper factor of H^-1 with one computed in double.
    for (int K : {7, 129, 300, 600}) {
      const Matrix X = correlated_inputs(2 * K, K, 19);
      Matrix H = X.transpose() * X / float(2 * K);
      H.diagonal().array() += 0.01f * H.diagonal().mean();
      Matrix Hinv;
      QVERIFY(cpu_backend().cholesky_inverse_upper(H, Hinv));
      const Eigen::MatrixXd Hd = H.cast<double>();
      const Eigen::MatrixXd inv = Hd.llt().solve(Eigen::MatrixXd::Identity(K, K));
      const Eigen::MatrixXd U = inv.llt().matrixU();
      const double rel = (Hinv.cast<double>() - U).norm() / U.norm();
      QVERIFY2(rel < 1e-4, qPrintable(QString("K %1: %2").arg(K).arg(rel)));
      QVERIFY(Hinv.triangularView<Eigen::StrictlyLower>().toDenseMatrix().isZero(0));
    }
    Matrix bad(2, 2);
    bad << 1, 2, 2, 1;
    Matrix Hinv;
    QVERIFY(!cpu_backend().cholesky_inverse_upper(bad, Hinv));
    Matrix big_bad = Matrix::Identity(200, 200);
    big_bad(150, 150) = -1;
    QVERIFY(!cpu_backend().cholesky_inverse_upper(big_bad, Hinv));
  }

  // The shared factor (one Cholesky of J Hq J and one triangular inverse) against the direct
  // computation in double, Hq = P^T H' P + damp I: H' with dead diagonals set to 1, P the
  // act-order permutation, damp the damping that succeeded (raised when needed).
  void factorMatchesTheDirectComputation_data() {
    QTest::addColumn<bool>("dead");
    QTest::addColumn<bool>("act_order");
    QTest::addColumn<bool>("raise");
    QTest::newRow("plain") << false << false << false;
    QTest::newRow("dead inputs") << true << false << false;
    QTest::newRow("act-order") << false << true << false;
    QTest::newRow("dead, act-order, damping raised") << true << true << true;
  }
  void factorMatchesTheDirectComputation() {
    QFETCH(bool, dead);
    QFETCH(bool, act_order);
    QFETCH(bool, raise);
    const int K = 300;
    const Matrix H = test_hessian(K, 23, dead, raise);
    GptqOptions o;
    o.act_order = act_order;
    HessianFactor f = factor_hessian(H, o);
    QVERIFY(!f.failed);
    QCOMPARE(f.dead_columns, int64_t(dead ? 3 : 0));
    QCOMPARE(f.damp_raises > 0, raise);
    f.invert();
    // The direct computation.
    MatrixD Hq = H.cast<double>();
    for (int i = 0; i < K; ++i)
      if (Hq(i, i) == 0) Hq(i, i) = 1;
    if (act_order) {
      QCOMPARE(f.perm, act_order_permutation(Hq.cast<float>().diagonal()));
      const Eigen::Map<const Eigen::VectorXi> p(f.perm.data(), K);
      Hq = MatrixD(Hq(p, p));
    }
    Hq.diagonal().array() += double(f.damp_abs);
    const MatrixD inv = Hq.llt().solve(MatrixD::Identity(K, K));
    const MatrixD U = inv.llt().matrixU();
    const double rel = (f.M.cast<double>() - U).norm() / U.norm();
    QVERIFY2(rel < 1e-4, qPrintable(QString("relative difference %1").arg(rel)));
    QVERIFY(f.M.triangularView<Eigen::StrictlyLower>().toDenseMatrix().isZero(0));
    // GPTQ on the shared factor gives the codes of GPTQ on H.
    const Matrix W = test::random_matrix(40, K, 24);
    o.quant = test::quant_config(4, true, 32);
    QVERIFY(gptq_quantize(W, f, o).weights.codes == gptq_quantize(W, H, o).weights.codes);
  }

  // The errors of pipeline/layer_metrics.h against the direct product tr(D H D^T) in double:
  // from the Cholesky factor (the reference and RTN) and from GPTQ's own loss (GPTQ).
  void errorsAreTheDirectProduct_data() { factorMatchesTheDirectComputation_data(); }
  void errorsAreTheDirectProduct() {
    QFETCH(bool, dead);
    QFETCH(bool, act_order);
    QFETCH(bool, raise);
    const int K = 256, N = 96;
    const Matrix H = test_hessian(K, 31, dead, raise);
    const Matrix W = test::random_matrix(N, K, 32);
    GptqOptions o;
    o.quant = test::quant_config(4, true, 32);
    o.act_order = act_order;
    auto direct = [&](const Matrix& D) {
      const MatrixD Dd = D.cast<double>();
      return (Dd * H.cast<double>()).cwiseProduct(Dd).sum();
    };
    HessianFactor f = factor_hessian(H, o);
    QCOMPARE(f.damp_raises > 0, raise);
    const Matrix rtn = rtn_quantize(W, o.quant).Q;
    MatrixPool pool(size_t(1) << 30);
    for (const Matrix* Q : {static_cast<const Matrix*>(nullptr), &rtn}) {
      const Matrix E = Q ? Matrix(W - rtn) : W;
      const double want = direct(E), got = weighted_square(W, Q, f, pool);
      QVERIFY2(std::abs(got / want - 1) < 1e-5, qPrintable(QString("%1 vs %2").arg(got).arg(want)));
      // W - Q read on the fly or formed first: the same arithmetic, the same bits.
      QCOMPARE(got, weighted_square(E, nullptr, f, pool));
      QVERIFY(std::abs(weighted_square_direct(E, H, cpu_backend()) / want - 1) < 1e-5);
    }
    f.invert();
    const GptqResult g = gptq_quantize(W, f, o);
    const double want = direct(W - g.weights.Q), got = gptq_weighted_square(g, W, f);
    QVERIFY2(std::abs(got / want - 1) < 1e-4, qPrintable(QString("%1 vs %2").arg(got).arg(want)));
  }

  void backendGemmAndHessian() {
    const Matrix X = test::random_matrix(33, 20, 20), W = test::random_matrix(7, 20, 21);
    Matrix Y(33, 7);
    cpu_backend().gemm_xwt(X, W, Y);
    QVERIFY((Y - X * W.transpose()).norm() <= 1e-5f * Y.norm());
    Matrix H = Matrix::Zero(20, 20);
    cpu_backend().accumulate_hessian(H, X, 0.5f);
    const Matrix expect = 0.25f * X.transpose() * X;
    QVERIFY((H - expect).norm() <= 1e-5f * expect.norm());
  }
};

QTEST_GUILESS_MAIN(TestGptq)
#include "tst_gptq.moc"
