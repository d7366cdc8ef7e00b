// The check of a run's settings before it starts, one for both front ends: the options
// themselves, the calibration text's length, the modules GPTQ loaders cannot load quantized,
// and what a GPTQ checkpoint of the run would meet (check_exportable). Each problem is data:
// what is wrong, what it stops, the modules concerned and the ways out as settings. The command
// line words them with its flags, the window with its controls; nothing here names either.
// The defaults of a run are RunSpec's (run.h): a default-constructed RunSpec is what both
// front ends start from.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/gptq_export.h"
#include "model/config.h"
#include "pipeline/run.h"

namespace gptqw {

// A way out of a problem, as a change of settings.
struct SettingsRemedy {
  enum class Kind {
    use_group_size,   // group size `value` (-1: one group per row)
    keep_in_fp16,     // leave `modules` unquantized (QuantizeOptions::skip)
    quantize_padded,  // quantize the modules loaders cannot read anyway, exported zero-padded
                      // (RunSpec::pad_unloadable)
    fewer_samples,    // at most `value` calibration windows
    shorter_windows,  // calibration windows of at most `value` tokens
  };
  Kind kind = Kind::use_group_size;
  int64_t value = 0;
  std::vector<LinearKind> modules;
  bool operator==(const SettingsRemedy&) const = default;
};

struct SettingsProblem {
  enum class Kind {
    invalid_options,        // the quantizer or GPTQ options themselves
    no_method,              // neither GPTQ nor RTN runs
    every_module_kept,      // QuantizeOptions::skip names all seven modules
    calibration_too_short,  // the calibration text holds less than one window (+ 1 token)
    too_few_windows,        // ... fewer than nsamples windows
    nothing_loadable,       // GPTQ loaders could load no module quantized: nothing would be left
    kept_for_loaders,       // modules left in fp16 because GPTQ loaders cannot load them quantized
    export_issue,           // what a GPTQ checkpoint of the run would meet (export_kind)
  };
  enum class Severity { blocks_run, blocks_export, note };
  Kind kind = Kind::invalid_options;
  Severity severity = Severity::blocks_run;
  // The problem in a sentence of its own: the option's error, sample_calibration's, an export
  // issue's (empty where the modules' issues carry their own messages).
  std::string message;
  std::vector<LinearKind> modules;  // the modules concerned; empty: the whole model
  std::vector<SettingsRemedy> remedies;
  // calibration_too_short, too_few_windows: the text's tokens and the windows of seqlen it holds.
  int64_t tokens = 0, windows = 0;
  // nothing_loadable, kept_for_loaders: each module's shape and reason.
  std::vector<UnloadableModule> unloadable;
  // export_issue: its kind, and the issues it gathers (one per module, or one for the model).
  ExportIssue::Kind export_kind = ExportIssue::Kind::invalid_settings;
  std::vector<ExportIssue> issues;
};

struct RunSettingsCheck {
  std::vector<SettingsProblem> problems;
  // The options the run will use (effective_options: spec.options plus the modules kept in
  // fp16 for the loaders); spec.options where the check stopped early.
  QuantizeOptions effective;
  bool blocks(SettingsProblem::Severity severity) const;
};

// `config`: the model's (null before one is loaded: nothing that depends on its shapes is
// checked); `calib_tokens`: the calibration text's tokens (-1 when unknown: its length is not
// checked). Problems come in this order: the options, the calibration text, the modules kept
// for the loaders, then the export's, a kind of module issue gathering its modules in one
// problem whose ways out hold for all of them.
RunSettingsCheck check_run_settings(const RunSpec& spec, const ModelConfig* config,
                                    int64_t calib_tokens);

}  // namespace gptqw
