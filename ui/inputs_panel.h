// The left panel: the model (its path, typed, pasted or browsed, and its summary), the
// calibration and evaluation texts with what they hold and what evaluating them will cost,
// the settings form, and Run and Cancel below, always in view. It shows the session's inputs
// and hands it what the user picks; it runs nothing itself.
#pragma once

#include <QString>
#include <QWidget>
#include <optional>

#include "pipeline/run.h"

class QLabel;
class QLineEdit;
class QPushButton;

namespace gptqw::ui {

class RunSession;
class SettingsForm;

class InputsPanel : public QWidget {
  Q_OBJECT
 public:
  explicit InputsPanel(RunSession* session, QWidget* parent = nullptr);

  SettingsForm* settingsForm() const { return m_form; }
  QString modelPathText() const;
  QString modelSummaryText() const;  // rich text
  QString calibrationInfo() const;   // the line under the calibration path
  QString evaluationInfo() const;    // the line under the evaluation path
  // The line under the settings while the runs use an advisor's plan (empty otherwise).
  QString planInfo() const;
  // The form's settings as of its last edit, read once per edit; null while a field does not
  // read as a setting (the form says which).
  const RunSpec* currentSpec() const { return m_spec ? &*m_spec : nullptr; }

  // Whether Run may start now and, when not, why (for tooltips); a GPTQ checkpoint can only be
  // evaluated, which Run then does.
  struct Readiness {
    bool ready = false;
    bool evaluates = false;
    QString why;
  };
  Readiness readiness() const;

 signals:
  void runClicked();
  void cancelClicked();
  void readinessChanged();
  void settingsChanged();  // after each edit of the form, currentSpec() updated

 private:
  QWidget* buildPanel();
  void updateInfoLines();
  void updateButtons();
  void updatePlanLine();

  void readSpec();

  RunSession* m_session;
  SettingsForm* m_form;
  std::optional<RunSpec> m_spec;
  QLineEdit *m_model_edit, *m_calib_edit, *m_eval_edit;
  QLabel *m_summary, *m_calib_info, *m_eval_info, *m_plan_info;
  QWidget* m_plan_row;
  QPushButton *m_run_button, *m_cancel_button;
};

}  // namespace gptqw::ui
