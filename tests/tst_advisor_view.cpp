// The window's Advisor view, offscreen: a report of the advisor (made here by advise() on
// stories260K with few windows and three candidates) opened in the window shows each unit's
// sensitivity in the heat map, the plan re-solved as solve_plan solves it when the budget
// changes, a hand edit's predicted effect, "use this plan" reaching the next run's settings,
// and Measure running the advisor as a job that does not block the window.
#include <QAbstractItemModelTester>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTabWidget>
#include <cmath>

#include "advice_models.h"
#include "advisor_page.h"
#include "inputs_panel.h"
#include "main_window.h"
#include "model/model.h"
#include "pipeline/advice_json.h"
#include "pipeline/advisor.h"
#include "pipeline/report.h"
#include "plots/advice_curve_chart.h"
#include "results_view.h"
#include "run_session.h"
#include "settings_form.h"
#include "test_support.h"

using namespace gptqw;
using namespace gptqw::ui;
using test::qpath;

namespace {

QString calib_text() { return qpath(test::data("text/tinystories-sample.txt")); }

AdviceSpec small_spec() {
  AdviceSpec spec;
  spec.run.calib_file = test::data("text/tinystories-sample.txt");
  spec.run.nsamples = 8;
  spec.run.seqlen = 64;
  spec.held_out = 4;
  for (const char* c : {"2:32", "4:32", "8:32"}) spec.sensitivity.candidates.push_back(parse_choice(c));
  spec.budgets = {3.5, 4};  // 2:32 alone takes 3.23 bits per weight (the scales)
  return spec;
}

// The plan solve_plan makes of the advice's units under `budget`, with `fixed`, per unit.
std::vector<size_t> expected_choice(const Advice& a, double budget, const std::map<LayerId, PrecisionChoice>& fixed = {}) {
  const Plan plan = solve_plan(plan_units(a.sensitivity, a.planned, fixed), budget);
  std::vector<size_t> choice(a.sensitivity.units.size(), a.sensitivity.candidates.size() - 1);
  for (size_t i = 0, j = 0; i < choice.size(); ++i)
    if (a.planned[i]) choice[i] = plan.choice[j++];
  return choice;
}

std::vector<size_t> shown_choice_of(const AdvicePoint& p) {
  std::vector<size_t> choice;
  for (const PlannedUnit& u : p.units) choice.push_back(u.choice);
  return choice;
}
std::vector<size_t> shown_choice(const AdvicePlanModel& m) { return shown_choice_of(*m.point()); }

}  // namespace

