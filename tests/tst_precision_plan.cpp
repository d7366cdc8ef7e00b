// The mixed-precision planner: bits counted as the exporter stores them (hand-worked), the
// units vLLM fuses, the plan against brute force on small instances (exact on the bit grid,
// close and always within budget when costs are rounded to a coarser grid), hand edits, and
// the budget that cannot be met.
#include <QtTest>
#include <random>

#include "common/error.h"
#include "pipeline/precision_plan.h"

using namespace gptqw;

namespace {

// Every combination of candidates; the least damage within the budget.
double brute_force(const std::vector<PlanUnit>& units, double budget_bpw) {
  int64_t weights = 0;
  for (const PlanUnit& u : units) weights += u.weights;
  const uint64_t budget = uint64_t(std::floor(budget_bpw * double(weights)));
  double best = std::numeric_limits<double>::infinity();
  std::vector<size_t> idx(units.size(), 0);
  for (;;) {
    uint64_t bits = 0;
    double damage = 0;
    bool ok = true;
    for (size_t i = 0; i < units.size(); ++i) {
      if (units[i].fixed && idx[i] != *units[i].fixed) ok = false;
      bits += units[i].bits[idx[i]];
      damage += units[i].damage[idx[i]];
    }
    if (ok && bits <= budget) best = std::min(best, damage);
    size_t i = 0;
    while (i < units.size() && ++idx[i] == units[i].bits.size()) idx[i++] = 0;
    if (i == units.size()) return best;
  }
}

// Random units whose damage falls as bits rise (as quantization's does), scaled by `scale`.
std::vector<PlanUnit> random_units(std::mt19937_64& rng, size_t n, size_t candidates, uint64_t scale) {
  std::vector<PlanUnit> units(n);
  for (PlanUnit& u : units) {
    u.weights = int64_t(scale) * (1 + int64_t(rng() % 4));
    uint64_t bits = uint64_t(u.weights) * (2 + rng() % 2);
    double damage = 1.0 + double(rng() % 1000) / 100.0;
    for (size_t c = 0; c < candidates; ++c) {
      u.bits.push_back(bits);
      u.damage.push_back(damage);
      bits += uint64_t(u.weights) * (1 + rng() % 3) / 2 + rng() % 7;
      damage *= 0.2 + double(rng() % 600) / 1000.0;
    }
  }
  return units;
}

uint64_t plan_bits(const std::vector<PlanUnit>& units, const Plan& p) {
  uint64_t bits = 0;
  for (size_t i = 0; i < units.size(); ++i) bits += units[i].bits[p.choice[i]];
  return bits;
}

}  // namespace

class TestPrecisionPlan : public QObject {
  Q_OBJECT
 private slots:
  void bitsAsTheExporterStoresThem() {
    // 64 x 64, 4-bit, groups of 32: qweight 64/8 = 8 words x 64 rows x 4 B = 2048 B; qzeros
    // 2 groups x 64/8 words x 4 B = 64 B; scales 2 x 64 x 2 B = 256 B; g_idx 64 x 4 B = 256 B.
    QCOMPARE(stored_bits(64, 64, false, {4, 32, false}), uint64_t(2624 * 8));
    // A bias adds 64 fp16 values.
    QCOMPARE(stored_bits(64, 64, true, {4, 32, false}), uint64_t((2624 + 128) * 8));
    // 3-bit per row, 32 x 96: qweight 96 x 3 / 32 = 9 words x 32 rows x 4 B = 1152 B; qzeros one
    // group, 32 x 3 / 32 = 3 words x 4 B = 12 B; scales 32 x 2 B = 64 B; g_idx 96 x 4 B = 384 B.
    QCOMPARE(stored_bits(32, 96, false, {3, -1, false}), uint64_t((1152 + 12 + 64 + 384) * 8));
    QCOMPARE(stored_bits(64, 64, false, {4, 32, true}), uint64_t(64 * 64 * 16));
    QCOMPARE(PrecisionChoice({3, -1, false}).describe(), std::string("3-bit per-row"));
    QCOMPARE(PrecisionChoice({8, 64, true}).describe(), std::string("fp16"));
  }

