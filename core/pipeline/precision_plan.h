// A mixed-precision plan: each module's bits and group size (or fp16) chosen to minimise the
// predicted damage to the model under an average bits-per-weight budget, as GPTQModel's
// `dynamic` can store it.
//
// The modules are planned in units that must share one setting: q/k/v and gate/up (vLLM fuses
// each set into one kernel and refuses shards of different settings), every other module on
// its own. Each unit's candidates carry the bits they store (codes, scales, zeros, g_idx and a
// bias, exactly as the exporter writes them) and a predicted damage, assumed to add up over
// units (the measurement says how well that holds).
//
// The choice is a multiple-choice knapsack, solved by dynamic programming over the bits above
// each unit's cheapest candidate, on a grid of at most kPlanSteps steps with every cost rounded
// up (so the plan always fits the budget); the bits the rounding leaves unused are then spent
// by single-unit upgrades, the best damage saved per bit first. With no more extra bits than
// grid steps the grid is the bit itself and the plan is the exact optimum.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "model/layers.h"
#include "quant/quantizer.h"

namespace gptqw {

// The bits a module of rows x cols (with a bias or not) stores with a choice.
uint64_t stored_bits(int64_t rows, int64_t cols, bool bias, const PrecisionChoice& choice);

// Why vLLM's Marlin kernel (gptq_marlin, the fast path for GPTQ checkpoints) cannot run a
// module of rows x cols quantized with `choice`, or empty when it can: Marlin takes 4 and 8
// bits, symmetric grids only, groups of 32, 64 or 128 or one per row, at least 64-wide output
// tiles and 128-deep input tiles (vLLM's verify_marlin_supports_shape, read from its
// marlin_utils.py). Others fall back to the slower gptq kernels. fp16 modules always run.
std::string marlin_problem(int64_t rows, int64_t cols, const PrecisionChoice& choice, bool sym);
// The part of it that depends on the setting alone (bits, symmetry, group size). vLLM chooses
// its kernel for the whole checkpoint from the global setting and then refuses an override
// Marlin cannot run, so a plan with any such setting needs a global setting of the same kind.
std::string marlin_setting_problem(const PrecisionChoice& choice, bool sym);

// Modules that must share one choice: {q, k, v}, {o}, {gate, up}, {down} of each block.
std::vector<std::vector<LayerId>> plan_unit_modules(int num_blocks);

struct PlanUnit {
  std::vector<LayerId> modules;
  int64_t weights = 0;           // rows x cols summed over the modules
  std::vector<uint64_t> bits;    // per candidate, summed over the modules
  std::vector<double> damage;    // per candidate (any non-negative measure that adds up)
  std::optional<size_t> fixed;   // a hand edit: only this candidate
};

struct Plan {
  std::vector<size_t> choice;  // per unit, an index into its candidates
  double damage = 0;           // predicted: the sum of the chosen candidates' damage
  uint64_t bits = 0;
  int64_t weights = 0;
  double bits_per_weight() const { return weights > 0 ? double(bits) / double(weights) : 0; }
};

inline constexpr int64_t kPlanSteps = 1 << 15;

// The plan of least predicted damage whose bits per weight are at most budget_bpw. Throws
// ConfigError when even the cheapest choice of every unit exceeds the budget, or when a unit's
// candidate lists disagree in length.
Plan solve_plan(const std::vector<PlanUnit>& units, double budget_bpw);

}  // namespace gptqw