class TestAdvisorView : public QObject {
  Q_OBJECT
  QTemporaryDir m_tmp;
  Advice m_advice;
  QString m_report;

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QCoreApplication::setOrganizationName("gptq-workbench-test-advisor");
    QSettings().clear();
    QVERIFY(m_tmp.isValid());
    const Model model = load_model(test::stories_dir());
    m_advice = advise(model, small_spec());
    QCOMPARE(m_advice.plans.size(), size_t(2));
    Report r;
    r.advice = m_advice;
    m_report = m_tmp.filePath("advice.json");
    save_report(r, m_report.toStdString());
  }

  void openedReportShowsTheSensitivityAndThePlan() {
    MainWindow w;
    w.show();
    QSignalSpy ready(w.session(), &RunSession::adviceReady);
    w.openReport(m_report);
    QVERIFY(ready.wait(30000));
    QCOMPARE(w.results()->tabs()->currentIndex(), int(ResultsView::AdvisorTab));
    AdvisorPage* page = w.results()->advisor();
    SensitivityMapModel* map = page->sensitivity();
    QAbstractItemModelTester map_tester(map, QAbstractItemModelTester::FailureReportingMode::QtTest);
    const Sensitivity& s = m_advice.sensitivity;
    QCOMPARE(map->rowCount(), s.units.back().modules.front().block + 1);  // one row per block
    QCOMPARE(map->columnCount(), kNumLinears);
    // Every cell is its unit's KL divergence at the chosen candidate, for every candidate.
    for (int c = 0; c < page->candidateBox()->count(); ++c) {
      page->candidateBox()->setCurrentIndex(c);
      const size_t ci = size_t(page->candidateBox()->itemData(c).toInt());
      QCOMPARE(map->candidate(), int(ci));
      for (int b = 0; b < map->rowCount(); ++b)
        for (int k = 0; k < map->columnCount(); ++k) {
          const QModelIndex i = map->index(b, k);
          const size_t u = size_t(i.data(SensitivityMapModel::UnitRole).toULongLong());
          QVERIFY(std::find(s.units[u].modules.begin(), s.units[u].modules.end(), LayerId{b, kAllLinears[size_t(k)]}) !=
                  s.units[u].modules.end());
          const double v = i.data(SensitivityMapModel::ValueRole).toDouble();
          if (!m_advice.planned[u]) QVERIFY(std::isnan(v));
          else if (!s.units[u].unloadable[ci].empty()) QVERIFY(std::isinf(v));
          else QCOMPARE(v, s.units[u].kld[ci]);
          QVERIFY(!i.data(Qt::ToolTipRole).toString().isEmpty());
        }
    }

    // The budget re-solves at once, exactly as solve_plan does on the same units.
    AdvicePlanModel* plan = page->plan();
    QAbstractItemModelTester plan_tester(plan, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(page->budgetBox()->value(), 3.5);
    QCOMPARE(shown_choice(*plan), expected_choice(m_advice, 3.5));
    for (double budget : {3.75, 4.25, 6.0, 3.3}) {
      page->budgetBox()->setValue(budget);
      QCOMPARE(plan->budget(), budget);
      QVERIFY(plan->point());
      QCOMPARE(shown_choice(*plan), expected_choice(m_advice, budget));
      QVERIFY(plan->point()->bits_per_weight <= budget + 1e-12);
      QVERIFY(page->totalsText().contains(QString::number(plan->point()->bits_per_weight, 'f', 3)));
    }
    // Below what the cheapest settings take: no plan, and the page says why.
    page->budgetBox()->setValue(1.0);
    QVERIFY(!plan->point());
    QVERIFY(page->totalsText().startsWith("No plan fits"));
    QVERIFY(!page->usePlanButton()->isEnabled());

    // A hand edit: the most damaged quantized unit kept at fp16.
    page->budgetBox()->setValue(4.0);
    const size_t fp16 = s.candidates.size() - 1;
    int row = -1;
    double worst = -1;
    for (size_t u = 0; u < plan->point()->units.size(); ++u)
      if (plan->point()->units[u].choice != fp16 && plan->point()->units[u].predicted > worst)
        worst = plan->point()->units[u].predicted, row = int(u);
    QVERIFY(row >= 0);
    const AdvicePoint before = *plan->point();
    // Under 4 bpw an fp16 unit leaves the others less than their cheapest setting: refused,
    // nothing changed, and said so.
    QVERIFY(!plan->setData(plan->index(row, AdvicePlanModel::SettingColumn), "fp16"));
    QVERIFY2(page->effectText().contains("does not fit 4.00 bpw"), qPrintable(page->effectText()));
    QVERIFY(plan->pins().empty());
    QCOMPARE(shown_choice(*plan), shown_choice_of(before));
    page->budgetBox()->setValue(6.0);
    const AdvicePoint before6 = *plan->point();
    QVERIFY2(plan->setData(plan->index(row, AdvicePlanModel::SettingColumn), "fp16"), qPrintable(page->effectText()));
    const AdvicePoint after = *plan->point();
    QCOMPARE(after.units[size_t(row)].choice, fp16);
    const LayerId first = s.units[size_t(row)].modules.front();
    QCOMPARE(shown_choice(*plan), expected_choice(m_advice, 6.0, {{first, s.candidates.back()}}));
    const QString effect = page->effectText();
    QVERIFY2(effect.startsWith("keeping " + unitName(s.units[size_t(row)].modules) + " at fp16: "), qPrintable(effect));
    QVERIFY2(effect.contains(QString("%1 → %2 bpw (budget 6.00)").arg(before6.bits_per_weight, 0, 'f', 2).arg(after.bits_per_weight, 0, 'f', 2)),
             qPrintable(effect));
    QVERIFY2(effect.contains(QString("predicted KLD %1 → %2").arg(before6.predicted, 0, 'f', 3).arg(after.predicted, 0, 'f', 3)),
             qPrintable(effect));
    QVERIFY(after.predicted >= before6.predicted);  // the bits went elsewhere, less well spent
    QCOMPARE(plan->index(row, AdvicePlanModel::SettingColumn).data().toString(), QString("fp16 (pinned)"));
    // The pin holds when the budget changes; "auto" lets the plan choose again.
    page->budgetBox()->setValue(5.5);
    QCOMPARE(plan->point()->units[size_t(row)].choice, fp16);
    QCOMPARE(shown_choice(*plan), expected_choice(m_advice, 5.5, {{first, s.candidates.back()}}));
    QVERIFY(plan->setData(plan->index(row, AdvicePlanModel::SettingColumn), "auto"));
    QVERIFY(plan->pins().empty());
    QCOMPARE(shown_choice(*plan), expected_choice(m_advice, 5.5));

    // The curve: the plans' predicted KLD (the report was not checked), said so on the axis.
    QCOMPARE(page->curve()->pointCount(), 2);
    QVERIFY(page->curve()->yTitle().startsWith("Predicted"));
  }

  void usePlanSetsTheNextRunsSettings() {
    MainWindow w;
    w.show();
    SettingsForm* f = w.inputs()->settingsForm();
    f->setBits(4);
    f->setGroupSize(32);
    f->setActOrder(false);
    f->setSamples(8, 64);
    QSignalSpy loaded(w.session(), &RunSession::modelLoaded);
    w.openModel(qpath(test::stories_dir()));
    QVERIFY(loaded.wait(30000));
    w.setCalibrationFile(calib_text());
    QSignalSpy ready(w.session(), &RunSession::adviceReady);
    w.openReport(m_report);
    QVERIFY(ready.wait(30000));
    AdvisorPage* page = w.results()->advisor();
    page->budgetBox()->setValue(3.75);
    QVERIFY(page->usePlanButton()->isEnabled());
    const AdvicePoint point = *page->plan()->point();
    QVERIFY(!point.per_module.empty());
    page->usePlanButton()->click();
    QVERIFY(w.session()->planForRuns());
    QVERIFY2(w.inputs()->planInfo().contains(QString("%1 modules with their own settings").arg(point.per_module.size())),
             qPrintable(w.inputs()->planInfo()));
    std::optional<RunSpec> started;
    connect(w.session(), &RunSession::runStarted, this, [&](const RunSpec& s) { started = s; });
    QSignalSpy finished(w.session(), &RunSession::runFinished);
    QVERIFY(w.startRun());
    QVERIFY(started);
    const RunSpec& spec = *started;
    QCOMPARE(spec.options.per_module, point.per_module);
    QVERIFY(spec.options.gptq.quant.bits == point.global.bits && spec.options.gptq.quant.group_size == point.global.group_size);
    QVERIFY(finished.wait(120000));
    QCOMPARE(w.session()->report()->options.per_module, point.per_module);
    // Cleared: the form's settings again.
    w.session()->clearPlan();
    QVERIFY(w.inputs()->planInfo().isEmpty());
    QCOMPARE(w.session()->withPlan(f->spec().options).per_module.size(), size_t(0));
  }

  void measureRunsAsAJob() {
    MainWindow w;
    w.show();
    SettingsForm* f = w.inputs()->settingsForm();
    f->setSamples(8, 64);
    AdvisorPage* page = w.results()->advisor();
    QVERIFY(!page->measureButton()->isEnabled());  // no model
    QSignalSpy loaded(w.session(), &RunSession::modelLoaded);
    w.openModel(qpath(test::stories_dir()));
    QVERIFY(loaded.wait(30000));
    QVERIFY(!page->measureButton()->isEnabled());  // no calibration text
    w.setCalibrationFile(calib_text());
    QVERIFY(page->measureButton()->isEnabled());
    page->setMeasureOptions("3.5, 4", "2:32 4:32 8:32", 4, false, false);

    // Cancelled: the window is usable again, nothing shown.
    QSignalSpy ready(w.session(), &RunSession::adviceReady);
    QSignalSpy busy(w.session(), &RunSession::busyChanged);
    QVERIFY(w.startAdvice());
    QVERIFY(w.session()->advising());
    w.cancel();
    while (w.session()->busy()) QVERIFY(busy.wait(30000));
    QCOMPARE(ready.size(), 0);

    std::vector<RunSession::Source> sources;
    connect(w.session(), &RunSession::progress, this, [&](const Progress&, RunSession::Source src) { sources.push_back(src); });
    page->measureButton()->click();
    QVERIFY(w.session()->advising());
    QVERIFY(!page->measureButton()->isEnabled());  // busy
    QVERIFY(ready.wait(180000));  // the event loop ran meanwhile: the window never blocked
    QVERIFY(!sources.empty());
    QVERIFY(std::all_of(sources.begin(), sources.end(), [](RunSession::Source s) { return s == RunSession::Source::Advice; }));
    QVERIFY(w.session()->advice());
    QCOMPARE(w.session()->advice()->plans.size(), size_t(2));
    QCOMPARE(w.session()->advice()->sensitivity.candidates.size(), size_t(4));
    QCOMPARE(page->plan()->budget(), 3.5);
    QCOMPARE(shown_choice(*page->plan()), expected_choice(*w.session()->advice(), 3.5));
    QVERIFY(page->sensitivity()->rowCount() > 0);
    QVERIFY(page->measureButton()->isEnabled());
  }
};

QTEST_MAIN(TestAdvisorView)
#include "tst_advisor_view.moc"
