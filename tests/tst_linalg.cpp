// Unit tests of core/linalg: every result is the one its stated operation order gives, bit for
// bit, on every kernel level this CPU runs and at every thread count (that is what makes the
// engine's numbers the same on every machine), and the factorizations are right, against
// double-precision Eigen.
#include <QTest>
#include <omp.h>

#include <Eigen/Cholesky>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "linalg/cpu_kernels.h"
#include "linalg/factor.h"
#include "linalg/gemm.h"
#include "linalg/reduce.h"
#include "test_matrices.h"

using namespace gptqw;
using namespace gptqw::linalg;

namespace {

std::vector<const CpuKernels*> levels() {
  std::vector<const CpuKernels*> out;
  for (KernelIsa isa : {KernelIsa::generic, KernelIsa::avx2, KernelIsa::avx512})
    if (const CpuKernels* k = cpu_kernels_for(isa)) out.push_back(k);
  return out;
}

bool same_bits(const Matrix& a, const Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// The definition of gemm(): each element sums runs of kDepthRun terms, each a chain of fused
// multiply-adds from +0, and adds the runs in order (assign: starting from the first run).
Matrix naive_gemm(const Matrix& C0, const Matrix& A, const Matrix& B, Update u) {
  Matrix C = C0;
  for (Eigen::Index i = 0; i < C.rows(); ++i)
    for (Eigen::Index j = 0; j < C.cols(); ++j) {
      float c = C(i, j);
      for (Eigen::Index k0 = 0; k0 < A.cols(); k0 += kDepthRun) {
        float p = 0.0f;
        for (Eigen::Index k = k0; k < std::min<Eigen::Index>(A.cols(), k0 + kDepthRun); ++k)
          p = std::fma(u == Update::subtract ? -A(i, k) : A(i, k), B(k, j), p);
        c = k0 == 0 && u == Update::assign ? p : c + p;
      }
      if (A.cols() == 0 && u == Update::assign) c = 0.0f;
      C(i, j) = c;
    }
  return C;
}

// A symmetric positive definite matrix with a spread of eigenvalues, as a Hessian 2/n X^T X
// plus damping is.
Matrix spd(Eigen::Index n, uint64_t seed) {
  const Matrix X = test::random_matrix(2 * n + 3, n, seed);
  Matrix H = X.transpose() * X * (2.0f / float(2 * n + 3));
  H.diagonal().array() += 0.01f * H.diagonal().mean();
  return H;
}

struct ThreadCount {
  int saved = omp_get_max_threads();
  explicit ThreadCount(int n) { omp_set_num_threads(n); }
  ~ThreadCount() { omp_set_num_threads(saved); }
};

}  // namespace

class TestLinalg : public QObject {
  Q_OBJECT
 private slots:
  void levelsAreListed() {
    // The generic level always runs; the chosen one is among those this CPU runs.
    QVERIFY(cpu_kernels_for(KernelIsa::generic) != nullptr);
    bool found = false;
    for (const CpuKernels* k : levels()) found = found || k == &cpu_kernels();
    QVERIFY(found);
    qInfo("kernel levels this CPU runs: %zu; in use: %s", levels().size(), cpu_kernels().name);
  }

  void gemmIsTheFmaChain_data() {
    QTest::addColumn<int>("M");
    QTest::addColumn<int>("N");
    QTest::addColumn<int>("K");
    // Edges of every micro-tile (mr 4/6/12, nr 4/16/32), more than one kc block (256) and
    // more than one task.
    QTest::newRow("1x1x1") << 1 << 1 << 1;
    QTest::newRow("7x5x3") << 7 << 5 << 3;
    QTest::newRow("13x33x17") << 13 << 33 << 17;
    QTest::newRow("64x64x600") << 64 << 64 << 600;
    QTest::newRow("9x8x700") << 9 << 8 << 700;  // narrow: the unpacked path over three runs
    QTest::newRow("150x70x257") << 150 << 70 << 257;
    QTest::newRow("300x97x40") << 300 << 97 << 40;
  }
  void gemmIsTheFmaChain() {
    QFETCH(int, M);
    QFETCH(int, N);
    QFETCH(int, K);
    const Matrix A = test::random_matrix(M, K, 1), B = test::random_matrix(K, N, 2),
                 C0 = test::random_matrix(M, N, 3);
    for (Update u : {Update::assign, Update::add, Update::subtract}) {
      const Matrix want = naive_gemm(C0, A, B, u);
      for (const CpuKernels* k : levels()) {
        ScopedKernels use(*k);
        for (int threads : {1, 2, 3}) {
          ThreadCount tc(threads);
          Matrix C = C0;
          matmul(C, A, B, u);
          QVERIFY2(same_bits(C, want), k->name);
          // The same product through transposed views (A^T and B^T stored).
          const Matrix At = A.transpose(), Bt = B.transpose();
          Matrix C2 = C0;
          gemm(mut_view(C2), view_t(At), view_t(Bt), u);
          QVERIFY2(same_bits(C2, want), k->name);
        }
      }
    }
  }

