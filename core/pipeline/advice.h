// What the mixed-precision advisor (advisor.h) found: each unit's sensitivity, the plans under
// each budget, and, when checked, what quantizing with them and with uniform settings gave.
// Data only, so that a report can carry it (advice_json.h) without the machinery.
//
// What the budget counts: the bits of the modules a plan can choose for, as the exporter
// stores them (codes, scales, zeros, g_idx, bias). Units no candidate can quantize (a loader
// refuses every setting for their shapes, or the user keeps them) stay in fp16 in every plan
// and every uniform setting, and are left out of the average: they cost the same everywhere.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/divergence_summary.h"
#include "pipeline/perplexity.h"
#include "pipeline/sensitivity.h"

namespace gptqw {


// One unit's part of a plan.
struct PlannedUnit {
  std::vector<LayerId> modules;
  size_t choice = 0;          // index into Sensitivity::candidates
  double predicted = 0;       // its measured sensitivity at that choice
  double measured = -1;       // check: the KL divergence with only this unit quantized as the
                              // plan's run quantized it (-1: not checked)
  std::string marlin;         // why vLLM's Marlin kernel cannot run it ("" when it can)
};

// A setting of every unit: a plan under a budget, or one candidate everywhere (uniform).
struct AdvicePoint {
  std::string label;     // "plan 3.5 bpw", "uniform 4-bit g128"
  bool uniform = false;
  double budget = 0;     // plans: the budget asked for
  double bits_per_weight = 0;
  double predicted = 0;  // sum of the units' sensitivities
  std::vector<PlannedUnit> units;
  // check: the whole quantized model's KL divergence on the held-out windows
  double held_out_kld = -1;
  // curve: perplexity and KL divergence against the original on each evaluation text
  std::vector<DivergenceSummary> eval;
  // What a run with this point quantizes: the run's global setting and the per-module ones.
  PrecisionChoice global;
  std::map<LayerId, PrecisionChoice> per_module;
};

struct Advice {
  Sensitivity sensitivity;
  std::vector<bool> planned;  // per unit: whether a plan chooses for it (else fp16 everywhere)
  std::vector<AdvicePoint> plans, uniform;
  std::vector<std::string> eval_files;
  std::vector<PerplexityResult> eval_original;  // per evaluation text
  double seconds = 0;
  double seconds_runs = 0;  // the check and curve runs (GPTQ and evaluation)
};

// The per-module settings a point's units give against its global setting: every module of a
// unit whose setting differs (fp16 included). What a run of the point quantizes with.
std::map<LayerId, PrecisionChoice> per_module_of(const std::vector<PlannedUnit>& units,
                                                 const std::vector<PrecisionChoice>& candidates,
                                                 const PrecisionChoice& global);

}  // namespace gptqw
