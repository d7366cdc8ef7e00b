#include "pipeline/precision_plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/error.h"
#include "pipeline/quantize.h"

namespace gptqw {

uint64_t stored_bits(int64_t rows, int64_t cols, bool bias, const PrecisionChoice& c) {
  if (c.fp16) return (uint64_t(rows) * uint64_t(cols) + (bias ? uint64_t(rows) : 0)) * 16;
  QuantConfig q;
  q.bits = c.bits;
  q.group_size = c.group_size;
  return quantized_layer_bytes(rows, cols, q, bias) * 8;
}

std::string marlin_setting_problem(const PrecisionChoice& c, bool sym) {
  if (c.fp16) return {};
  if (c.bits != 4 && c.bits != 8) return std::to_string(c.bits) + "-bit (Marlin: 4 or 8)";
  if (!sym) return "asymmetric grid (Marlin: symmetric only)";
  if (c.group_size != -1 && c.group_size != 32 && c.group_size != 64 && c.group_size != 128)
    return "group size " + std::to_string(c.group_size) + " (Marlin: 32, 64, 128 or per row)";
  return {};
}

std::string marlin_problem(int64_t rows, int64_t cols, const PrecisionChoice& c, bool sym) {
  if (c.fp16) return {};
  PrecisionChoice effective = c;
  if (c.group_size >= cols) effective.group_size = -1;  // one group as wide as the inputs: per row
  if (std::string why = marlin_setting_problem(effective, sym); !why.empty()) return why;
  if (rows % 64 != 0) return std::to_string(rows) + " outputs, not a multiple of 64";
  if (cols % 128 != 0) return std::to_string(cols) + " inputs, not a multiple of 128";
  if (c.group_size > 0 && c.group_size < cols && cols % c.group_size != 0)
    return std::to_string(cols) + " inputs, not a multiple of the group size";
  return {};
}

std::vector<std::vector<LayerId>> plan_unit_modules(int num_blocks) {
  std::vector<std::vector<LayerId>> units;
  for (int b = 0; b < num_blocks; ++b)
    for (const std::vector<LinearKind>& kinds : sequential_groups(true)) {
      std::vector<LayerId>& unit = units.emplace_back();
      for (LinearKind k : kinds) unit.push_back({b, k});
    }
  return units;
}

namespace {

// The candidates a unit may take: its hand edit, or every one with a finite damage (an
// infinite one marks a setting loaders refuse).
std::vector<size_t> allowed(const PlanUnit& u) {
  if (u.fixed) return {*u.fixed};
  std::vector<size_t> all;
  for (size_t i = 0; i < u.bits.size(); ++i)
    if (std::isfinite(u.damage[i])) all.push_back(i);
  return all;
}

}  // namespace

Plan solve_plan(const std::vector<PlanUnit>& units, double budget_bpw) {
  Plan plan;
  uint64_t min_bits = 0;
  std::vector<uint64_t> cheapest(units.size());
  for (size_t i = 0; i < units.size(); ++i) {
    const PlanUnit& u = units[i];
    if (u.bits.empty() || u.bits.size() != u.damage.size() || (u.fixed && *u.fixed >= u.bits.size()))
      throw ConfigError("precision plan: unit " + std::to_string(i) + " (" +
                        (u.modules.empty() ? std::string("no module") : u.modules[0].module()) +
                        ") has " + std::to_string(u.bits.size()) + " bit counts and " +
                        std::to_string(u.damage.size()) + " damages");
    if (allowed(u).empty())
      throw ConfigError("precision plan: unit " + std::to_string(i) + " (" + u.modules[0].module() +
                        ") has no setting it may take");
    cheapest[i] = std::numeric_limits<uint64_t>::max();
    for (size_t c : allowed(u)) cheapest[i] = std::min(cheapest[i], u.bits[c]);
    min_bits += cheapest[i];
    plan.weights += u.weights;
  }
  const uint64_t budget = static_cast<uint64_t>(std::floor(budget_bpw * double(plan.weights)));
  if (min_bits > budget) {
    char msg[160];
    std::snprintf(msg, sizeof msg,
                  "precision plan: the smallest setting of every module takes %.4g bits per weight, "
                  "above the budget of %.4g",
                  double(min_bits) / double(std::max<int64_t>(plan.weights, 1)), budget_bpw);
    throw ConfigError(msg);
  }

  // Dynamic programming over the extra bits, on a grid whose step rounds every cost up.
  const uint64_t extra = budget - min_bits;
  const uint64_t step = std::max<uint64_t>(1, (extra + kPlanSteps - 1) / kPlanSteps);
  const size_t S = static_cast<size_t>(extra / step);
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::vector<double> best(S + 1, 0.0), next(S + 1);
  // choice_at[i][s]: unit i's candidate in the best plan of units 0..i using s steps.
  std::vector<std::vector<uint32_t>> choice_at(units.size(), std::vector<uint32_t>(S + 1));
  for (size_t i = 0; i < units.size(); ++i) {
    std::fill(next.begin(), next.end(), kInf);
    const PlanUnit& u = units[i];
    for (size_t c : allowed(u)) {
      const uint64_t cost_bits = u.bits[c] - cheapest[i];
      const size_t cost = static_cast<size_t>((cost_bits + step - 1) / step);
      if (cost > S) continue;
      for (size_t s = cost; s <= S; ++s) {
        const double d = best[s - cost] + u.damage[c];
        if (d < next[s]) next[s] = d, choice_at[i][s] = static_cast<uint32_t>(c);
      }
    }
    best.swap(next);
  }
  // Walk back from the best total.
  size_t s = static_cast<size_t>(std::min_element(best.begin(), best.end()) - best.begin());
  plan.choice.assign(units.size(), 0);
  for (size_t i = units.size(); i-- > 0;) {
    const size_t c = choice_at[i][s];
    plan.choice[i] = c;
    s -= static_cast<size_t>((units[i].bits[c] - cheapest[i] + step - 1) / step);
  }
  for (size_t i = 0; i < units.size(); ++i) plan.bits += units[i].bits[plan.choice[i]];

  // The bits the rounding left: upgrades of one unit that fit, the most damage saved per bit
  // first, until none fits.
  for (;;) {
    double best_rate = 0;
    size_t best_unit = units.size(), best_choice = 0;
    for (size_t i = 0; i < units.size(); ++i) {
      const PlanUnit& u = units[i];
      const size_t now = plan.choice[i];
      for (size_t c : allowed(u)) {
        if (u.damage[c] >= u.damage[now] || plan.bits - u.bits[now] + u.bits[c] > budget) continue;
        const double saved = u.damage[now] - u.damage[c];
        const double added = double(std::max<int64_t>(int64_t(u.bits[c]) - int64_t(u.bits[now]), 1));
        if (saved / added > best_rate) best_rate = saved / added, best_unit = i, best_choice = c;
      }
    }
    if (best_unit == units.size()) break;
    plan.bits = plan.bits - units[best_unit].bits[plan.choice[best_unit]] + units[best_unit].bits[best_choice];
    plan.choice[best_unit] = best_choice;
  }
  for (size_t i = 0; i < units.size(); ++i) plan.damage += units[i].damage[plan.choice[i]];
  return plan;
}

}  // namespace gptqw
