// Unit tests of core/quant/quantizer and rtn: grids worked out by hand from spec section 1
// (in fp32, as torch computes them), round-half-to-even ties, the all-zero row, properties of
// codes and grids over random matrices (all bit widths, sym/asym, per-row and grouped with a
// ragged last group), and the MSE search never doing worse than plain min/max.
#include <QTest>
#include <cmath>
#include <random>

#include "common/error.h"
#include "quant/quantizer.h"
#include "quant/rtn.h"
#include "test_matrices.h"

using namespace gptqw;

namespace {

Matrix row(std::initializer_list<float> v) {
  Matrix m(1, static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (float x : v) m(0, i++) = x;
  return m;
}

// Rows of very different magnitudes, some all positive, some all negative, one all zero.
Matrix random_weights(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Matrix W(rows, cols);
  for (Eigen::Index r = 0; r < rows; ++r) {
    const float mag = std::pow(10.0f, float(r % 5) - 2.0f);
    for (Eigen::Index c = 0; c < cols; ++c) W(r, c) = mag * normal(rng);
    if (r % 7 == 3) W.row(r) = W.row(r).cwiseAbs();
    if (r % 7 == 4) W.row(r) = -W.row(r).cwiseAbs();
  }
  if (rows > 5) W.row(5).setZero();
  return W;
}

}  // namespace

class TestQuantizer : public QObject {
  Q_OBJECT
 private slots:
  void configValidation() {
    QVERIFY_THROWS_EXCEPTION(ConfigError, test::quant_config(5, true).validate());
    QVERIFY_THROWS_EXCEPTION(ConfigError, test::quant_config(1, true).validate());
    QVERIFY_THROWS_EXCEPTION(ConfigError, test::quant_config(4, true, 0).validate());
    QVERIFY_THROWS_EXCEPTION(ConfigError, test::quant_config(4, true, -2).validate());
    for (int bits : {2, 3, 4, 8}) test::quant_config(bits, false, 128).validate();
    test::quant_config(4, true, 1).validate();
    try {
      test::quant_config(6, true).validate();
      QFAIL("no exception");
    } catch (const ConfigError& e) {
      QVERIFY(std::string(e.what()).find("2, 3, 4 or 8") != std::string::npos);
    }
    QCOMPARE(test::quant_config(4, true, 128).describe(), std::string("4-bit sym g128"));
    QCOMPARE(test::quant_config(3, false).describe(), std::string("3-bit asym per-row"));
  }

  void handWorkedAsymmetric2Bit() {
    // Row [-1, 0.5, 2], 2 bits (maxq 3), asymmetric:
    //   xmin = min(-1, 0) = -1, xmax = max(2, 0) = 2, scale = (2 - -1) / 3 = 1,
    //   zero = round(1 / 1) = 1.
    //   codes: round(-1) + 1 = 0; round(0.5) + 1 = 0 + 1 = 1 (tie to even 0); round(2) + 1 = 3.
    //   dequantized: 1 * (0 - 1) = -1, 1 * (1 - 1) = 0, 1 * (3 - 1) = 2.
    const Matrix x = row({-1.0f, 0.5f, 2.0f});
    const Grid g = find_grid(x, test::quant_config(2, false));
    QCOMPARE(g.maxq, 3);
    QCOMPARE(g.scale[0], 1.0f);
    QCOMPARE(g.zero[0], 1.0f);
    Matrix q(1, 3);
    Codes c(1, 3);
    quantize_on_grid(x, g, q, c);
    QCOMPARE(int(c(0, 0)), 0);
    QCOMPARE(int(c(0, 1)), 1);
    QCOMPARE(int(c(0, 2)), 3);
    QCOMPARE(q(0, 0), -1.0f);
    QCOMPARE(q(0, 1), 0.0f);
    QCOMPARE(q(0, 2), 2.0f);
  }