  void marlinsLimits() {
    QVERIFY(marlin_problem(4096, 4096, {4, 128, false}, true).empty());
    QVERIFY(marlin_problem(4096, 11008, {8, -1, false}, true).empty());
    QVERIFY(marlin_problem(64, 172, {4, 32, true}, false).empty());  // fp16 always runs
    QVERIFY(marlin_problem(4096, 4096, {3, 128, false}, true).find("3-bit") == 0);
    QVERIFY(marlin_problem(4096, 4096, {4, 128, false}, false).find("asymmetric") == 0);
    QVERIFY(marlin_problem(4096, 4096, {4, 256, false}, true).find("group size 256") == 0);
    QVERIFY(marlin_problem(4096, 4160, {4, 128, false}, true).find("4160 inputs") == 0);  // 4160 % 128
    // The setting alone: what vLLM's choice of kernel for the whole checkpoint looks at.
    QVERIFY(marlin_setting_problem({4, 128, false}, true).empty());
    QVERIFY(marlin_setting_problem({8, -1, false}, true).empty());
    QVERIFY(marlin_setting_problem({16, -1, true}, false).empty());
    QVERIFY(!marlin_setting_problem({3, 128, false}, true).empty());
    QVERIFY(!marlin_setting_problem({4, 256, false}, true).empty());
    QVERIFY(!marlin_setting_problem({4, 128, false}, false).empty());
    // A group as wide as the inputs is one per row: Marlin runs it whatever its size.
    QVERIFY(marlin_problem(4096, 256, {4, 256, false}, true).empty());
    QVERIFY(marlin_problem(100, 4096, {4, 128, false}, true).find("100 outputs") == 0);
    QVERIFY(marlin_problem(64, 64, {4, 32, false}, true).find("64 inputs") == 0);  // the sample model
  }

  void unitsAreWhatLoadersFuse() {
    const auto units = plan_unit_modules(2);
    QCOMPARE(int(units.size()), 8);
    QCOMPARE(units[0], (std::vector<LayerId>{{0, LinearKind::q}, {0, LinearKind::k}, {0, LinearKind::v}}));
    QCOMPARE(units[2], (std::vector<LayerId>{{0, LinearKind::gate}, {0, LinearKind::up}}));
    QCOMPARE(units[7], (std::vector<LayerId>{{1, LinearKind::down}}));
  }

  void exactOnTheBitGrid() {
    // Small bit counts: at most kPlanSteps extra bits, the grid step is one bit, the DP exact.
    std::mt19937_64 rng(12345);
    for (int trial = 0; trial < 200; ++trial) {
      const auto units = random_units(rng, 2 + trial % 4, 2 + trial % 4, 10);
      int64_t weights = 0;
      for (const auto& u : units) weights += u.weights;
      const double budget = 2.5 + (trial % 9) * 0.3;
      const double expected = brute_force(units, budget);
      if (!std::isfinite(expected)) {
        QVERIFY_THROWS_EXCEPTION(ConfigError, solve_plan(units, budget));
        continue;
      }
      const Plan p = solve_plan(units, budget);
      QCOMPARE(p.damage, expected);
      QVERIFY(p.bits == plan_bits(units, p) && p.bits <= uint64_t(std::floor(budget * double(weights))));
    }
  }

  void closeAndWithinBudgetOnACoarseGrid() {
    // Billions of bits per unit: the grid is coarser than a bit and costs are rounded up. The
    // plan stays within the budget and, on these instances, within 1% of the optimum.
    std::mt19937_64 rng(777);
    double worst = 0;
    for (int trial = 0; trial < 60; ++trial) {
      const auto units = random_units(rng, 3 + trial % 3, 3 + trial % 3, 1000000000);
      int64_t weights = 0;
      for (const auto& u : units) weights += u.weights;
      const double budget = 3.0 + (trial % 7) * 0.25;
      const double expected = brute_force(units, budget);
      if (!std::isfinite(expected)) continue;
      const Plan p = solve_plan(units, budget);
      QVERIFY(p.bits <= uint64_t(std::floor(budget * double(weights))));
      QVERIFY(p.damage >= expected * (1 - 1e-12));
      worst = std::max(worst, p.damage / expected - 1);
    }
    QVERIFY2(worst < 0.01, qPrintable(QString("worst gap %1").arg(worst)));
  }

  void handEditsAreKept() {
    std::mt19937_64 rng(5);
    auto units = random_units(rng, 4, 4, 10);
    units[1].fixed = 0;  // "keep this one at its smallest setting"
    units[2].fixed = 3;  // "this one at its largest"
    int64_t weights = 0;
    for (const auto& u : units) weights += u.weights;
    const double budget = double(plan_bits(units, Plan{{3, 0, 3, 3}})) / double(weights);
    const Plan p = solve_plan(units, budget);
    QCOMPARE(p.choice[1], size_t(0));
    QCOMPARE(p.choice[2], size_t(3));
    QCOMPARE(p.damage, brute_force(units, budget));
  }

  void budgetBelowTheSmallestSetting() {
    PlanUnit u;
    u.modules = {{0, LinearKind::q}};
    u.weights = 100;
    u.bits = {300, 400};
    u.damage = {2, 1};
    try {
      solve_plan({u}, 2.5);
      QFAIL("no error");
    } catch (const ConfigError& e) {
      QVERIFY2(QString(e.what()).contains("3 bits per weight") && QString(e.what()).contains("2.5"), e.what());
    }
    QCOMPARE(solve_plan({u}, 3.0).choice, std::vector<size_t>{0});
    QCOMPARE(solve_plan({u}, 4.0).choice, std::vector<size_t>{1});
  }
};

QTEST_GUILESS_MAIN(TestPrecisionPlan)
#include "tst_precision_plan.moc"
