#include "advice_models.h"

#include <QBrush>
#include <QColor>
#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "format.h"
#include "model/weights.h"
#include "pipeline/advice_json.h"
#include "pipeline/advisor.h"

namespace gptqw::ui {

namespace {

QString kldText(double v) {
  if (std::isnan(v)) return QObject::tr("—");
  if (std::isinf(v)) return QObject::tr("refused");
  if (v == 0) return QStringLiteral("0");
  return QString::number(v, 'g', 3);
}

QString choiceText(const PrecisionChoice& c) { return qstr(choice_text(c)); }

// YlOrRd: pale yellow (least damage) through orange to dark red (most), t in [0, 1].
QColor heat(double t) {
  static const QColor stops[] = {QColor(255, 255, 204), QColor(254, 217, 118), QColor(253, 141, 60),
                                 QColor(227, 26, 28), QColor(128, 0, 38)};
  constexpr int n = int(std::size(stops)) - 1;
  t = std::clamp(t, 0.0, 1.0) * n;
  const int i = std::min(int(t), n - 1);
  const double f = t - i;
  const QColor &a = stops[i], &b = stops[i + 1];
  return QColor(int(a.red() + f * (b.red() - a.red())), int(a.green() + f * (b.green() - a.green())),
                int(a.blue() + f * (b.blue() - a.blue())));
}

}  // namespace

QString unitName(const std::vector<LayerId>& modules) {
  if (modules.empty()) return {};
  const QString first = qstr(modules.front().module());
  return modules.size() == 1 ? first : QStringLiteral("%1 +%2").arg(first).arg(modules.size() - 1);
}

// --- the heat map --------------------------------------------------------------------------------

SensitivityMapModel::SensitivityMapModel(QObject* parent) : QAbstractTableModel(parent) {}

int SensitivityMapModel::defaultCandidate(const Advice& a) {
  const Sensitivity& s = a.sensitivity;
  int best = 0;
  size_t best_count = 0;
  for (size_t c = 0; c + 1 < s.candidates.size(); ++c) {
    size_t count = 0;
    for (size_t u = 0; u < s.units.size(); ++u)
      if (u < a.planned.size() && a.planned[u] && s.units[u].unloadable[c].empty()) ++count;
    const bool fewer_bits = s.candidates[c].bits < s.candidates[size_t(best)].bits;
    if (count > best_count || (count == best_count && fewer_bits)) best = int(c), best_count = count;
  }
  return best;
}

void SensitivityMapModel::setAdvice(std::shared_ptr<const Advice> advice) {
  beginResetModel();
  m_advice = std::move(advice);
  m_unit_of.clear();
  m_blocks = 0;
  if (m_advice) {
    const auto& units = m_advice->sensitivity.units;
    for (size_t u = 0; u < units.size(); ++u)
      for (const LayerId& id : units[u].modules) {
        m_unit_of[id] = u;
        m_blocks = std::max(m_blocks, id.block + 1);
      }
    m_candidate = defaultCandidate(*m_advice);
  }
  recompute();
  endResetModel();
}

void SensitivityMapModel::setCandidate(int candidate) {
  if (!m_advice || candidate < 0 || size_t(candidate) >= m_advice->sensitivity.candidates.size()) return;
  m_candidate = candidate;
  recompute();
  if (rowCount() > 0) emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

void SensitivityMapModel::recompute() {
  m_lo = std::numeric_limits<double>::infinity();
  m_hi = -m_lo;
  if (!m_advice) return;
  const auto& s = m_advice->sensitivity;
  for (size_t u = 0; u < s.units.size(); ++u) {
    if (!m_advice->planned[u]) continue;
    const double v = s.units[u].kld[size_t(m_candidate)];
    if (std::isfinite(v) && v > 0 && s.units[u].unloadable[size_t(m_candidate)].empty()) {
      m_lo = std::min(m_lo, std::log10(v));
      m_hi = std::max(m_hi, std::log10(v));
    }
  }
}

int SensitivityMapModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() || !m_advice ? 0 : m_blocks;
}

int SensitivityMapModel::columnCount(const QModelIndex& parent) const {
  return parent.isValid() || !m_advice ? 0 : kNumLinears;
}

QVariant SensitivityMapModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || !m_advice) return {};
  const auto it = m_unit_of.find({index.row(), kAllLinears[size_t(index.column())]});
  if (it == m_unit_of.end()) return {};
  const size_t u = it->second, c = size_t(m_candidate);
  const Sensitivity& s = m_advice->sensitivity;
  const UnitSensitivity& unit = s.units[u];
  const bool planned = m_advice->planned[u];
  const std::string& refused = unit.unloadable[c];
  const double v = !planned ? std::numeric_limits<double>::quiet_NaN()
                   : !refused.empty() ? std::numeric_limits<double>::infinity()
                                      : unit.kld[c];
  switch (role) {
    case Qt::DisplayRole:
      if (!planned) return tr("fp16");
      return kldText(v);
    case ValueRole: return v;
    case UnitRole: return qulonglong(u);
    case Qt::BackgroundRole:
      if (!planned || !refused.empty()) return QBrush(QColor(200, 200, 200));
      if (!(v > 0) || !(m_hi > m_lo)) return QBrush(heat(v > 0 ? 0.5 : 0));
      return QBrush(heat((std::log10(v) - m_lo) / (m_hi - m_lo)));
    case Qt::ForegroundRole: {
      if (!planned || !refused.empty() || !(v > 0) || !(m_hi > m_lo)) return QBrush(Qt::black);
      return QBrush((std::log10(v) - m_lo) / (m_hi - m_lo) > 0.7 ? Qt::white : Qt::black);
    }
    case Qt::TextAlignmentRole: return int(Qt::AlignCenter);
    case Qt::ToolTipRole: {
      const QString name = unitName(unit.modules);
      if (!planned) return tr("%1: fp16 in every plan (no candidate setting can be loaded for its shapes, or it is kept)").arg(name);
      if (!refused.empty())
        return tr("%1 at %2: a loader refuses this setting: %3").arg(name, choiceText(s.candidates[c]), qstr(refused));
      QString tip = tr("<b>%1</b> quantized alone at %2:<br>KL divergence %3 nats per position (log10 %4)%5"
                       "<br>%6 bits stored for %7 weights (%8 bits per weight)")
                        .arg(name.toHtmlEscaped(), choiceText(s.candidates[c]))
                        .arg(v, 0, 'g', 6)
                        .arg(v > 0 ? std::log10(v) : -std::numeric_limits<double>::infinity(), 0, 'f', 2)
                        .arg(unit.measured[c] ? QString() : tr(" (scaled from the anchor by GPTQ's loss)"))
                        .arg(qulonglong(unit.bits[c]))
                        .arg(qlonglong(unit.weights))
                        .arg(unit.weights > 0 ? double(unit.bits[c]) / double(unit.weights) : 0.0, 0, 'f', 3);
      tip += tr("<br>at every setting:");
      for (size_t k = 0; k + 1 < s.candidates.size(); ++k)
        tip += QStringLiteral("<br>&nbsp;&nbsp;%1: %2").arg(choiceText(s.candidates[k]),
                                                             unit.unloadable[k].empty() ? kldText(unit.kld[k]) : tr("refused"));
      return tip;
    }
    default: return {};
  }
}