  void handWorkedSymmetric2Bit() {
    // Row [-1, 0.5, 2], 2 bits, symmetric:
    //   xmin = -1, xmax = 2 -> xmax = max(|-1|, 2) = 2; xmin < 0 so xmin = -2.
    //   scale = 4 / 3 = 1.3333334f (fp32 rounds up), zero = (3 + 1) / 2 = 2.
    //   -1 / scale = -0.75 -> -1 -> code 1;  0.5 / scale = 0.375 -> 0 -> code 2;
    //   2 / scale = 1.4999999... which fp32 division rounds to 1.5 -> tie to even 2 -> 4,
    //   clamped to maxq = 3.
    //   dequantized: scale * (1 - 2) = -1.3333334, 0, scale * (3 - 2) = 1.3333334.
    const Matrix x = row({-1.0f, 0.5f, 2.0f});
    const Grid g = find_grid(x, test::quant_config(2, true));
    QCOMPARE(g.scale[0], 4.0f / 3.0f);
    QCOMPARE(g.zero[0], 2.0f);
    Matrix q(1, 3);
    Codes c(1, 3);
    quantize_on_grid(x, g, q, c);
    QCOMPARE(int(c(0, 0)), 1);
    QCOMPARE(int(c(0, 1)), 2);
    QCOMPARE(int(c(0, 2)), 3);
    QCOMPARE(q(0, 0), -4.0f / 3.0f);
    QCOMPARE(q(0, 1), 0.0f);
    QCOMPARE(q(0, 2), 4.0f / 3.0f);
  }

  void allZeroRow() {
    // xmin == xmax == 0 -> [-1, 1]; 4 bits: scale = 2 / 15 = 0.13333334f (rounded up), so
    // asymmetric zero = round(1 / 0.13333334f) = round(7.4999995f) = 7 (torch gives 7 too; with
    // exact_ties, 7.4999995 is the tie 7.5 up to rounding and gives 8); symmetric zero = 8.
    // Zero quantizes to the zero point and reads back as exactly 0.
    const Matrix x = Matrix::Zero(1, 4);
    for (bool sym : {false, true}) {
      const Grid g = find_grid(x, test::quant_config(4, sym));
      QCOMPARE(g.scale[0], 2.0f / 15.0f);
      QCOMPARE(g.zero[0], sym ? 8.0f : 7.0f);
      Matrix q(1, 4);
      Codes c(1, 4);
      quantize_on_grid(x, g, q, c);
      for (int i = 0; i < 4; ++i) {
        QCOMPARE(int(c(0, i)), sym ? 8 : 7);
        QCOMPARE(q(0, i), 0.0f);
      }
    }
    QuantConfig exact = test::quant_config(4, false);
    exact.exact_ties = true;
    QCOMPARE(find_grid(x, exact).zero[0], 8.0f);
  }

  void tiesRoundToEven() {
    // [0, 0.25, 0.75, 1.25, 1.5], 2 bits asym: xmin 0, xmax 1.5, scale 0.5 (exact), zero 0.
    // x / scale = 0, 0.5, 1.5, 2.5, 3: exact ties at 0.5, 1.5, 2.5 go to 0, 2, 2
    // (half away from zero would give 1, 2, 3).
    {
      const Matrix x = row({0.0f, 0.25f, 0.75f, 1.25f, 1.5f});
      const Grid g = find_grid(x, test::quant_config(2, false));
      QCOMPARE(g.scale[0], 0.5f);
      QCOMPARE(g.zero[0], 0.0f);
      Matrix q(1, 5);
      Codes c(1, 5);
      quantize_on_grid(x, g, q, c);
      const int expected[] = {0, 0, 2, 2, 3};
      for (int i = 0; i < 5; ++i) QCOMPARE(int(c(0, i)), expected[i]);
    }
    // [-1.5, -1.25, -0.25, 0]: xmin -1.5, xmax 0, scale 0.5, zero round(3) = 3.
    // x / scale = -3, -2.5, -0.5, 0 -> -3, -2, -0, 0 -> codes 0, 1, 3, 3.
    {
      const Matrix x = row({-1.5f, -1.25f, -0.25f, 0.0f});
      const Grid g = find_grid(x, test::quant_config(2, false));
      QCOMPARE(g.scale[0], 0.5f);
      QCOMPARE(g.zero[0], 3.0f);
      Matrix q(1, 4);
      Codes c(1, 4);
      quantize_on_grid(x, g, q, c);
      const int expected[] = {0, 1, 3, 3};
      for (int i = 0; i < 4; ++i) QCOMPARE(int(c(0, i)), expected[i]);
    }
    QCOMPARE(round_half_even(2.5f), 2.0f);
    QCOMPARE(round_half_even(3.5f), 4.0f);
    QCOMPARE(round_half_even(-2.5f), -2.0f);
  }

