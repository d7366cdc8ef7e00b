// The CUDA backend (kernels/) against the CPU backend, its specification: every operation of
// core/backend/backend.h on LLaMA-7B shapes (hidden 4096, MLP 11008, 2048 calibration tokens)
// and on edge shapes (one row, one column, sizes that are not multiples of 32 or 128, strided
// views, a dead input column, blocks too wide for shared memory). Label gpu: skips with the
// reason when no CUDA device answers. GPTQW_CUDA_TEST_QUICK=1 runs the edge shapes only.
//
// Tolerances, and why:
//  - fp32 GEMMs (accumulate_hessian, lazy_batch_update, gemm_xwt): relative Frobenius error
//    1e-5. Both sides are plain fp32 (no TF32) and differ only in summation order, which
//    costs about sqrt(K) * 2^-24 ~ 1e-6 relative at K = 4096.
//  - cholesky_inverse_upper: both are fp32 factorisations of the same matrix and differ by
//    rounding amplified by the conditioning; the GPU factor must invert H about as well as the
//    CPU one (residual of U^T U H v = v at most 3x the CPU's, plus 1e-6) and stay within 1e-3
//    of it (relative Frobenius). Measured with a second fp32 algorithm (Eigen's LLT, triangular
//    solve, LLT) against the CPU backend on these inputs: 1.9e-4 apart at K 4096 (2048
//    tokens, 1% damping), 7.9e-5 at K 4000; residuals within 3% of each other.
//  - gptq_block: the kernel does the CPU backend's fp32 operations in the same order
//    (kernels/cuda_kernels.cuh), so for the same inputs the results are equal bit for bit
//    against a CPU build that fuses w - e * h into one FMA (-march=native on an FMA machine).
//    A CPU build that does not fuse it differs in the last bit of the updated weights, which
//    changes a code only where x / scale sits within an ulp of a rounding tie: at most
//    N / 1000 + 1 rows may have a different code; every other row must agree exactly in
//    codes and Q, and to 1e-5 in Err.
//  - a whole layer (gptq_quantize): the two Hinv differ in their last bits; a code then flips
//    where a weight sat near a rounding boundary, and the rest of its row follows another,
//    equally good path. With the second fp32 Cholesky above, 3.2% of the codes of the
//    4096 x 4096 layer differ while the loss and the output error ||(W - Q) X^T|| agree to
//    1.3e-4. Bounds: at most 10% of codes differ; loss and output error agree to 0.5%.
#include <QTest>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>

#include "backend/backend.h"
#include "backend/cpu_backend.h"
#include "common/error.h"
#include "quant/gptq.h"
#include "quant/quantizer.h"
#include "test_matrices.h"

using namespace gptqw;
using Eigen::Index;

