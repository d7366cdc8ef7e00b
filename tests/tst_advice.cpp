// The mixed-precision advisor on the real stories260K model: held-out windows that the
// calibration never reads, the sensitivity's KL divergence against an independent computation
// (compare_models' walk over the same windows), the scaled measure against the full one,
// plans that fit their budget and that a run quantizes exactly as planned (the first unit's
// measured damage equals its prediction bit for bit: same inputs, same GPTQ, same windows),
// hand edits, and the report's round trip and its damaged fields.
#include <QtTest>

#include "common/error.h"
#include "common/json.h"
#include "common/json_fields.h"
#include "common/text_file.h"
#include "model/model.h"
#include "pipeline/advice_json.h"
#include "pipeline/advisor.h"
#include "pipeline/divergence.h"
#include "pipeline/quantize.h"
#include "quant/packing.h"
#include "quant/rtn.h"
#include "test_support.h"

using namespace gptqw;
using namespace gptqw::test;

namespace {

std::vector<PrecisionChoice> candidates() { return {{2, 32, false}, {4, 32, false}, {8, 32, false}}; }

struct Fixture {
  Model model = load_model(stories_dir());
  std::vector<int32_t> ids =
      model.tokenizer->encode(read_text_file(data("text/tinystories-sample.txt")), true);
  CalibrationSet calib = sample_calibration(ids, 8, 64, 0);
  CalibrationSet held = held_out_windows(ids, calib, 4);
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

SensitivityOptions options(SensitivityOptions::Measure m = SensitivityOptions::Measure::kld) {
  SensitivityOptions o;
  o.candidates = candidates();
  o.measure = m;
  o.anchor = {4, 32, false};
  o.device = Device::cpu;
  return o;
}

// The fixture's windows (8 x 64 tokens, 4 held out) and the three candidates, on the CPU.
AdviceSpec small_spec() {
  AdviceSpec spec;
  spec.run.calib_file = data("text/tinystories-sample.txt");
  spec.run.nsamples = 8;
  spec.run.seqlen = 64;
  spec.run.options.device = Device::cpu;
  spec.sensitivity = options();
  spec.held_out = 4;
  return spec;
}

}  // namespace

class TestAdvice : public QObject {
  Q_OBJECT

 private slots:
  void heldOutWindowsAvoidTheCalibration() {
    Fixture& f = fixture();
    QCOMPARE(f.held.nsamples(), 4);
    for (int64_t h : f.held.offsets) {
      QVERIFY(h >= 0 && h + 64 <= int64_t(f.ids.size()));
      for (int64_t c : f.calib.offsets) QVERIFY2(h + 64 <= c || c + 64 <= h, "a held-out window overlaps");
    }
    // Their tokens are the text's at those offsets.
    for (int w = 0; w < 4; ++w)
      QVERIFY(std::equal(f.held.tokens.begin() + w * 64, f.held.tokens.begin() + (w + 1) * 64,
                         f.ids.begin() + f.held.offsets[size_t(w)]));
    // A text the calibration covers entirely has no room.
    const std::vector<int32_t> short_text(f.ids.begin(), f.ids.begin() + 130);
    CalibrationSet whole = calibration_from_offsets(short_text, {0, 64}, 64);
    QVERIFY_THROWS_EXCEPTION(ConfigError, held_out_windows(short_text, whole, 2));
  }

  // HeldOutReference's KL divergence against compare_models' (TokenDistribution, window walk):
  // one unit replaced by its RTN weights, so that nothing of GPTQ is involved.
  void klDivergenceAgreesWithCompareModels() {
    Fixture& f = fixture();
    const HeldOutReference ref(*f.model.weights, f.held);
    QCOMPARE(ref.positions(), int64_t(4 * 63));
    QCOMPARE(ref.kld({}), 0.0);
    QuantizeOptions qo;
    QuantConfig q;
    q.bits = 2;
    q.group_size = 32;
    BlockWeights b2 = ref.block(2);
    QuantizedModel qm(f.model.weights);
    for (LinearKind k : {LinearKind::q, LinearKind::k, LinearKind::v}) {
      Matrix Q = rtn_quantize(b2[k].W, q).Q;
      b2[k].W = Q;
      qm.set(2, k, std::move(Q));
    }
    const double mine = ref.kld({{2, b2}});
    DivergenceOptions d;
    d.eval.seqlen = 64;
    const WeightSource* qs[] = {&qm};
    const DivergenceResult r = compare_models(*f.model.weights, qs, f.held.tokens, d);
    QCOMPARE(r.windows, 4);
    QVERIFY(mine > 1e-4);
    QVERIFY2(std::fabs(mine - r.quantized[0].summary.kld.value) <= 1e-9 * mine,
             qPrintable(QString("%1 vs %2").arg(mine, 0, 'g', 17).arg(r.quantized[0].summary.kld.value, 0, 'g', 17)));
  }

