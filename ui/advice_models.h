// The item models of the Advisor view (advisor_page.h), which own what it shows of the
// advisor's findings (pipeline/advice.h):
//   - SensitivityMapModel: the heat map, one row per block and one column per module
//     (q, k, v, o, gate, up, down; the modules of a plan unit share its value), each cell the
//     unit's KL divergence against the original when quantized alone at one candidate setting;
//   - AdvicePlanModel: the plan under a bits-per-weight budget, one row per unit, re-solved at
//     once (advisor.h's plan_point, as the command line: milliseconds) when the budget or a hand
//     edit (a unit pinned at one setting) changes, with what the edit changes.
#pragma once

#include <QAbstractTableModel>
#include <QStringList>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "pipeline/advice.h"
#include "pipeline/precision_plan.h"

namespace gptqw::ui {

// "model.layers.0.self_attn.q_proj +2": a unit by its first module and how many more it holds.
QString unitName(const std::vector<LayerId>& modules);

class SensitivityMapModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  // ValueRole: the cell's KL divergence (double; infinity where a loader refuses the setting,
  // NaN for a unit no plan quantizes); UnitRole: the index of its unit in the sensitivity.
  static constexpr int ValueRole = Qt::UserRole + 1;
  static constexpr int UnitRole = Qt::UserRole + 2;

  explicit SensitivityMapModel(QObject* parent = nullptr);

  void setAdvice(std::shared_ptr<const Advice> advice);  // null: empty
  void setCandidate(int candidate);  // an index into the sensitivity's candidates
  int candidate() const { return m_candidate; }
  // The lowest-bit candidate that most planned units can take (what the map starts with).
  static int defaultCandidate(const Advice& a);

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 private:
  void recompute();

  std::shared_ptr<const Advice> m_advice;
  int m_candidate = 0;
  int m_blocks = 0;
  std::map<LayerId, size_t> m_unit_of;
  double m_lo = 0, m_hi = 0;  // log10 range of the finite, positive values at the candidate
};

class AdvicePlanModel : public QAbstractTableModel {
  Q_OBJECT
 public:
  enum Column { UnitColumn, SettingColumn, BitsColumn, PredictedColumn, MeasuredColumn, MarlinColumn, ColumnCount };
  static constexpr int ValueRole = Qt::UserRole + 1;  // the number behind a cell
  // The setting column's choices for a row: "auto", every candidate a loader takes, "fp16".
  static constexpr int OptionsRole = Qt::UserRole + 2;

  explicit AdvicePlanModel(QObject* parent = nullptr);

  // null: empty. Marlin's verdicts come from the sensitivity (the units' shapes, its grids).
  void setAdvice(std::shared_ptr<const Advice> advice);
  const Advice* advice() const { return m_advice.get(); }
  // Re-solves under `bpw`; false (the plan cleared, problem() says why) when even the cheapest
  // setting of every unit does not fit.
  bool setBudget(double bpw);
  double budget() const { return m_budget; }
  // A hand edit: unit (an index into the sensitivity's units) held at `choice` (nullopt: the
  // plan chooses again). Re-solves; false, nothing changed, and editEffect() saying why, when
  // the pinned plan cannot fit the budget or the unit is not planned.
  bool setPin(int unit, std::optional<PrecisionChoice> choice);
  std::optional<PrecisionChoice> pin(int unit) const;
  const std::map<LayerId, PrecisionChoice>& pins() const { return m_pins; }
  void clearPins();

  // The plan now shown (null when none fits).
  const AdvicePoint* point() const { return m_point ? &*m_point : nullptr; }
  // The stored plan of the advice for this budget (checked ones carry measured values), if any.
  const AdvicePoint* storedPlan() const;
  QString problem() const { return m_problem; }
  // What the last hand edit changed: "keeping model.layers.0.self_attn.q_proj +2 at fp16:
  // 3.50 → 3.50 bpw (budget 3.50), predicted KLD 0.404 → 0.512".
  QString editEffect() const { return m_effect; }
  QString totals() const;  // bits per weight and predicted (and measured) KL divergence

  int rowCount(const QModelIndex& parent = QModelIndex()) const override;
  int columnCount(const QModelIndex& parent = QModelIndex()) const override;
  QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
  bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;
  Qt::ItemFlags flags(const QModelIndex& index) const override;
  QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

 signals:
  void planChanged();

 private:
  bool solve(const std::map<LayerId, PrecisionChoice>& pins, QString* problem);

  std::shared_ptr<const Advice> m_advice;
  double m_budget = 4;
  std::map<LayerId, PrecisionChoice> m_pins;
  std::optional<AdvicePoint> m_point;
  QString m_problem, m_effect;
};

}  // namespace gptqw::ui
