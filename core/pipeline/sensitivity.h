// How much each module matters: the change of the model's output distribution (KL divergence
// against the original, on held-out windows of the calibration text) when that module alone is
// quantized with GPTQ at each candidate setting, as exllamav2 measures its layers' errors and
// exllamav3 their KL divergence, here for GPTQ's own per-module settings. The mixed-precision
// plan (precision_plan.h) spends the bits where this damage is largest.
//
// Modules are measured in the units a loader must give one setting (plan_unit_modules: q/k/v,
// o, gate/up, down of each block): a unit's modules are quantized together and their damage is
// measured together.
//
// What is reused, and what it costs with C candidates, L blocks, T calibration and T_h
// held-out tokens:
//   - the Hessians come from one pass of the original model over the calibration windows
//     (each module alone quantized sees the original inputs), one per distinct input per
//     block, and are damped and factorised once: every candidate shares the factor (the
//     damping and act-order permutation do not depend on the bits);
//   - GPTQ runs once per module and candidate on that factor: C times one plain run's GPTQ
//     column work, the calibration forward and the factorisations once;
//   - the original's hidden states entering every block and its output distributions on the
//     held-out windows are computed once; a unit of block b is then measured by running only
//     blocks b..L-1 and the head with its quantized weights: about (L - b) / L of a held-out
//     forward per unit and candidate (Measure::kld), or per unit only (Measure::scaled).
// Memory: every block's weights in fp32 (the model's parameters x 4 bytes), the held-out
// hidden states (L x T_h x hidden x 4 bytes) and the original's output distributions
// (T_h x vocabulary x 8 bytes).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/progress.h"
#include "model/llama.h"
#include "model/weights.h"
#include "pipeline/calibration.h"
#include "quant/gptq.h"

namespace gptqw {

struct SensitivityOptions {
  // The settings each module may take; a unit can also always stay in fp16 (damage 0).
  std::vector<PrecisionChoice> candidates;
  // Everything else GPTQ uses (sym, damping, act-order, block size); each candidate sets the
  // bits and group size.
  GptqOptions gptq;
  // kld: every unit's KL divergence is measured at every candidate.
  // scaled: measured at `anchor` only; the other candidates' damage is the anchor's scaled by
  // GPTQ's own error (its summed loss, tr((W - Q) H (W - Q)^T) / 2) of that candidate over the
  // anchor's: for small changes the KL divergence grows as the squared output error. One
  // held-out pass per unit instead of one per unit and candidate, for large models.
  enum class Measure { kld, scaled };
  Measure measure = Measure::kld;
  PrecisionChoice anchor{3, 128, false};
  // Modules that are not quantized in any plan (skipped, or kept in fp16 for the loaders):
  // their units are offered fp16 only.
  std::set<LinearKind> keep;
  Device device = Device::auto_;
};

struct UnitSensitivity {
  std::vector<LayerId> modules;
  std::vector<std::array<int64_t, 2>> shapes;  // [out, in] of each module
  int64_t weights = 0;        // parameters of the unit's modules
  // Per candidate (SensitivitySet::candidates, fp16 last):
  std::vector<uint64_t> bits;  // as stored in a checkpoint (codes, scales, zeros, g_idx, bias)
  std::vector<double> kld;     // mean KL divergence per held-out position (nats); infinity where
                               // a loader cannot take the setting for these shapes
  std::vector<bool> measured;  // kld measured (true) or scaled from the anchor (false)
  std::vector<double> loss;    // GPTQ's summed loss over the unit's modules (0 for fp16)
  std::vector<std::string> unloadable;  // why a loader refuses the setting, or empty
};

struct Sensitivity {
  std::vector<PrecisionChoice> candidates;  // the options' candidates, then fp16
  std::vector<UnitSensitivity> units;       // plan_unit_modules order
  SensitivityOptions::Measure measure = SensitivityOptions::Measure::kld;
  bool sym = true;                          // the grids' (every candidate's)
  std::vector<int64_t> held_out_offsets;    // the held-out windows' starts in the text
  int held_out_seqlen = 0;
  int64_t held_out_positions = 0;           // positions each KL divergence averages
  int gptq_runs = 0, kld_passes = 0;
  double seconds = 0, seconds_hessian = 0, seconds_gptq = 0, seconds_kld = 0;
  std::string backend;
};

// Measures every unit at every candidate. held_out: windows of the same text that the
// calibration does not use (held_out_windows in calibration.h). Throws ConfigError for no
// candidates or an invalid one, and Cancelled when progress asks to stop.
Sensitivity measure_sensitivity(const WeightSource& model, const CalibrationSet& calib,
                                const CalibrationSet& held_out, const SensitivityOptions& options,
                                const ProgressFn& progress = {});

// The mean KL divergence per position of the model with some modules replaced, against the
// original, on the held-out windows, from the original's states cached as measure_sensitivity
// caches them. For checking a plan's prediction against the quantized model it produced.
class HeldOutReference {
 public:
  HeldOutReference(const WeightSource& model, const CalibrationSet& held_out);
  // Blocks are the original's except `replaced` (block index -> weights); only the blocks from
  // the first replaced one on are run.
  double kld(const std::map<int, BlockWeights>& replaced) const;
  const BlockWeights& block(int b) const { return m_blocks[static_cast<size_t>(b)]; }
  int64_t positions() const;

 private:
  const WeightSource& m_model;
  int m_seqlen = 0;
  Rope m_rope;  // of the held-out windows' length, for every pass
  std::vector<int32_t> m_tokens;
  std::vector<BlockWeights> m_blocks;
  std::vector<Matrix> m_inputs;  // hidden states entering each block
  Vector m_final_norm;
  Matrix m_lm_head;
  std::vector<std::vector<double>> m_logp;  // the original's log-probabilities per position
};

}  // namespace gptqw