  void sensitivityMeasuresEveryUnitAndCandidate() {
    Fixture& f = fixture();
    const Sensitivity s = measure_sensitivity(*f.model.weights, f.calib, f.held, options());
    QCOMPARE(s.candidates.size(), size_t(4));
    QVERIFY(s.candidates.back().fp16);
    QCOMPARE(s.units.size(), size_t(5 * 4));
    int loadable = 0;
    for (const UnitSensitivity& u : s.units) {
      QCOMPARE(u.kld.back(), 0.0);  // fp16 changes nothing
      const bool attention = u.modules.front().kind == LinearKind::q || u.modules.front().kind == LinearKind::o;
      // stories260K's MLP (172 wide) is not a multiple of 32: loaders refuse it quantized.
      for (size_t c = 0; c + 1 < s.candidates.size(); ++c) {
        QCOMPARE(u.unloadable[c].empty(), attention);
        if (!attention) continue;
        ++loadable;
        QVERIFY(u.measured[c] && u.kld[c] > 0 && std::isfinite(u.kld[c]));
      }
      if (attention) {
        QVERIFY2(u.kld[0] > u.kld[1] && u.kld[1] > u.kld[2], "damage falls as bits rise");
        // Bits as the exporter stores them: 4 + (16 + 4) / 32 + g_idx per weight at 4:32.
        int64_t expected = 0;
        for (const LayerId& id : u.modules) {
          const auto [rows, cols] = linear_shape(f.model.config(), id.kind);
          expected += int64_t(stored_bits(rows, cols, false, s.candidates[1]));
        }
        QCOMPARE(int64_t(u.bits[1]), expected);
      }
    }
    // GPTQ once per module and loadable candidate; one held-out pass per unit and candidate.
    QCOMPARE(s.gptq_runs, 5 * 4 * 3);
    QCOMPARE(s.kld_passes, loadable);

    // Scaled: the anchor measured exactly as above, the rest scaled by GPTQ's loss.
    const Sensitivity sc =
        measure_sensitivity(*f.model.weights, f.calib, f.held, options(SensitivityOptions::Measure::scaled));
    QCOMPARE(sc.kld_passes, 10);
    for (size_t i = 0; i < s.units.size(); ++i) {
      if (!s.units[i].unloadable[1].empty()) continue;
      QCOMPARE(sc.units[i].kld[1], s.units[i].kld[1]);
      QVERIFY(sc.units[i].measured[1] && !sc.units[i].measured[0]);
      QCOMPARE(sc.units[i].loss[0], s.units[i].loss[0]);
      const double expected = s.units[i].kld[1] * s.units[i].loss[0] / s.units[i].loss[1];
      QVERIFY(std::fabs(sc.units[i].kld[0] - expected) <= 1e-12 * expected);
    }
  }

