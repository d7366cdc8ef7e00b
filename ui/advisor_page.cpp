#include "advisor_page.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QSplitter>
#include <QStyledItemDelegate>
#include <QTableView>
#include <QVBoxLayout>
#include <cmath>

#include "advice_models.h"
#include "common/error.h"
#include "format.h"
#include "pipeline/advice_json.h"
#include "plots/advice_curve_chart.h"
#include "run_session.h"

namespace gptqw::ui {

namespace {

// The plan's setting column: a combo box of "auto", the unit's loadable candidates and fp16.
class SettingDelegate : public QStyledItemDelegate {
 public:
  using QStyledItemDelegate::QStyledItemDelegate;
  QWidget* createEditor(QWidget* parent, const QStyleOptionViewItem&, const QModelIndex& index) const override {
    auto* box = new QComboBox(parent);
    box->addItems(index.data(AdvicePlanModel::OptionsRole).toStringList());
    connect(box, &QComboBox::activated, this, [this, box] {
      auto* self = const_cast<SettingDelegate*>(this);
      emit self->commitData(box);
      emit self->closeEditor(box);
    });
    return box;
  }
  void setEditorData(QWidget* editor, const QModelIndex& index) const override {
    auto* box = static_cast<QComboBox*>(editor);
    box->setCurrentIndex(std::max(0, box->findText(index.data(Qt::EditRole).toString())));
  }
  void setModelData(QWidget* editor, QAbstractItemModel* model, const QModelIndex& index) const override {
    model->setData(index, static_cast<QComboBox*>(editor)->currentText(), Qt::EditRole);
  }
};

QTableView* tableView() {
  auto* view = new QTableView;
  view->setAlternatingRowColors(false);
  view->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  return view;
}

}  // namespace

AdvisorPage::AdvisorPage(RunSession* session, QWidget* parent) : QWidget(parent), m_session(session) {
  m_map = new SensitivityMapModel(this);
  m_plan = new AdvicePlanModel(this);

  m_note = new QLabel(tr("The mixed-precision advisor measures how much each module's quantization changes the "
                         "model's output (KL divergence against the original on held-out windows of the "
                         "calibration text) at each candidate setting, and spends a bits-per-weight budget "
                         "where the damage is largest. Measure, or open a report of gptqw advise."));
  m_note->setWordWrap(true);

  // What Measure asks for.
  m_budgets = new QLineEdit(QStringLiteral("3.5, 4, 5"));
  m_budgets->setToolTip(tr("Bits per weight of the plans, separated by commas or spaces"));
  m_candidates = new QLineEdit(QStringLiteral("2:32 2:128 3:32 3:128 4:32 4:128 8:32 8:128"));
  m_candidates->setToolTip(tr("The settings each unit may take, bits:group (group -1: one grid per row); "
                              "fp16 is always a choice"));
  m_held_out = new QSpinBox;
  m_held_out->setRange(1, 1024);
  m_held_out->setValue(8);
  m_held_out->setToolTip(tr("Held-out windows of the calibration text the KL divergence is measured on"));
  m_check = new QCheckBox(tr("Check"));
  m_check->setToolTip(tr("Quantize with every plan and measure its KL divergence (and each unit's)"));
  m_curve_box = new QCheckBox(tr("Curve"));
  m_curve_box->setToolTip(tr("Also quantize with every candidate uniformly and evaluate every point "
                             "(the curve; takes several times longer)"));
  m_measure = new QPushButton(tr("Measure…"));
  connect(m_measure, &QPushButton::clicked, this, &AdvisorPage::measureClicked);
  auto* measure_row = new QHBoxLayout;
  measure_row->addWidget(new QLabel(tr("Budgets:")));
  measure_row->addWidget(m_budgets, 1);
  measure_row->addWidget(new QLabel(tr("Candidates:")));
  measure_row->addWidget(m_candidates, 3);
  measure_row->addWidget(new QLabel(tr("Held-out:")));
  measure_row->addWidget(m_held_out);
  measure_row->addWidget(m_check);
  measure_row->addWidget(m_curve_box);
  measure_row->addWidget(m_measure);

  // The heat map.
  m_candidate = new QComboBox;
  connect(m_candidate, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i >= 0) m_map->setCandidate(m_candidate->itemData(i).toInt());
  });
  m_map_view = tableView();
  m_map_view->setModel(m_map);
  m_map_view->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  m_map_view->setSelectionMode(QAbstractItemView::NoSelection);
  auto* map_box = new QWidget;
  auto* map_layout = new QVBoxLayout(map_box);
  map_layout->setContentsMargins(0, 0, 0, 0);
  auto* map_bar = new QHBoxLayout;
  auto* map_label = new QLabel(tr("KLD of each unit quantized alone at"));
  map_label->setToolTip(tr("Colour: log10 of the KL divergence; grey: a loader refuses the setting, or the "
                           "unit stays in fp16 in every plan. Hover a cell for its numbers."));
  map_bar->addWidget(map_label);
  map_bar->addWidget(m_candidate);
  map_bar->addStretch(1);
  map_layout->addLayout(map_bar);
  map_layout->addWidget(m_map_view, 1);

  m_curve = new plots::AdviceCurveChart;

  // The plan.
  m_budget = new QDoubleSpinBox;
  m_budget->setRange(1, 16);
  m_budget->setDecimals(2);
  m_budget->setSingleStep(0.05);
  m_budget->setSuffix(tr(" bpw"));
  m_budget->setValue(4);
  m_budget->setKeyboardTracking(false);
  connect(m_budget, &QDoubleSpinBox::valueChanged, this, [this](double v) { m_plan->setBudget(v); });
  m_use = new QPushButton(tr("Use this plan for the next run"));
  connect(m_use, &QPushButton::clicked, this, &AdvisorPage::usePlan);
  m_clear_pins = new QPushButton(tr("Clear hand edits"));
  connect(m_clear_pins, &QPushButton::clicked, m_plan, &AdvicePlanModel::clearPins);
  m_totals = new QLabel;
  m_totals->setWordWrap(true);
  m_totals->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_effect = new QLabel;
  m_effect->setWordWrap(true);
  m_effect->setStyleSheet(QStringLiteral("color: #1e5ac8"));
  m_effect->setTextInteractionFlags(Qt::TextSelectableByMouse);
  m_in_use = new QLabel;
  m_in_use->setWordWrap(true);
  m_plan_view = tableView();
  m_plan_view->setModel(m_plan);
  m_plan_view->verticalHeader()->setVisible(false);
  m_plan_view->setItemDelegateForColumn(AdvicePlanModel::SettingColumn, new SettingDelegate(m_plan_view));
  m_plan_view->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::SelectedClicked);
  m_plan_view->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(m_plan_view, &QTableView::customContextMenuRequested, this, &AdvisorPage::showPinMenu);
  auto* plan_box = new QGroupBox(tr("Plan"));
  auto* plan_layout = new QVBoxLayout(plan_box);
  auto* plan_bar = new QHBoxLayout;
  plan_bar->addWidget(new QLabel(tr("Budget:")));
  plan_bar->addWidget(m_budget);
  plan_bar->addStretch(1);
  plan_bar->addWidget(m_clear_pins);
  plan_bar->addWidget(m_use);
  plan_layout->addLayout(plan_bar);
  plan_layout->addWidget(m_totals);
  plan_layout->addWidget(m_effect);
  plan_layout->addWidget(m_in_use);
  plan_layout->addWidget(m_plan_view, 1);

  auto* left = new QSplitter(Qt::Vertical);
  left->addWidget(map_box);
  left->addWidget(m_curve);
  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(left);
  split->addWidget(plan_box);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 1);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(m_note);
  layout->addLayout(measure_row);
  layout->addWidget(split, 1);

  connect(m_plan, &AdvicePlanModel::planChanged, this, &AdvisorPage::updatePlanText);
  connect(m_plan, &AdvicePlanModel::planChanged, this, &AdvisorPage::updateButtons);
  connect(session, &RunSession::adviceReady, this, [this](const Advice& a) { setAdvice(&a); });
  connect(session, &RunSession::adviceCleared, this, [this] { setAdvice(nullptr); });
  connect(session, &RunSession::busyChanged, this, &AdvisorPage::updateButtons);
  connect(session, &RunSession::modelLoaded, this, &AdvisorPage::updateButtons);
  connect(session, &RunSession::calibrationChanged, this, &AdvisorPage::updateButtons);
  connect(session, &RunSession::planForRunsChanged, this, &AdvisorPage::updatePlanText);
  setAdvice(nullptr);
}