  // round_quotient: half to even, and a quotient within 2^-22 of its magnitude of a
  // half-integer (2 to 4 ulps) is that half-integer; further away it rounds as usual.
  void roundQuotientSnapsNearTies() {
    auto ulps = [](float v, int n) {
      for (int i = 0; i < std::abs(n); ++i) v = std::nextafter(v, n > 0 ? INFINITY : -INFINITY);
      return v;
    };
    for (float half : {0.5f, 2.5f, 4.5f, 7.5f, -3.5f, -7.5f, 127.5f}) {
      const float even = std::nearbyint(half);
      QCOMPARE(round_quotient(half), even);
      for (int n : {-2, -1, 1, 2}) QCOMPARE(round_quotient(ulps(half, n)), even);
      // Five ulps away is beyond 2^-22 of the value: plain rounding.
      QCOMPARE(round_quotient(ulps(half, 5)), std::nearbyint(ulps(half, 5)));
      QCOMPARE(round_quotient(ulps(half, -5)), std::nearbyint(ulps(half, -5)));
    }
    for (float v : {0.0f, -0.0f, 1.0f, 3.2f, -6.7f, 1e9f, -3e7f}) QCOMPARE(round_quotient(v), std::nearbyint(v));
    QVERIFY(std::isnan(round_quotient(std::nanf(""))));
    QCOMPARE(round_quotient(INFINITY), INFINITY);
  }

  // The symmetric grid's negative end: x = -max|x| of the row has x / scale = -(maxq+1)/2 up to
  // the rounding of scale. With exact_ties it always gets code 0; plain rounding of the fp32
  // quotient (the default, as upstream) gives code 1 for a share of such x, depending on x's
  // last bits.
  void symmetricEndIsDecidedExactly() {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> mag(0.01f, 2.0f);
    int plain_ones = 0;
    for (int bits : {2, 3, 4, 8})
      for (int i = 0; i < 2000; ++i) {
        const float m = mag(rng);
        const Matrix x = row({-m, 0.3f * m, -0.1f * m, 0.9f * m});
        QuantConfig cfg = test::quant_config(bits, true);
        Matrix q(1, 4);
        Codes c(1, 4);
        quantize_on_grid(x, find_grid(x, cfg), q, c);
        plain_ones += c(0, 0) == 1;
        cfg.exact_ties = true;
        quantize_on_grid(x, find_grid(x, cfg), q, c);
        QCOMPARE(int(c(0, 0)), 0);
      }
    qInfo("plain rounding would have given code 1 at the symmetric end in %d of 8000 rows", plain_ones);
    QVERIFY(plain_ones > 0);  // the case the rule is for does occur
  }