  void plansFitTheBudgetAndRunAsPlanned() {
    Fixture& f = fixture();
    AdviceSpec spec = small_spec();
    spec.budgets = {3.5, 6.0};
    spec.check = true;
    const Advice a = advise(f.model, spec);
    QCOMPARE(a.plans.size(), size_t(2));
    QCOMPARE(a.sensitivity.held_out_offsets, f.held.offsets);  // the same windows as the fixture's
    for (const AdvicePoint& p : a.plans) {
      QVERIFY2(p.bits_per_weight <= p.budget, qPrintable(QString::number(p.bits_per_weight)));
      // vLLM picks its kernel from the global setting: with any setting Marlin cannot run, the
      // global one is such a setting too.
      bool non_marlin = false;
      for (const PlannedUnit& u : p.units)
        non_marlin = non_marlin || !marlin_setting_problem(a.sensitivity.candidates[u.choice], true).empty();
      QCOMPARE(!marlin_setting_problem(p.global, true).empty(), non_marlin);
      QVERIFY(p.held_out_kld > 0);
      // Block 0's q/k/v unit sees the original's inputs in the run too: measured == predicted.
      QCOMPARE(p.units[0].measured, p.units[0].predicted);
      // The run quantizes every module with the plan's setting.
      QuantizeOptions o = point_options(spec.run.options, p);
      o.run_rtn = false;
      const QuantizeResult r = quantize_model(*f.model.weights, f.calib, o, {});
      QCOMPARE(r.layers.size(), size_t(5 * 4));  // q, k, v, o of 5 blocks; the MLP stays fp16
      for (const LayerReport& l : r.layers) {
        const PlannedUnit* unit = nullptr;
        for (const PlannedUnit& u : p.units)
          for (const LayerId& id : u.modules)
            if (id == LayerId{l.block, l.kind}) unit = &u;
        QVERIFY(unit);
        const PrecisionChoice c = a.sensitivity.candidates[unit->choice];
        QCOMPARE(l.bits, c.bits);
        QCOMPARE(l.group_size, c.group_size);
      }
    }
    QVERIFY(a.plans[0].predicted > a.plans[1].predicted);

    // A hand edit: block 0's q/k/v in fp16; the plan keeps it there and still fits.
    const std::vector<PlanUnit> units = plan_units(a.sensitivity, a.planned, {{{0, LinearKind::q}, {16, -1, true}}});
    const Plan pinned = solve_plan(units, 6.0);
    QCOMPARE(a.sensitivity.candidates[pinned.choice[0]].fp16, true);
    QVERIFY(pinned.bits_per_weight() <= 6.0);
    QVERIFY_THROWS_EXCEPTION(ConfigError, plan_units(a.sensitivity, a.planned, {{{0, LinearKind::gate}, {4, 32, false}}}));

    // The report's round trip, and a damaged field named.
    const nlohmann::json j = to_json(a);
    const Advice back = advice_from_json(JsonFields(j, "advice.json"));
    QCOMPARE(to_json(back).dump(), j.dump());
    nlohmann::json missing = j;
    missing["units"][0].erase("measured");
    try {
      advice_from_json(JsonFields(missing, "advice.json"));
      QFAIL("a unit without its measured flags was accepted");
    } catch (const Error& e) {
      QVERIFY2(contains(e.what(), "measured"), e.what());
    }
    nlohmann::json bad = j;
    bad["units"][0]["kld"][0] = -1.0;
    try {
      advice_from_json(JsonFields(bad, "advice.json"));
      QFAIL("a negative KL divergence was accepted");
    } catch (const Error& e) {
      QVERIFY2(contains(e.what(), "advice.json") && contains(e.what(), "kld"), e.what());
    }
  }

  // The curve: every candidate as a uniform setting and a plan at each one's cost, all
  // evaluated on the windows neither the calibration nor the sensitivity read. A uniform
  // setting is one of the plans its cost allows, so the optimal plan's predicted damage can
  // only be lower or equal.
  void curveComparesPlansAtEqualCost() {
    Fixture& f = fixture();
    AdviceSpec spec = small_spec();
    spec.run.eval.max_windows = 8;
    spec.budgets = {4.0};
    spec.curve = true;
    const Advice a = advise(f.model, spec);
    QCOMPARE(a.uniform.size(), size_t(3));
    QCOMPARE(a.eval_files.size(), size_t(1));
    QVERIFY(contains(a.eval_files[0], "used neither by the calibration nor the sensitivity"));
    QCOMPARE(a.eval_original.at(0).windows, 8);
    int matched = 0;
    for (const AdvicePoint& u : a.uniform) {
      QCOMPARE(u.eval.size(), size_t(1));
      QVERIFY(u.held_out_kld > 0);
      for (const AdvicePoint& p : a.plans)
        if (p.label == "plan at the cost of " + u.label) {
          ++matched;
          QVERIFY(p.bits_per_weight <= u.bits_per_weight);
          QVERIFY2(p.predicted <= u.predicted, qPrintable(QString("%1 > %2").arg(p.predicted).arg(u.predicted)));
          QCOMPARE(p.eval.size(), size_t(1));
        }
    }
    QCOMPARE(matched, 3);
  }

  void choicesParseAndPrint() {
    QCOMPARE(choice_text(parse_choice("4:128")), std::string("4:128"));
    QCOMPARE(choice_text(parse_choice("3:-1")), std::string("3:-1"));
    QVERIFY(parse_choice("fp16").fp16);
    for (const char* bad : {"5:128", "4:", "4:12", "x", "4:128x", ""})
      QVERIFY_THROWS_EXCEPTION(ConfigError, parse_choice(bad));
    // Module names: the inverse of LayerId::module(); short or malformed names are refused, not
    // read past their end (a fuzz finding).
    QVERIFY((parse_layer_module("model.layers.3.mlp.down_proj") == LayerId{3, LinearKind::down}));
    for (const char* bad : {"model.lay", "model.layers.", "model.layers.x.mlp.down_proj", "model.layers.3",
                            "model.layers.-1.mlp.down_proj", "layers.3.mlp.down_proj", ""})
      QVERIFY_THROWS_EXCEPTION(ConfigError, parse_layer_module(bad));
  }
};

QTEST_APPLESS_MAIN(TestAdvice)
#include "tst_advice.moc"
