// The Advisor view: the mixed-precision advisor's findings (pipeline/advice.h), measured in
// this session (Measure…) or opened with a report of `gptqw advise`. A thin shell over its
// models (advice_models.h): the heat map of each unit's sensitivity at a chosen candidate, the
// plan under a budget (re-solved at once when the budget or a hand edit changes, with what the
// edit changes), the curve of bits per weight against KL divergence, and "Use this plan for
// the next run", which hands the plan's per-module settings to the session.
#pragma once

#include <QWidget>
#include <memory>

#include "pipeline/advisor.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;
class QTableView;

namespace gptqw::ui {

class AdvicePlanModel;
class RunSession;
class SensitivityMapModel;
namespace plots {
class AdviceCurveChart;
}

class AdvisorPage : public QWidget {
  Q_OBJECT
 public:
  explicit AdvisorPage(RunSession* session, QWidget* parent = nullptr);

  SensitivityMapModel* sensitivity() const { return m_map; }
  AdvicePlanModel* plan() const { return m_plan; }
  QTableView* mapView() const { return m_map_view; }
  QTableView* planView() const { return m_plan_view; }
  QComboBox* candidateBox() const { return m_candidate; }
  QDoubleSpinBox* budgetBox() const { return m_budget; }
  plots::AdviceCurveChart* curve() const { return m_curve; }
  QPushButton* measureButton() const { return m_measure; }
  QPushButton* usePlanButton() const { return m_use; }
  QString totalsText() const;
  QString effectText() const;

  // What Measure asks for: the budgets, candidates, held-out windows and checks typed here;
  // false with *problem when a field does not read.
  bool adviceOptions(AdviceSpec* spec, QString* problem) const;
  // Sets the fields (tests, screenshots): budgets "3, 3.5, 4", candidates "2:32 4:32 8:32".
  void setMeasureOptions(const QString& budgets, const QString& candidates, int held_out, bool check, bool curve);

 public slots:
  void usePlan();  // the plan shown, for the session's next runs

 signals:
  void measureClicked();

 private:
  void setAdvice(const Advice* advice);
  void updateButtons();
  void updatePlanText();
  void updateCurve();
  void showPinMenu(const QPoint& pos);

  RunSession* m_session;
  std::shared_ptr<const Advice> m_advice;
  SensitivityMapModel* m_map;
  AdvicePlanModel* m_plan;
  QTableView *m_map_view, *m_plan_view;
  QComboBox* m_candidate;
  QDoubleSpinBox* m_budget;
  QLabel *m_note, *m_totals, *m_effect, *m_in_use;
  QLineEdit *m_budgets, *m_candidates;
  QSpinBox* m_held_out;
  QCheckBox *m_check, *m_curve_box;
  QPushButton *m_measure, *m_use, *m_clear_pins;
  plots::AdviceCurveChart* m_curve;
};

}  // namespace gptqw::ui