  void gemmLowerTriangle() {
    const int n = 77, K = 300;
    const Matrix X = test::random_matrix(K, n, 4), C0 = test::random_matrix(n, n, 5);
    const Matrix want = naive_gemm(C0, X.transpose(), X, Update::add);
    for (const CpuKernels* k : levels()) {
      ScopedKernels use(*k);
      Matrix C = C0;
      gemm(mut_view(C), view_t(X), view(X), Update::add, Part::lower);
      for (int i = 0; i < n; ++i)
        for (int j = 0; j <= i; ++j) QCOMPARE(C(i, j), want(i, j));
    }
  }

  void gemmBadShapes() {
    Matrix A(3, 4), B(5, 2), C(3, 2);
    QVERIFY_THROWS_EXCEPTION(Error, matmul(C, A, B));
    Matrix D(3, 4);
    QVERIFY_THROWS_EXCEPTION(Error, gemm(mut_view(D), view(A), view_t(A), Update::add, Part::lower));
    // K = 0: assign gives zeros, add leaves C.
    Matrix A0(2, 0), B0(0, 3), C1 = Matrix::Ones(2, 3);
    matmul(C1, A0, B0, Update::add);
    QCOMPARE(C1, Matrix(Matrix::Ones(2, 3)));
    matmul(C1, A0, B0);
    QCOMPARE(C1, Matrix(Matrix::Zero(2, 3)));
  }

  // U = chol(H^-1) upper, through the reversal identity, against double precision: the direct
  // definition (Cholesky of H, inverse, Cholesky of the inverse) in double, and U^T U H = I.
  void inverseCholeskyUpper_data() {
    QTest::addColumn<int>("n");
    for (int n : {1, 5, 64, 128, 129, 300, 520}) QTest::newRow(qPrintable(QString::number(n))) << n;
  }
  void inverseCholeskyUpper() {
    QFETCH(int, n);
    const Matrix H = spd(n, 10 + n);
    Matrix U;
    QVERIFY(inverse_cholesky_upper(H, U));
    const MatrixD Hd = H.cast<double>();
    const MatrixD Hinv = Hd.llt().solve(MatrixD::Identity(n, n));
    const MatrixD want = Hinv.llt().matrixU();
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < i; ++j) QCOMPARE(U(i, j), 0.0f);
    // fp32 rounding grows with the condition number (here up to ~1e3) and with n.
    const double err = (U.cast<double>() - want).norm() / want.norm();
    QVERIFY2(err < 2e-5, qPrintable(QString("relative error %1").arg(err)));
    const MatrixD I = U.cast<double>().transpose() * U.cast<double>() * Hd;
    QVERIFY((I - MatrixD::Identity(n, n)).norm() / std::sqrt(double(n)) < 1e-4);
    // The same bits on every level and thread count.
    for (const CpuKernels* k : levels()) {
      ScopedKernels use(*k);
      for (int threads : {1, 2}) {
        ThreadCount tc(threads);
        Matrix U2;
        QVERIFY(inverse_cholesky_upper(H, U2));
        QVERIFY2(same_bits(U, U2), k->name);
      }
    }
  }

  void inverseCholeskyFailsOnIndefinite() {
    Matrix H = spd(200, 7);
    H(150, 150) = -1.0f;  // not positive definite
    Matrix U;
    QVERIFY(!inverse_cholesky_upper(H, U));
    H = spd(20, 8);
    H(3, 3) = std::nanf("");
    QVERIFY(!inverse_cholesky_upper(H, U));
    Matrix Z = Matrix::Zero(4, 4);
    QVERIFY(!inverse_cholesky_upper(Z, U));
  }

  // The leaf kernels compute each element by the chain kernel_table.h states, bit for bit, on
  // every level: the vectorized kernels (rows in lanes, in chunks) against the plain loops.
  void leafKernelsAreTheirChains() {
    for (int n : {1, 7, 64, 65, 128, 200, 256}) {
      const Matrix H = spd(n, 40 + n);
      // Cholesky, column by column.
      Matrix want = H;
      for (int j = 0; j < n; ++j) {
        for (int i = j; i < n; ++i) {
          float s = want(i, j);
          for (int k = 0; k < j; ++k) s = std::fma(-want(i, k), want(j, k), s);
          want(i, j) = s;
        }
        const float l = std::sqrt(want(j, j));
        want(j, j) = l;
        for (int i = j + 1; i < n; ++i) want(i, j) /= l;
      }
      // X L^T = B, row by row.
      const int m = 70;
      const Matrix B = test::random_matrix(m, n, 50 + n);
      Matrix X = B;
      for (int r = 0; r < m; ++r)
        for (int j = 0; j < n; ++j) {
          float x = X(r, j);
          for (int k = 0; k < j; ++k) x = std::fma(-X(r, k), want(j, k), x);
          X(r, j) = x / want(j, j);
        }
      for (const CpuKernels* k : levels()) {
        Matrix L = H;
        QVERIFY(k->cholesky_leaf(n, L.data(), L.outerStride()));
        for (int i = 0; i < n; ++i)
          for (int j = 0; j <= i; ++j)
            QVERIFY2(std::memcmp(&L(i, j), &want(i, j), sizeof(float)) == 0,
                     qPrintable(QString("%1 n=%2 L(%3,%4)").arg(k->name).arg(n).arg(i).arg(j)));
        for (int i = 0; i < n; ++i)  // the strict upper triangle is left alone
          for (int j = i + 1; j < n; ++j) QCOMPARE(L(i, j), H(i, j));
        Matrix Y = B;
        k->trsm_leaf(m, n, want.data(), want.outerStride(), Y.data(), Y.outerStride());
        QVERIFY2(same_bits(X, Y), qPrintable(QString("%1 trsm n=%2").arg(k->name).arg(n)));
        // A pivot that fails is reported.
        Matrix bad = H;
        bad(n - 1, n - 1) = -1.0f;
        QVERIFY(!k->cholesky_leaf(n, bad.data(), bad.outerStride()));
      }
    }
  }