namespace {

bool quick() {
  const char* q = std::getenv("GPTQW_CUDA_TEST_QUICK");
  return q && *q && std::string(q) != "0";
}

// Activations shaped like a transformer's: channels of different scales, a few outlier
// channels 20x larger, and a shared low-rank component that correlates the channels.
Matrix activations(Index T, Index K, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(0.5f, 2.0f);
  Matrix X = test::random_matrix(T, K, seed + 1);
  for (Index k = 0; k < K; ++k) X.col(k) *= uni(rng) * (k % 997 == 3 ? 20.0f : 1.0f);
  const Index r = std::min<Index>(16, K);
  X.noalias() += test::random_matrix(T, r, seed + 2) * test::random_matrix(r, K, seed + 3, 0.5f);
  return X;
}

// Weights: N(0, 0.02) with a few large ones.
Matrix weights(Index N, Index K, unsigned seed) {
  Matrix W = test::random_matrix(N, K, seed, 0.02f);
  for (Index i = 0; i < W.size(); i += 4099) W.data()[i] *= 10.0f;
  return W;
}

double rel(const Eigen::Ref<const Matrix>& a, const Eigen::Ref<const Matrix>& b) {
  const double den = b.cast<double>().norm();
  const double num = (a.cast<double>() - b.cast<double>()).norm();
  return den > 0 ? num / den : num;
}

// H = (2 / T) X^T X through the CPU backend, plus damping damp_fraction * mean(diag) like gptq.
Matrix damped_hessian(const Matrix& X, double damp_fraction = 0.01) {
  Matrix H = Matrix::Zero(X.cols(), X.cols());
  cpu_backend().accumulate_hessian(H, X, float(std::sqrt(2.0 / double(X.rows()))));
  const float mean = float(H.diagonal().cast<double>().mean());
  H.diagonal().array() += float(damp_fraction) * mean;
  return H;
}

// The dead input d as GPTQ's factor_hessian leaves it: H[d, :] = H[:, d] = 0, H[d, d] = 1.
void kill_input(Matrix& H, Index d) {
  H.row(d).setZero();
  H.col(d).setZero();
  H(d, d) = 1.0f;
}

// max over v of |U^T U H v - v| / |v| for a few random v, in double: how well U^T U
// inverts H.
double inverse_residual(const Matrix& U, const Matrix& H) {
  const Eigen::MatrixXd Ud = U.cast<double>(), Hd = H.cast<double>();
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  double worst = 0;
  for (int k = 0; k < 4; ++k) {
    Eigen::VectorXd v(H.rows());
    for (Index i = 0; i < v.size(); ++i) v(i) = normal(rng);
    const Eigen::VectorXd Hv = Hd * v;
    const Eigen::VectorXd r = Ud.transpose() * (Ud * Hv) - v;
    worst = std::max(worst, r.norm() / v.norm());
  }
  return worst;
}

}  // namespace

class TestCudaBackend : public QObject {
  Q_OBJECT

  Backend* gpu_ = nullptr;

 private slots:
  void initTestCase() {
    qInfo("CUDA: %s", cuda_status().c_str());
    try {
      gpu_ = &backend_for(Device::cuda);
    } catch (const ConfigError& e) {
      QSKIP(e.what());
    }
    QVERIFY(gpu_->name().rfind("cuda:", 0) == 0);
    QCOMPARE(&backend_for(Device::auto_), gpu_);
    QCOMPARE(&best_backend(), gpu_);
    QCOMPARE(&backend_for(Device::cpu), &cpu_backend());
    QCOMPARE(QString::fromStdString(cuda_status()).left(int(gpu_->name().size())),
             QString::fromStdString(gpu_->name()));
  }

  void accumulateHessian_data() {
    QTest::addColumn<int>("T");
    QTest::addColumn<int>("K");
    QTest::addColumn<bool>("strided");
    if (!quick()) {
      QTest::newRow("llama K 4096, 2048 tokens") << 2048 << 4096 << false;
      QTest::newRow("K 4000, strided X") << 512 << 4000 << true;
    }
    QTest::newRow("K 1") << 5 << 1 << false;
    QTest::newRow("T 1") << 1 << 40 << false;
    QTest::newRow("K 33 strided") << 70 << 33 << true;
    QTest::newRow("K 300") << 257 << 300 << false;
    QTest::newRow("no tokens") << 0 << 16 << false;
  }

  void accumulateHessian() {
    QFETCH(int, T);
    QFETCH(int, K);
    QFETCH(bool, strided);
    // H already holds an earlier batch (the update is H += ..., not H = ...).
    const Matrix X0 = activations(16, K, 1);
    Matrix H0 = Matrix::Zero(K, K);
    cpu_backend().accumulate_hessian(H0, X0, 0.25f);
    const Matrix Xbig = activations(T, K + (strided ? 7 : 0), 2);
    const Eigen::Ref<const Matrix> X = Xbig.leftCols(K);
    const float s = T > 0 ? float(std::sqrt(2.0 / T)) : 1.0f;
    Matrix Hc = H0, Hg = H0;
    cpu_backend().accumulate_hessian(Hc, X, s);
    gpu_->accumulate_hessian(Hg, X, s);
    const double e = rel(Hg, Hc);
    qInfo("T %d K %d: relative difference %.3g", T, K, e);
    QVERIFY2(e <= 1e-5, qPrintable(QString::number(e)));
    QVERIFY(Hg == Hg.transpose());
    if (T == 0) QVERIFY(Hg == H0);
  }

