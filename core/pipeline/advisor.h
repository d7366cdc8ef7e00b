// The mixed-precision advisor: measure each unit's sensitivity (sensitivity.h), choose the
// plan of least predicted damage under each bits-per-weight budget (precision_plan.h), and,
// when asked, quantize with every plan and with uniform settings to check the prediction and
// draw the curve of bits per weight against KL divergence. `gptqw advise` and the window's
// Advisor view run it; the plans go to `gptqw quantize --plan` and to the export as per-module
// settings (GPTQModel's "dynamic").
#pragma once

#include <map>
#include <vector>

#include "model/model.h"
#include "pipeline/advice.h"
#include "pipeline/precision_plan.h"
#include "pipeline/quantize.h"
#include "pipeline/run.h"

namespace gptqw {

struct AdviceSpec {
  // The calibration text and windows, the GPTQ settings every candidate shares (sym, damping,
  // act-order), the evaluation texts of the curve (eval_files, eval) and the threads.
  RunSpec run;
  SensitivityOptions sensitivity;
  int held_out = 8;             // held-out windows of the calibration text
  std::vector<double> budgets;  // bits per weight
  // Hand edits: a unit held at one setting in every plan, keyed by any of its modules.
  std::map<LayerId, PrecisionChoice> fixed;
  // Quantize with every plan and check its prediction: the model's KL divergence on the
  // held-out windows, and each unit's alone.
  bool check = false;
  // Also quantize with every candidate uniformly and evaluate all of them on the evaluation
  // texts (the curve); implies check.
  bool curve = false;
};

// Windows of calib.seqlen tokens of the text that overlap no calibration window, spread over
// the text; at most `count`. Throws ConfigError when the text has no room for one.
CalibrationSet held_out_windows(const std::vector<int32_t>& text_ids, const CalibrationSet& calib,
                                int count);

// The plan units of a measurement with their candidates' bits and damage (infinite where a
// loader refuses the setting), hand edits applied. Units of `planned` false are left out.
std::vector<PlanUnit> plan_units(const Sensitivity& s, const std::vector<bool>& planned,
                                 const std::map<LayerId, PrecisionChoice>& fixed);

// A point from one choice per unit (plans and uniform settings alike): bits per weight over
// the planned units, predicted damage, Marlin problems, and the run's settings.
AdvicePoint advice_point(const Sensitivity& s, const std::vector<bool>& planned,
                         const std::vector<size_t>& choice);

// Marlin's verdict on each unit of a point (pipeline/precision_plan.h: marlin_problem).
void mark_marlin(AdvicePoint& point, const Sensitivity& s);

// The plan of least predicted damage under `budget` bits per weight with the hand edits
// `fixed`, as a point labelled "plan 3.50 bpw" with Marlin's verdicts. Throws ConfigError when
// the budget cannot be met (solve_plan) or an edit cannot be loaded (plan_units).
AdvicePoint plan_point(const Sensitivity& s, const std::vector<bool>& planned,
                       const std::map<LayerId, PrecisionChoice>& fixed, double budget);

// The whole advisor: inputs, sensitivity, plans, and the check and curve runs when asked.
// `calib` (optional) receives the calibration windows it drew, for the report's record.
Advice advise(const Model& model, const AdviceSpec& spec, const ProgressFn& progress = {},
              CalibrationSet* calib = nullptr);

// The quantize options that run a point: `base` with its global and per-module settings.
QuantizeOptions point_options(const QuantizeOptions& base, const AdvicePoint& point);

}  // namespace gptqw