  void triangularBuildingBlocks() {
    const int n = 300, m = 70;
    Matrix L = spd(n, 21);
    QVERIFY(cholesky_lower(L));
    MatrixD Ld = L.cast<double>().triangularView<Eigen::Lower>();
    // L L^T = H
    const MatrixD H = spd(n, 21).cast<double>();
    QVERIFY((Ld * Ld.transpose() - H).norm() / H.norm() < 1e-6);
    // X L^T = B
    const Matrix B = test::random_matrix(m, n, 22);
    Matrix X = B;
    trsm_right_lower_t(L, X);
    QVERIFY((X.cast<double>() * Ld.transpose() - B.cast<double>()).norm() / B.norm() < 1e-5);
    // L B and B L
    const Matrix B2 = test::random_matrix(n, m, 23);
    Matrix P = B2;
    trmm_left_lower(L, P);
    QVERIFY((P.cast<double>() - Ld * B2.cast<double>()).norm() / P.norm() < 1e-6);
    Matrix Q = B;
    trmm_right_lower(Q, L);
    QVERIFY((Q.cast<double>() - B.cast<double>() * Ld).norm() / Q.norm() < 1e-6);
    // L^-1
    Matrix Li = L;
    triangular_inverse_lower(Li);
    const MatrixD Lid = Li.cast<double>().triangularView<Eigen::Lower>();
    QVERIFY((Lid * Ld - MatrixD::Identity(n, n)).norm() / std::sqrt(double(n)) < 1e-5);
  }

  void expMatchesTheMath() {
    std::vector<float> x;
    for (int i = -2000; i <= 2000; ++i) x.push_back(i * 0.0437f);  // [-87.4, 87.4]
    for (float v : {0.0f, -0.0f, 1e-30f, -87.3f, 88.7f, 88.8f, -87.4f, -1000.0f, 1000.0f})
      x.push_back(v);
    std::vector<float> e = x;
    exp_inplace(e.data(), int64_t(e.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(double(x[i]));
      if (x[i] < -87.33654f) {
        QCOMPARE(e[i], 0.0f);
      } else if (x[i] > 88.72283f) {
        QVERIFY(std::isinf(e[i]) && e[i] > 0);
      } else {
        QVERIFY2(std::abs(e[i] / want - 1) < 3e-7,
                 qPrintable(QString("exp(%1) = %2, want %3").arg(x[i]).arg(e[i]).arg(want)));
      }
    }
    float nan = std::nanf("");
    exp_inplace(&nan, 1);
    QVERIFY(std::isnan(nan));
    // The same bits on every level, also for a tail shorter than the 8 lanes.
    for (const CpuKernels* k : levels()) {
      ScopedKernels use(*k);
      std::vector<float> e2 = x;
      exp_inplace(e2.data(), int64_t(e2.size()));
      QVERIFY2(std::memcmp(e.data(), e2.data(), sizeof(float) * e.size()) == 0, k->name);
    }
  }

  // The sums' order is part of their definition: element i into lane i % 16, lanes folded
  // pairwise. Written out here independently.
  void sumsFollowTheirOrder() {
    for (int n : {0, 1, 15, 16, 17, 100, 1000}) {
      const Matrix v = test::random_matrix(1, std::max(n, 1), 30 + n);
      float lanes[16] = {};
      double lanes_d[16] = {};
      for (int i = 0; i < n; ++i) {
        lanes[i % 16] += v(0, i) * v(0, i);
        lanes_d[i % 16] += double(v(0, i));
      }
      for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; ++l) {
          lanes[l] += lanes[l + w];
          lanes_d[l] += lanes_d[l + w];
        }
      QCOMPARE(sum_squares(v.data(), n), lanes[0]);
      QCOMPARE(sum_f64(v.data(), n), lanes_d[0]);
    }
  }
};

QTEST_APPLESS_MAIN(TestLinalg)
#include "tst_linalg.moc"