  void choleskyInverse_data() {
    QTest::addColumn<int>("K");
    QTest::addColumn<int>("T");
    QTest::addColumn<int>("dead");
    if (!quick()) {
      // Fewer tokens than inputs: H is singular until damped, as with real calibration.
      QTest::newRow("llama K 4096, 2048 tokens") << 4096 << 2048 << -1;
      QTest::newRow("K 4000, dead input 1234") << 4000 << 4096 << 1234;
    }
    QTest::newRow("K 1") << 1 << 4 << -1;
    QTest::newRow("K 7") << 7 << 20 << -1;
    QTest::newRow("K 129, dead input 0") << 129 << 64 << 0;
    QTest::newRow("K 600") << 600 << 1200 << -1;
  }

  void choleskyInverse() {
    QFETCH(int, K);
    QFETCH(int, T);
    QFETCH(int, dead);
    Matrix H = damped_hessian(activations(T, K, 3));
    if (dead >= 0) kill_input(H, dead);
    Matrix Uc, Ug;
    QVERIFY(cpu_backend().cholesky_inverse_upper(H, Uc));
    QVERIFY(gpu_->cholesky_inverse_upper(H, Ug));
    QCOMPARE(Ug.rows(), Index(K));
    QCOMPARE(Ug.cols(), Index(K));
    QVERIFY(Ug.triangularView<Eigen::StrictlyLower>().toDenseMatrix().isZero(0));
    QVERIFY((Ug.diagonal().array() > 0).all());
    const double e = rel(Ug, Uc);
    const double rc = inverse_residual(Uc, H), rg = inverse_residual(Ug, H);
    qInfo("K %d: relative difference %.3g; residual |U^T U H v - v| / |v|: cpu %.3g, cuda %.3g", K,
          e, rc, rg);
    QVERIFY2(rg <= 3 * rc + 1e-6, qPrintable(QString("cuda %1, cpu %2").arg(rg).arg(rc)));
    QVERIFY2(e <= 1e-3, qPrintable(QString::number(e)));
    if (dead >= 0) {
      // Nothing couples the dead input to the others: its row of Hinv is e_d exactly.
      QCOMPARE(Ug(dead, dead), Uc(dead, dead));
      QVERIFY(Ug.row(dead).rightCols(K - dead - 1).isZero(0));
    }
  }

  void choleskyFailures() {
    // Not positive definite, or not finite: false, as the CPU backend says, and the backend
    // works on afterwards (no sticky CUDA error).
    Matrix U;
    Matrix bad(2, 2);
    bad << 1, 2, 2, 1;
    QVERIFY(!cpu_backend().cholesky_inverse_upper(bad, U));
    QVERIFY(!gpu_->cholesky_inverse_upper(bad, U));
    Matrix big_bad = Matrix::Identity(300, 300);
    big_bad(250, 250) = -1;
    QVERIFY(!gpu_->cholesky_inverse_upper(big_bad, U));
    Matrix nan = Matrix::Identity(64, 64);
    nan(10, 10) = std::numeric_limits<float>::quiet_NaN();
    QVERIFY(!cpu_backend().cholesky_inverse_upper(nan, U));
    QVERIFY(!gpu_->cholesky_inverse_upper(nan, U));
    Matrix inf = Matrix::Identity(64, 64);
    inf(3, 60) = inf(60, 3) = std::numeric_limits<float>::infinity();
    QVERIFY(!gpu_->cholesky_inverse_upper(inf, U));
    const Matrix H = damped_hessian(activations(100, 50, 4));
    QVERIFY(gpu_->cholesky_inverse_upper(H, U));
    Matrix Uc;
    QVERIFY(cpu_backend().cholesky_inverse_upper(H, Uc));
    QVERIFY(rel(U, Uc) <= 1e-4);
    Matrix empty(0, 0);
    QVERIFY(gpu_->cholesky_inverse_upper(empty, U));
    QCOMPARE(U.size(), Index(0));
  }