QVariant SensitivityMapModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (role != Qt::DisplayRole) return {};
  if (orientation == Qt::Horizontal)
    return section >= 0 && section < kNumLinears ? qstr(std::string(linear_short_name(kAllLinears[size_t(section)]))) : QVariant();
  return tr("block %1").arg(section);
}

// --- the plan ------------------------------------------------------------------------------------

AdvicePlanModel::AdvicePlanModel(QObject* parent) : QAbstractTableModel(parent) {}

void AdvicePlanModel::setAdvice(std::shared_ptr<const Advice> advice) {
  beginResetModel();
  m_advice = std::move(advice);
  m_pins.clear();
  m_effect.clear();
  if (m_advice) {
    if (!m_advice->plans.empty()) m_budget = m_advice->plans.front().budget;
    solve(m_pins, &m_problem);
  } else {
    m_point.reset();
    m_problem.clear();
  }
  endResetModel();
  emit planChanged();
}

bool AdvicePlanModel::solve(const std::map<LayerId, PrecisionChoice>& pins, QString* problem) {
  try {
    AdvicePoint p = plan_point(m_advice->sensitivity, m_advice->planned, pins, m_budget);
    if (!pins.empty()) p.label += tr(" (edited)").toStdString();
    m_point = std::move(p);
    problem->clear();
    return true;
  } catch (const Error& e) {
    *problem = qstr(e.what());
    return false;
  }
}

bool AdvicePlanModel::setBudget(double bpw) {
  if (!m_advice) {
    m_budget = bpw;
    return false;
  }
  beginResetModel();
  m_budget = bpw;
  m_effect.clear();
  const bool ok = solve(m_pins, &m_problem);
  if (!ok) m_point.reset();
  endResetModel();
  emit planChanged();
  return ok;
}