void AdvisorPage::setAdvice(const Advice* advice) {
  m_advice = advice ? std::make_shared<const Advice>(*advice) : nullptr;
  m_map->setAdvice(m_advice);
  {
    QSignalBlocker block(m_candidate);
    m_candidate->clear();
    if (m_advice) {
      const auto& cands = m_advice->sensitivity.candidates;
      for (size_t c = 0; c + 1 < cands.size(); ++c)
        m_candidate->addItem(qstr(cands[c].describe()), int(c));
      m_candidate->setCurrentIndex(m_candidate->findData(m_map->candidate()));
    }
  }
  if (m_advice && !m_advice->plans.empty()) {
    QSignalBlocker block(m_budget);
    m_budget->setValue(m_advice->plans.front().budget);
  }
  m_plan->setAdvice(m_advice);
  m_plan->setBudget(m_budget->value());
  m_note->setVisible(!m_advice);
  m_plan_view->resizeColumnsToContents();
  updateCurve();
  updateButtons();
}

void AdvisorPage::updateButtons() {
  const bool idle = !m_session->busy();
  const bool can_measure = idle && m_session->model() && !m_session->checkpointSettings() &&
                           !m_session->calibrationFile().isEmpty();
  m_measure->setEnabled(can_measure);
  m_measure->setToolTip(!m_session->model()                  ? tr("Open a model first.")
                        : m_session->calibrationFile().isEmpty() ? tr("Choose a calibration text first.")
                        : !idle                                  ? tr("Wait for the current task to end.")
                                                                 : tr("Measure each unit's sensitivity with the "
                                                                      "form's calibration windows and GPTQ settings"));
  m_use->setEnabled(m_plan->point() != nullptr);
  m_clear_pins->setEnabled(!m_plan->pins().empty());
}