  void rtnPropertiesOverRandomMatrices() {
    // 24 x 100 with groups of 32: groups [0,32), [32,64), [64,96), [96,100) (ragged).
    const Matrix W = random_weights(24, 100, 7);
    for (int bits : {2, 3, 4, 8})
      for (bool sym : {false, true})
        for (int gs : {-1, 32}) {
          const QuantConfig cfg = test::quant_config(bits, sym, gs);
          const QuantizedWeights r = rtn_quantize(W, cfg);
          const int maxq = cfg.maxq();
          const Eigen::Index G = gs > 0 ? 4 : 1;
          QCOMPARE(r.scales.rows(), G);
          QCOMPARE(r.zeros.rows(), G);
          QCOMPARE(r.scales.cols(), W.rows());
          QCOMPARE(r.g_idx.size(), size_t(100));
          for (Eigen::Index k = 0; k < W.cols(); ++k)
            QCOMPARE(r.g_idx[k], gs > 0 ? int32_t(k / gs) : 0);
          // The ragged last group has the grid of its own 4 columns.
          if (gs > 0) {
            const Grid last = find_grid(W.middleCols(96, 4), cfg);
            QVERIFY(r.scales.row(3) == last.scale.transpose());
            QVERIFY(r.zeros.row(3) == last.zero.transpose().cast<int32_t>());
          }
          for (Eigen::Index n = 0; n < W.rows(); ++n)
            for (Eigen::Index k = 0; k < W.cols(); ++k) {
              const int g = r.g_idx[k];
              const float s = r.scales(g, n);
              const int z = r.zeros(g, n), c = r.codes(n, k);
              QVERIFY(s > 0);
              QVERIFY(z >= 0 && z <= maxq);
              QVERIFY(c >= 0 && c <= maxq);
              // On the grid: Q is exactly scale * (code - zero).
              QCOMPARE(r.Q(n, k), s * float(c - z));
              // Nearest grid point: no neighbour code is closer, beyond fp32 noise (x / scale
              // carries a relative error of ~6e-8, up to ~1e-5 steps at 8 bits).
              const float x = W(n, k), err = std::fabs(x - r.Q(n, k));
              for (int c2 : {c - 1, c + 1})
                if (c2 >= 0 && c2 <= maxq)
                  QVERIFY2(err <= std::fabs(x - s * float(c2 - z)) + 1e-4f * s,
                           qPrintable(QString("bits %1 sym %2 gs %3 [%4,%5]")
                                          .arg(bits)
                                          .arg(sym)
                                          .arg(gs)
                                          .arg(n)
                                          .arg(k)));
              // Inside the grid's range the error is at most half a step, and a near-tie
              // (round_quotient) may take the even side up to 2^-22 |x / s| steps further.
              if (x >= s * float(0 - z) && x <= s * float(maxq - z))
                QVERIFY(err <= s * (0.5f + std::fabs(x / s) * 0x1p-22f) * (1 + 1e-5f));
            }
        }
  }

  void mseNeverWorseThanMinMax() {
    // Heavy-tailed rows (a few outliers) are where shrinking the range pays.
    Matrix W = random_weights(40, 64, 11);
    std::mt19937 rng(3);
    for (Eigen::Index r = 0; r < W.rows(); ++r) W(r, rng() % 64) *= 8.0f;
    for (int bits : {2, 3, 4})
      for (bool sym : {false, true}) {
        const Grid plain = find_grid(W, test::quant_config(bits, sym));
        const Grid mse = find_grid(W, test::quant_config(bits, sym, -1, true));
        const Eigen::VectorXd e_plain = grid_error(W, plain, 2.4f);
        const Eigen::VectorXd e_mse = grid_error(W, mse, 2.4f);
        int better = 0;
        for (Eigen::Index r = 0; r < W.rows(); ++r) {
          QVERIFY2(e_mse[r] <= e_plain[r] * (1 + 1e-9),
                   qPrintable(QString("bits %1 sym %2 row %3: %4 > %5")
                                  .arg(bits)
                                  .arg(sym)
                                  .arg(r)
                                  .arg(e_mse[r])
                                  .arg(e_plain[r])));
          if (e_mse[r] < e_plain[r] * (1 - 1e-6)) ++better;
          QVERIFY(mse.zero[r] >= 0 && mse.zero[r] <= mse.maxq);
        }
        QVERIFY2(better > 0, "the MSE search never found a better grid");
      }
  }

  void mseShrinksOutlierRow() {
    // One row of 63 small values and one outlier at 3 bits: the min/max grid spends its levels
    // on the outlier; the MSE grid is narrower (p < 1), so its scale is smaller.
    Matrix x(1, 64);
    for (int i = 0; i < 64; ++i) x(0, i) = 0.01f * float((i * 37) % 21 - 10);
    x(0, 17) = 1.0f;
    const Grid plain = find_grid(x, test::quant_config(3, false));
    const Grid mse = find_grid(x, test::quant_config(3, false, -1, true));
    QVERIFY(mse.scale[0] < plain.scale[0]);
    QVERIFY(grid_error(x, mse, 2.4f)[0] < grid_error(x, plain, 2.4f)[0]);
  }
};

QTEST_GUILESS_MAIN(TestQuantizer)
#include "tst_quantizer.moc"