std::optional<PrecisionChoice> AdvicePlanModel::pin(int unit) const {
  if (!m_advice || unit < 0 || size_t(unit) >= m_advice->sensitivity.units.size()) return std::nullopt;
  auto it = m_pins.find(m_advice->sensitivity.units[size_t(unit)].modules.front());
  if (it == m_pins.end()) return std::nullopt;
  return it->second;
}

bool AdvicePlanModel::setPin(int unit, std::optional<PrecisionChoice> choice) {
  if (!m_advice || unit < 0 || size_t(unit) >= m_advice->sensitivity.units.size()) return false;
  const Sensitivity& s = m_advice->sensitivity;
  const UnitSensitivity& u = s.units[size_t(unit)];
  const QString name = unitName(u.modules);
  if (!m_advice->planned[size_t(unit)]) {
    m_effect = tr("%1 stays in fp16 in every plan: no candidate setting can be loaded for it").arg(name);
    emit planChanged();
    return false;
  }
  std::map<LayerId, PrecisionChoice> pins = m_pins;
  if (choice) pins[u.modules.front()] = choice->fp16 ? s.candidates.back() : *choice;
  else pins.erase(u.modules.front());
  const QString what = choice ? tr("keeping %1 at %2").arg(name, choiceText(*choice)) : tr("letting the plan choose for %1").arg(name);
  const std::optional<AdvicePoint> before = m_point;
  QString problem;
  beginResetModel();
  const bool ok = solve(pins, &problem);
  if (ok) {
    m_pins = std::move(pins);
    m_problem.clear();
  }
  endResetModel();
  if (!ok) {
    m_effect = tr("%1 does not fit %2 bpw: %3").arg(what).arg(m_budget, 0, 'f', 2).arg(problem);
  } else if (before) {
    m_effect = tr("%1: %2 → %3 bpw (budget %4), predicted KLD %5 → %6")
                   .arg(what)
                   .arg(before->bits_per_weight, 0, 'f', 2)
                   .arg(m_point->bits_per_weight, 0, 'f', 2)
                   .arg(m_budget, 0, 'f', 2)
                   .arg(before->predicted, 0, 'f', 3)
                   .arg(m_point->predicted, 0, 'f', 3);
  } else {
    m_effect = tr("%1: %2 bpw (budget %3), predicted KLD %4")
                   .arg(what)
                   .arg(m_point->bits_per_weight, 0, 'f', 2)
                   .arg(m_budget, 0, 'f', 2)
                   .arg(m_point->predicted, 0, 'f', 3);
  }
  emit planChanged();
  return ok;
}

void AdvicePlanModel::clearPins() {
  if (m_pins.empty() || !m_advice) return;
  beginResetModel();
  m_pins.clear();
  m_effect.clear();
  if (!solve(m_pins, &m_problem)) m_point.reset();
  endResetModel();
  emit planChanged();
}

const AdvicePoint* AdvicePlanModel::storedPlan() const {
  if (!m_advice) return nullptr;
  for (const AdvicePoint& p : m_advice->plans)
    if (std::fabs(p.budget - m_budget) < 1e-9) return &p;
  return nullptr;
}

QString AdvicePlanModel::totals() const {
  if (!m_advice) return tr("No advice: open a report of gptqw advise or Measure.");
  if (!m_point) return tr("No plan fits %1 bpw: %2").arg(m_budget, 0, 'f', 2).arg(m_problem);
  QString text = tr("%1 bits per weight (budget %2), predicted KLD %3")
                     .arg(m_point->bits_per_weight, 0, 'f', 3)
                     .arg(m_budget, 0, 'f', 2)
                     .arg(m_point->predicted, 0, 'g', 4);
  const AdvicePoint* stored = storedPlan();
  if (stored && m_pins.empty() && stored->held_out_kld >= 0)
    text += tr(", measured %1 on the held-out windows").arg(stored->held_out_kld, 0, 'g', 4);
  int rules = int(m_point->per_module.size());
  text += tr("; a run quantizes with %1 and %2 modules with their own settings")
              .arg(choiceText(m_point->global))
              .arg(rules);
  return text;
}

int AdvicePlanModel::rowCount(const QModelIndex& parent) const {
  return parent.isValid() || !m_advice || !m_point ? 0 : int(m_point->units.size());
}

int AdvicePlanModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

Qt::ItemFlags AdvicePlanModel::flags(const QModelIndex& index) const {
  Qt::ItemFlags f = QAbstractTableModel::flags(index);
  if (index.isValid() && index.column() == SettingColumn && m_advice && m_advice->planned[size_t(index.row())])
    f |= Qt::ItemIsEditable;
  return f;
}