void AdvisorPage::updatePlanText() {
  m_totals->setText(m_plan->totals());
  m_effect->setText(m_plan->editEffect());
  m_effect->setVisible(!m_plan->editEffect().isEmpty());
  const auto& in_use = m_session->planForRuns();
  m_in_use->setText(in_use ? tr("The next runs use %1 (%2 bpw).").arg(qstr(in_use->label)).arg(in_use->bits_per_weight, 0, 'f', 2)
                           : QString());
  m_in_use->setVisible(in_use.has_value());
}

QString AdvisorPage::totalsText() const { return m_totals->text(); }
QString AdvisorPage::effectText() const { return m_effect->text(); }

void AdvisorPage::updateCurve() {
  if (!m_advice || (m_advice->plans.empty() && m_advice->uniform.empty()))
    return m_curve->setEmpty(tr("No advice yet"));
  // What the y axis shows: the first evaluation text's KL divergence when the curve was drawn,
  // else the held-out windows' when the plans were checked, else the prediction.
  std::vector<const AdvicePoint*> all;
  for (const AdvicePoint& p : m_advice->plans) all.push_back(&p);
  for (const AdvicePoint& p : m_advice->uniform) all.push_back(&p);
  enum class Y { eval, held_out, predicted } mode = Y::predicted;
  for (const AdvicePoint* p : all)
    if (!p->eval.empty()) mode = Y::eval;
  if (mode == Y::predicted)
    for (const AdvicePoint* p : all)
      if (p->held_out_kld >= 0) mode = Y::held_out;
  auto y_of = [mode](const AdvicePoint& p) {
    return mode == Y::eval ? (p.eval.empty() ? -1.0 : p.eval.front().kld.value)
           : mode == Y::held_out ? p.held_out_kld
                                 : p.predicted;
  };
  QString y_title;
  if (mode == Y::eval) {
    QString text = m_advice->eval_files.empty() ? tr("the evaluation text") : QFileInfo(qstr(m_advice->eval_files.front())).fileName();
    text = text.section(QLatin1Char(' '), 0, 0);  // without the "(N windows used ...)" note
    y_title = tr("Mean KLD on %1 (measured, log)").arg(text);
  } else if (mode == Y::held_out) {
    y_title = tr("KLD on the held-out windows (measured, log)");
  } else {
    y_title = tr("Predicted KLD (sum of the units', not checked; log)");
  }
  plots::AdviceCurveChart::Series plans{tr("plans"), QColor(31, 119, 180), {}};
  plots::AdviceCurveChart::Series uniform{tr("uniform settings"), QColor(255, 127, 14), {}};
  for (const AdvicePoint& p : m_advice->plans)
    if (y_of(p) >= 0) plans.points.push_back({p.bits_per_weight, y_of(p), qstr(p.label)});
  for (const AdvicePoint& p : m_advice->uniform)
    if (y_of(p) >= 0) uniform.points.push_back({p.bits_per_weight, y_of(p), qstr(p.label)});
  std::vector<plots::AdviceCurveChart::Series> series = {plans};
  if (!uniform.points.empty()) series.push_back(uniform);
  m_curve->setData(tr("Bits per weight against KL divergence from the original"), y_title, series);
}