  void gptqBlock_data() {
    QTest::addColumn<int>("N");
    QTest::addColumn<int>("B");
    QTest::addColumn<int>("bits");
    QTest::addColumn<int>("gs");         // group size, -1 per row
    QTest::addColumn<int>("i1");         // first column of the block in the layer
    QTest::addColumn<int>("dead");       // dead column within the block, or -1
    QTest::addColumn<bool>("shuffled");  // act-order with static groups: col_group in any order
    if (!quick()) {
      QTest::newRow("llama N 4096, B 128, per row") << 4096 << 128 << 4 << -1 << 0 << -1 << false;
      QTest::newRow("llama N 4096, B 128, g128") << 4096 << 128 << 4 << 128 << 1024 << -1 << false;
      QTest::newRow("N 4096, ragged last B 77 of K 4000, g32")
          << 4096 << 77 << 4 << 32 << 3923 << -1 << false;
      QTest::newRow("N 11008, B 128, 3-bit g128, dead column 17")
          << 11008 << 128 << 3 << 128 << 256 << 17 << false;
      QTest::newRow("N 4096, B 128, act-order static g128")
          << 4096 << 128 << 4 << 128 << 0 << -1 << true;
    }
    QTest::newRow("N 1, B 1") << 1 << 1 << 4 << -1 << 0 << -1 << false;
    QTest::newRow("N 33, B 5, 2-bit") << 33 << 5 << 2 << -1 << 0 << -1 << false;
    QTest::newRow("N 100, B 128, 8-bit g16, dead column 0")
        << 100 << 128 << 8 << 16 << 0 << 0 << false;
    QTest::newRow("N 64, B 77, g32 from column 40") << 64 << 77 << 4 << 32 << 40 << -1 << false;
    // Tiles of 3 x 32 x B floats: B 512 needs opt-in shared memory (or, below 200 KiB per
    // block, the global scratch path); B 1024 always takes the scratch path.
    QTest::newRow("N 70, B 512, g128") << 70 << 512 << 4 << 128 << 0 << -1 << false;
    QTest::newRow("N 40, B 1024, per row") << 40 << 1024 << 4 << -1 << 0 << -1 << false;
  }