QVariant AdvicePlanModel::data(const QModelIndex& index, int role) const {
  if (!index.isValid() || !m_point || size_t(index.row()) >= m_point->units.size()) return {};
  const size_t u = size_t(index.row());
  const Sensitivity& s = m_advice->sensitivity;
  const PlannedUnit& pu = m_point->units[u];
  const UnitSensitivity& us = s.units[u];
  const bool planned = m_advice->planned[u];
  const std::optional<PrecisionChoice> pinned = pin(int(u));
  const AdvicePoint* stored = storedPlan();
  const double measured = stored && u < stored->units.size() && stored->units[u].choice == pu.choice
                              ? stored->units[u].measured : -1;
  switch (role) {
    case Qt::DisplayRole:
      switch (index.column()) {
        case UnitColumn: return unitName(pu.modules);
        case SettingColumn:
          if (!planned) return tr("fp16 (every plan)");
          return pinned ? tr("%1 (pinned)").arg(choiceText(s.candidates[pu.choice]))
                        : tr("auto: %1").arg(choiceText(s.candidates[pu.choice]));
        case BitsColumn:
          return QString::number(us.weights > 0 ? double(us.bits[pu.choice]) / double(us.weights) : 0.0, 'f', 3);
        case PredictedColumn: return kldText(pu.predicted);
        case MeasuredColumn: return measured >= 0 ? kldText(measured) : tr("—");
        case MarlinColumn: return pu.marlin.empty() ? (s.candidates[pu.choice].fp16 ? tr("fp16") : tr("yes")) : qstr(pu.marlin);
      }
      return {};
    case Qt::EditRole:
      if (index.column() == SettingColumn) return pinned ? choiceText(*pinned) : tr("auto");
      return data(index, Qt::DisplayRole);
    case ValueRole:
      switch (index.column()) {
        case SettingColumn: return qulonglong(pu.choice);
        case BitsColumn: return us.weights > 0 ? double(us.bits[pu.choice]) / double(us.weights) : 0.0;
        case PredictedColumn: return pu.predicted;
        case MeasuredColumn: return measured;
      }
      return data(index, Qt::DisplayRole);
    case OptionsRole: {
      QStringList options = {tr("auto")};
      for (size_t c = 0; c + 1 < s.candidates.size(); ++c)
        if (us.unloadable[c].empty()) options << choiceText(s.candidates[c]);
      options << QStringLiteral("fp16");
      return options;
    }
    case Qt::ForegroundRole:
      if (index.column() == MarlinColumn && !pu.marlin.empty()) return QBrush(QColor(176, 112, 0));
      if (index.column() == SettingColumn && pinned) return QBrush(QColor(30, 90, 200));
      return {};
    case Qt::ToolTipRole:
      switch (index.column()) {
        case UnitColumn: {
          QStringList names;
          for (const LayerId& id : pu.modules) names << qstr(id.module());
          return names.join('\n');
        }
        case SettingColumn:
          return planned ? tr("Double-click (or right-click) to pin this unit at one setting; \"auto\" lets the plan choose")
                         : tr("No candidate setting can be loaded for this unit's shapes: fp16 in every plan");
        case MeasuredColumn:
          return tr("The KL divergence with only this unit quantized as the checked plan's run quantized it "
                    "(gptqw advise --check), when this budget was checked and the setting is the same");
        case MarlinColumn: return pu.marlin.empty() ? tr("vLLM's Marlin kernel can run it") : qstr(pu.marlin);
      }
      return {};
    default: return {};
  }
}

bool AdvicePlanModel::setData(const QModelIndex& index, const QVariant& value, int role) {
  if (!index.isValid() || index.column() != SettingColumn || role != Qt::EditRole) return false;
  const QString text = value.toString().trimmed();
  if (text == tr("auto") || text.isEmpty()) return setPin(index.row(), std::nullopt);
  try {
    return setPin(index.row(), parse_choice(text.toStdString()));
  } catch (const Error& e) {
    m_effect = qstr(e.what());
    emit planChanged();
    return false;
  }
}

QVariant AdvicePlanModel::headerData(int section, Qt::Orientation orientation, int role) const {
  if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
  switch (section) {
    case UnitColumn: return tr("Unit");
    case SettingColumn: return tr("Setting");
    case BitsColumn: return tr("Bits/weight");
    case PredictedColumn: return tr("Predicted KLD");
    case MeasuredColumn: return tr("Measured KLD");
    case MarlinColumn: return tr("Marlin");
  }
  return {};
}

}  // namespace gptqw::ui
