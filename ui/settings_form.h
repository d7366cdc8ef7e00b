// The run settings form: quantizer (bits, group size, symmetric, MSE search), GPTQ (act-order,
// static groups, damping, block size), calibration (samples, sequence length, seed, the JSONL
// text field), evaluation, modules kept in fp16 (by name, and whether modules GPTQ loaders cannot
// load are kept in fp16 or quantized zero-padded), threads and device. Its fields start from the
// core's defaults (a default-constructed RunSpec). It checks the combination as it is edited
// (check_run_settings, against the loaded model's dimensions and the calibration corpus's
// length) and lists what is wrong before Run is pressed, in the form's own words (errors block
// Run; export problems block Export; warnings only inform).
#pragma once

#include <QSet>
#include <QStringList>
#include <QWidget>
#include <optional>
#include <vector>

#include "model/config.h"
#include "pipeline/run.h"
#include "pipeline/run_settings.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QSettings;
class QSpinBox;

namespace gptqw::ui {

class SettingsForm : public QWidget {
  Q_OBJECT
 public:
  explicit SettingsForm(QWidget* parent = nullptr);

  // The run these settings describe (calibration and evaluation files are the window's).
  // Throws ConfigError for a field that does not read as a setting (a group size, a module
  // name); runProblems() says what else stops the run.
  RunSpec spec() const;
  // Every field from `spec` (its files aside).
  void setSpec(const RunSpec& spec);
  int threads() const;
  // Where GPTQ runs (spec().options.device): Auto, CPU or GPU. The GPU entry is enabled once a
  // probe on another thread has found a CUDA device; gpuProbed() says the probe has answered.
  Device device() const;
  bool gpuProbed() const;

  // Dimensions to check group sizes and export against; nullopt when no model is loaded.
  void setModelConfig(std::optional<ModelConfig> config);
  // Tokens in the calibration text (for the number of windows it allows); -1 unknown.
  void setCalibrationTokens(int64_t tokens);
  // The string field read from each line of a JSONL calibration file.
  std::string calibrationField() const;

  // What stops a run (empty: Run may start), what stops an export of such a run, and notes.
  QStringList runProblems() const { return m_run_problems; }
  QStringList exportProblems() const { return noteSummaries(true); }
  QStringList warnings() const { return noteSummaries(false); }

  // Direct access for tests and the command line.
  void setBits(int bits);
  void setGroupSize(int group_size);  // -1: per row
  void setActOrder(bool on);
  void setSamples(int nsamples, int seqlen);
  void setSeed(int seed);
  void setEvalWindows(int seqlen, int max_windows);
  void setPadUnloadable(bool on);
  void setCalibrationField(const QString& field);
  // False (and nothing changes) for the GPU while its entry is disabled.
  bool setDevice(Device device);

  void save(QSettings& s) const;
  void restore(QSettings& s);

 signals:
  void changed();  // after every edit, once the problems are updated
  void calibrationFieldChanged();

 private:
  // A line under the form: one kind of problem, the modules it concerns behind "details".
  struct Note {
    QString key;  // stays the same while the problem does, so an expanded line stays open
    bool error = false;
    QString summary;
    QStringList details;
  };
  QList<Note> notesOf(const std::vector<SettingsProblem>& problems) const;
  // A problem that stops the run, with its ways out, in the form's words.
  QString stopText(const SettingsProblem& problem, const RunSpec& spec) const;
  void renderProblems();
  QStringList noteSummaries(bool errors) const;
  void revalidate();
  void setGpuStatus(bool available, const QString& status);

  QComboBox *m_bits, *m_group, *m_device;
  QCheckBox *m_sym, *m_act_order, *m_static_groups, *m_mse, *m_true_seq, *m_pad_unloadable;
  QDoubleSpinBox* m_damp;
  QSpinBox *m_blocksize, *m_nsamples, *m_seqlen, *m_seed, *m_threads, *m_eval_seqlen, *m_eval_windows;
  QLineEdit *m_skip, *m_calib_field;
  QLabel* m_problems;
  std::optional<ModelConfig> m_config;
  int64_t m_calib_tokens = -1;
  QStringList m_run_problems;
  bool m_gpu_probed = false;
  QList<Note> m_notes;
  QSet<QString> m_expanded;
};

}  // namespace gptqw::ui