  void gptqBlock() {
    QFETCH(int, N);
    QFETCH(int, B);
    QFETCH(int, bits);
    QFETCH(int, gs);
    QFETCH(int, i1);
    QFETCH(int, dead);
    QFETCH(bool, shuffled);
    const QuantConfig qc = test::quant_config(bits, false, gs);
    // The layer has K = i1 + B columns; with act-order and static groups a block may use any
    // of a 4096-column layer's 32 groups, in any order.
    const Index K = i1 + B, G = shuffled ? 32 : group_count(K, gs);

    Matrix W1 = weights(N, B, 5);
    Matrix H = damped_hessian(activations(std::max(2 * B, 64), B, 6));
    if (dead >= 0) {
      W1.col(dead).setZero();
      kill_input(H, dead);
    }
    Matrix Hinv1;
    QVERIFY(cpu_backend().cholesky_inverse_upper(H, Hinv1));

    // The grid rows the block uses, found on its columns; every other row is NaN, since only
    // the named groups need to be filled.
    std::vector<int32_t> col_group(B);
    std::mt19937 rng(8);
    for (int j = 0; j < B; ++j)
      col_group[j] = gs > 0 ? int32_t(shuffled ? Index(rng() % G) : (i1 + j) / gs) : 0;
    Matrix scales = Matrix::Constant(G, N, std::numeric_limits<float>::quiet_NaN());
    Matrix zeros = scales;
    for (int j = 0; j < B; ++j) {
      const int32_t g = col_group[j];
      if (!std::isnan(scales(g, 0))) continue;
      const Index c0 = gs > 0 && !shuffled ? std::max<Index>(0, Index(g) * gs - i1) : 0;
      const Index c1 = gs > 0 && !shuffled ? std::min<Index>(B, Index(g + 1) * gs - i1) : B;
      const Grid grid = find_grid(W1.middleCols(c0, c1 - c0), qc);
      scales.row(g) = grid.scale.transpose();
      zeros.row(g) = grid.zero.transpose();
    }

    // Outputs as views into layer-wide matrices, as gptq_quantize passes them.
    Matrix Qc = Matrix::Zero(N, K), Qg = Qc, Ec(N, B), Eg(N, B);
    Codes Cc = Codes::Zero(N, K), Cg = Cc;
    Matrix Wc = W1, Wg = W1;
    const double lc = cpu_backend().gptq_block(Wc, Hinv1, scales, zeros, col_group, qc.maxq(), false,
                                               Qc.middleCols(i1, B), Ec, Cc.middleCols(i1, B));
    const double lg = gpu_->gptq_block(Wg, Hinv1, scales, zeros, col_group, qc.maxq(), false,
                                       Qg.middleCols(i1, B), Eg, Cg.middleCols(i1, B));
    QVERIFY(Qg.leftCols(i1).isZero(0));
    QVERIFY((Cg.leftCols(i1).array() == 0).all());

    Index rows_differing = 0, codes_differing = 0;
    std::vector<Index> same;
    for (Index r = 0; r < N; ++r) {
      const Index d = (Cg.row(r).array() != Cc.row(r).array()).count();
      codes_differing += d;
      if (d > 0)
        ++rows_differing;
      else
        same.push_back(r);
    }
    const Eigen::Map<const Eigen::Matrix<Index, Eigen::Dynamic, 1>> ix(same.data(),
                                                                       Index(same.size()));
    const double e_err = rel(Eg(ix, Eigen::all), Ec(ix, Eigen::all));
    const double e_loss = std::abs(lg - lc) / std::max(lc, 1e-30);
    qInfo("N %d B %d: %lld codes in %lld rows differ; Err %.3g, loss %.3g (relative)", N, B,
          (long long)codes_differing, (long long)rows_differing, e_err, e_loss);
    QVERIFY2(rows_differing <= N / 1000 + 1, qPrintable(QString::number(rows_differing)));
    QVERIFY(Qg(ix, Eigen::all) == Qc(ix, Eigen::all));
    QVERIFY2(e_err <= 1e-5, qPrintable(QString::number(e_err)));
    QVERIFY2(e_loss <= (rows_differing ? 1e-3 : 1e-9), qPrintable(QString::number(e_loss)));
    QVERIFY((Cg.array() <= qc.maxq()).all());
    if (dead >= 0) {
      // A zero weight on an integer zero point quantizes to exactly 0 with no error.
      QVERIFY(Qg.col(i1 + dead).isZero(0));
      QVERIFY(Eg.col(dead).isZero(0));
    }
  }

  void gptqBlockTies() {
    // x / scale exactly halfway between integers: round half to even, as torch.round does;
    // and the clamp at both ends. Hinv1 = I, so no column affects another.
    const float x[] = {0.125f, 0.375f, 0.625f, -0.125f, -0.375f, 10.0f, -10.0f, 0.0f};
    const uint8_t expect[] = {8, 10, 10, 8, 6, 15, 0, 8};
    const Index N = 40, B = 8;
    Matrix W1(N, B);
    for (Index r = 0; r < N; ++r)
      for (Index j = 0; j < B; ++j) W1(r, j) = x[j];
    const Matrix Hinv1 = Matrix::Identity(B, B);
    const Matrix scales = Matrix::Constant(1, N, 0.25f), zeros = Matrix::Constant(1, N, 8.0f);
    const std::vector<int32_t> col_group(B, 0);
    Matrix Q(N, B), E(N, B), Qc(N, B), Ec(N, B);
    Codes C(N, B), Cc(N, B);
    Matrix Wg = W1, Wc = W1;
    const double lg = gpu_->gptq_block(Wg, Hinv1, scales, zeros, col_group, 15, false, Q, E, C);
    const double lc = cpu_backend().gptq_block(Wc, Hinv1, scales, zeros, col_group, 15, false, Qc, Ec, Cc);
    for (Index r = 0; r < N; ++r)
      for (Index j = 0; j < B; ++j) QCOMPARE(int(C(r, j)), int(expect[j]));
    QVERIFY(C == Cc);
    QVERIFY(Q == Qc);
    QVERIFY(E == Ec);
    QVERIFY(std::abs(lg - lc) <= 1e-12 * lc);
  }