void AdvisorPage::showPinMenu(const QPoint& pos) {
  const QModelIndex index = m_plan_view->indexAt(pos);
  if (!index.isValid()) return;
  const int row = index.row();
  const QStringList options = m_plan->index(row, AdvicePlanModel::SettingColumn).data(AdvicePlanModel::OptionsRole).toStringList();
  QMenu menu(this);
  for (const QString& option : options) {
    QAction* a = menu.addAction(option == tr("auto") ? tr("Let the plan choose (auto)") : tr("Keep at %1").arg(option));
    connect(a, &QAction::triggered, this, [this, row, option] {
      m_plan->setData(m_plan->index(row, AdvicePlanModel::SettingColumn), option, Qt::EditRole);
    });
  }
  menu.exec(m_plan_view->viewport()->mapToGlobal(pos));
}

void AdvisorPage::usePlan() {
  if (const AdvicePoint* p = m_plan->point()) m_session->usePlan(*p);
}

bool AdvisorPage::adviceOptions(AdviceSpec* spec, QString* problem) const {
  static const QRegularExpression sep(QStringLiteral("[,\\s]+"));
  spec->budgets.clear();
  for (const QString& word : m_budgets->text().split(sep, Qt::SkipEmptyParts)) {
    bool ok = false;
    const double v = word.toDouble(&ok);
    if (!ok || !(v > 0) || v > 16) {
      *problem = tr("Budget '%1' is not a number of bits per weight between 0 and 16").arg(word);
      return false;
    }
    spec->budgets.push_back(v);
  }
  if (spec->budgets.empty()) {
    *problem = tr("Give at least one budget (bits per weight)");
    return false;
  }
  spec->sensitivity.candidates.clear();
  for (const QString& word : m_candidates->text().split(sep, Qt::SkipEmptyParts)) {
    if (word == QLatin1String("fp16")) continue;  // always a choice
    try {
      spec->sensitivity.candidates.push_back(parse_choice(word.toStdString()));
    } catch (const Error& e) {
      *problem = tr("Candidates: %1").arg(qstr(e.what()));
      return false;
    }
  }
  if (spec->sensitivity.candidates.empty()) {
    *problem = tr("Give at least one candidate setting (bits:group, e.g. 4:128)");
    return false;
  }
  spec->held_out = m_held_out->value();
  spec->curve = m_curve_box->isChecked();
  spec->check = spec->curve || m_check->isChecked();
  return true;
}

void AdvisorPage::setMeasureOptions(const QString& budgets, const QString& candidates, int held_out, bool check,
                                    bool curve) {
  m_budgets->setText(budgets);
  m_candidates->setText(candidates);
  m_held_out->setValue(held_out);
  m_check->setChecked(check);
  m_curve_box->setChecked(curve);
}

}  // namespace gptqw::ui