  void gptqBlockRejectsBadGroups() {
    // An index the kernel would read out of bounds is refused on the host, with the shapes.
    Matrix W1 = weights(8, 4, 9), Q(8, 4), E(8, 4);
    Codes C(8, 4);
    const Matrix Hinv1 = Matrix::Identity(4, 4), scales = Matrix::Ones(2, 8), zeros = scales;
    const std::vector<int32_t> bad = {0, 1, 2, 0};
    QVERIFY_THROWS_EXCEPTION(Error, gpu_->gptq_block(W1, Hinv1, scales, zeros, bad, 15, false, Q, E, C));
    const std::vector<int32_t> good = {0, 1, 1, 0};
    gpu_->gptq_block(W1, Hinv1, scales, zeros, good, 15, false, Q, E, C);
  }

  void lazyBatchUpdate_data() {
    QTest::addColumn<int>("N");
    QTest::addColumn<int>("K");
    QTest::addColumn<int>("i1");
    QTest::addColumn<int>("B");
    if (!quick()) {
      QTest::newRow("llama N 4096, K 4096, first block") << 4096 << 4096 << 0 << 128;
      QTest::newRow("N 11008, K 4000, ragged B 77 at 3840") << 11008 << 4000 << 3840 << 77;
    }
    QTest::newRow("N 1, K 3, B 1") << 1 << 3 << 0 << 1;
    QTest::newRow("N 33, K 300, B 128 at 128") << 33 << 300 << 128 << 128;
    QTest::newRow("last block: nothing left") << 20 << 100 << 50 << 50;
  }

  void lazyBatchUpdate() {
    QFETCH(int, N);
    QFETCH(int, K);
    QFETCH(int, i1);
    QFETCH(int, B);
    const Index i2 = i1 + B;
    // W is the whole layer: the update touches W[:, i2:] through a strided view only.
    const Matrix W = weights(N, K, 10);
    const Matrix Err1 = test::random_matrix(N, B, 11, 0.01f);
    const Matrix Hinv = test::random_matrix(B, K, 12, 0.1f);  // rows i1..i2 of an Hinv, say
    Matrix Wc = W, Wg = W;
    cpu_backend().lazy_batch_update(Wc.rightCols(K - i2), Err1, Hinv.rightCols(K - i2));
    gpu_->lazy_batch_update(Wg.rightCols(K - i2), Err1, Hinv.rightCols(K - i2));
    QVERIFY(Wg.leftCols(i2) == W.leftCols(i2));
    if (K == i2) {
      QVERIFY(Wg == W);
      return;
    }
    // Compare the updates themselves, not the updated weights (which would hide them).
    const Matrix dc = Wc - W, dg = Wg - W;
    const double e = rel(dg, dc), ew = rel(Wg, Wc);
    qInfo("N %d, %lld columns left, B %d: update %.3g, weights %.3g (relative)", N,
          (long long)(K - i2), B, e, ew);
    QVERIFY2(e <= 1e-5, qPrintable(QString::number(e)));
    QVERIFY2(ew <= 1e-6, qPrintable(QString::number(ew)));
  }

  void gemmXwt_data() {
    QTest::addColumn<int>("T");
    QTest::addColumn<int>("K");
    QTest::addColumn<int>("N");
    QTest::addColumn<bool>("strided");
    if (!quick()) {
      QTest::newRow("llama q_proj: T 2048, K 4096, N 4096") << 2048 << 4096 << 4096 << false;
      QTest::newRow("K 4000, strided X, W and Y") << 1024 << 4000 << 4096 << true;
      QTest::newRow("llama down_proj: T 512, K 11008, N 4096") << 512 << 11008 << 4096 << false;
    }
    QTest::newRow("1 x 1 x 1") << 1 << 1 << 1 << false;
    QTest::newRow("T 3, K 129, N 33, strided") << 3 << 129 << 33 << true;
    QTest::newRow("K 0: Y = 0") << 4 << 0 << 5 << false;
  }

  void gemmXwt() {
    QFETCH(int, T);
    QFETCH(int, K);
    QFETCH(int, N);
    QFETCH(bool, strided);
    const Index pad = strided ? 3 : 0;
    const Matrix Xb = activations(T, K + pad, 13), Wb = weights(N, K + pad, 14);
    const Eigen::Ref<const Matrix> X = Xb.rightCols(K), W = Wb.leftCols(K);
    Matrix Yc = Matrix::Constant(T, N + pad, 7.0f), Yg = Yc;
    cpu_backend().gemm_xwt(X, W, Yc.leftCols(N));
    gpu_->gemm_xwt(X, W, Yg.leftCols(N));
    QVERIFY(Yg.rightCols(pad) == Yc.rightCols(pad));
    const double e = rel(Yg, Yc);
    qInfo("T %d K %d N %d: relative difference %.3g", T, K, N, e);
    QVERIFY2(e <= 1e-5, qPrintable(QString::number(e)));
    if (K == 0) QVERIFY(Yg.leftCols(N).isZero(0));
  }

  void wholeLayer() {
    // gptq_quantize on one LLaMA layer through each backend (every operation together, with
    // the lazy batch update feeding later blocks).
    const Index N = quick() ? 96 : 4096, K = quick() ? 300 : 4096, T = quick() ? 256 : 2048;
    const Matrix X = activations(T, K, 15);
    const Matrix W = weights(N, K, 16);
    Matrix H = Matrix::Zero(K, K);
    cpu_backend().accumulate_hessian(H, X, float(std::sqrt(2.0 / double(T))));
    H.row(5).setZero();  // a dead input
    H.col(5).setZero();
    GptqOptions o;
    o.quant = test::quant_config(4, true, 128);
    o.act_order = true;
    o.layer = "test";
    const GptqResult c = gptq_quantize(W, H, o, cpu_backend());
    const GptqResult g = gptq_quantize(W, H, o, *gpu_);
    QCOMPARE(g.dead_columns, c.dead_columns);
    QCOMPARE(g.damp_raises, c.damp_raises);
    QVERIFY(!g.fell_back_to_rtn);
    QVERIFY(g.perm == c.perm);
    const Index differ = (g.weights.codes.array() != c.weights.codes.array()).count();
    const double frac = double(differ) / double(N * K);
    // Output error ||(W - Q) X^T|| of each, through the CPU backend.
    Matrix Yc(T, N), Yg(T, N);
    const Matrix Dc = W - c.weights.Q, Dg = W - g.weights.Q;
    cpu_backend().gemm_xwt(X, Dc, Yc);
    cpu_backend().gemm_xwt(X, Dg, Yg);
    const double oc = Yc.cast<double>().norm(), og = Yg.cast<double>().norm();
    qInfo(
        "N %lld K %lld: %.4f%% of codes differ; loss cpu %.6g cuda %.6g; output error cpu "
        "%.6g cuda %.6g; seconds cpu %.2f cuda %.2f",
        (long long)N, (long long)K, 100 * frac, c.loss, g.loss, oc, og, c.seconds, g.seconds);
    QVERIFY2(frac <= 0.10, qPrintable(QString::number(frac)));
    QVERIFY(std::abs(g.loss - c.loss) <= 0.005 * c.loss);
    QVERIFY(std::abs(og - oc) <= 0.005 * oc);
    QVERIFY(g.weights.scales.allFinite());
  }
};

QTEST_GUILESS_MAIN(TestCudaBackend)
#include "tst_cuda_backend.moc"
