#include "pipeline/advisor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>

#include "common/error.h"
#include "pipeline/divergence.h"
#include "pipeline/quantize.h"

namespace gptqw {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string format_bpw(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}
}  // namespace

CalibrationSet held_out_windows(const std::vector<int32_t>& ids, const CalibrationSet& calib,
                                int count) {
  const int64_t n = static_cast<int64_t>(ids.size()), L = calib.seqlen;
  std::vector<int64_t> starts = calib.offsets;
  std::sort(starts.begin(), starts.end());
  // Every window that fits between the calibration windows, packed from each gap's start.
  std::vector<int64_t> free;
  int64_t from = 0;
  auto gap = [&](int64_t end) {
    for (int64_t o = from; o + L <= end; o += L) free.push_back(o);
  };
  for (int64_t s : starts) {
    gap(s);
    from = std::max(from, s + L);
  }
  gap(n);
  if (free.empty() || count < 1)
    throw ConfigError("the calibration text has no room for a held-out window of " + std::to_string(L) +
                      " tokens beside the " + std::to_string(calib.nsamples()) +
                      " calibration windows: use fewer samples or a longer text");
  // `count` of them spread evenly over the text.
  std::vector<int64_t> chosen;
  const size_t k = std::min(free.size(), size_t(count));
  for (size_t i = 0; i < k; ++i) chosen.push_back(free[i * free.size() / k]);
  CalibrationSet h = calibration_from_offsets(ids, chosen, int(L));
  h.source = calib.source;
  return h;
}

namespace {

// The hand edit of a unit: the setting given for any of its modules (they must agree).
std::optional<PrecisionChoice> unit_edit(const std::vector<LayerId>& modules,
                                         const std::map<LayerId, PrecisionChoice>& fixed) {
  std::optional<PrecisionChoice> edit;
  for (const LayerId& id : modules)
    if (auto it = fixed.find(id); it != fixed.end()) {
      if (edit && !(*edit == it->second))
        throw ConfigError(modules.front().module() + ": its modules share one setting, given " +
                          edit->describe() + " and " + it->second.describe());
      edit = it->second;
    }
  return edit;
}

}  // namespace

std::vector<PlanUnit> plan_units(const Sensitivity& s, const std::vector<bool>& planned,
                                 const std::map<LayerId, PrecisionChoice>& fixed) {
  std::vector<PlanUnit> units;
  for (size_t i = 0; i < s.units.size(); ++i) {
    const UnitSensitivity& u = s.units[i];
    const std::optional<PrecisionChoice> edit = unit_edit(u.modules, fixed);
    if (!planned[i]) {
      // fp16 in every plan: a hand edit may only say so.
      if (edit && !edit->fp16)
        throw ConfigError(u.modules.front().module() + ": " + edit->describe() +
                          " cannot be loaded: " + u.unloadable.front());
      continue;
    }
    PlanUnit& p = units.emplace_back();
    p.modules = u.modules;
    p.weights = u.weights;
    p.bits = u.bits;
    p.damage = u.kld;
    for (size_t c = 0; c < p.damage.size(); ++c)
      if (!u.unloadable[c].empty()) p.damage[c] = std::numeric_limits<double>::infinity();
    if (edit) {
      auto c = std::find(s.candidates.begin(), s.candidates.end(), *edit);
      if (c == s.candidates.end())
        throw ConfigError(u.modules.front().module() + ": " + edit->describe() +
                          " is not one of the candidate settings");
      const size_t ci = size_t(c - s.candidates.begin());
      if (!u.unloadable[ci].empty())
        throw ConfigError(u.modules.front().module() + ": " + edit->describe() +
                          " cannot be loaded: " + u.unloadable[ci]);
      p.fixed = ci;
    }
  }
  return units;
}

AdvicePoint advice_point(const Sensitivity& s, const std::vector<bool>& planned,
                         const std::vector<size_t>& choice) {
  AdvicePoint p;
  const size_t fp16 = s.candidates.size() - 1;
  uint64_t bits = 0;
  int64_t weights = 0;
  std::map<size_t, int64_t> weight_of;  // candidate -> planned weights that take it
  for (size_t i = 0; i < s.units.size(); ++i) {
    const UnitSensitivity& u = s.units[i];
    PlannedUnit& pu = p.units.emplace_back();
    pu.modules = u.modules;
    pu.choice = planned[i] ? choice[i] : fp16;
    pu.predicted = u.kld[pu.choice];
    if (!planned[i]) continue;
    bits += u.bits[pu.choice];
    weights += u.weights;
    p.predicted += pu.predicted;
    if (pu.choice != fp16) weight_of[pu.choice] += u.weights;
  }
  p.bits_per_weight = weights > 0 ? double(bits) / double(weights) : 0;
  // The run's global setting: the quantized choice covering most weights (fewest rules), but
  // one Marlin cannot run when any chosen setting is such: vLLM picks its kernel from the
  // global setting and refuses overrides that kernel cannot run (its gptq kernel runs them all).
  bool any_non_marlin = false;
  for (auto [c, w] : weight_of) any_non_marlin = any_non_marlin || !marlin_setting_problem(s.candidates[c], s.sym).empty();
  size_t global = 0;
  int64_t most = -1;
  for (auto [c, w] : weight_of)
    if (w > most && (!any_non_marlin || !marlin_setting_problem(s.candidates[c], s.sym).empty()))
      most = w, global = c;
  p.global = s.candidates[weight_of.empty() ? 0 : global];
  p.per_module = per_module_of(p.units, s.candidates, p.global);
  return p;
}

QuantizeOptions point_options(const QuantizeOptions& base, const AdvicePoint& point) {
  QuantizeOptions o = base;
  o.gptq.quant = point.global.applied_to(base.gptq.quant);
  o.per_module = point.per_module;
  return o;
}

void mark_marlin(AdvicePoint& p, const Sensitivity& s) {
  for (size_t i = 0; i < p.units.size(); ++i) {
    PlannedUnit& pu = p.units[i];
    const UnitSensitivity& u = s.units[i];
    pu.marlin.clear();
    for (size_t m = 0; m < u.modules.size() && pu.marlin.empty(); ++m) {
      const std::string why = marlin_problem(u.shapes[m][0], u.shapes[m][1], s.candidates[pu.choice], s.sym);
      if (!why.empty()) pu.marlin = std::string(linear_name(u.modules[m].kind)) + ": " + why;
    }
  }
}

AdvicePoint plan_point(const Sensitivity& s, const std::vector<bool>& planned,
                       const std::map<LayerId, PrecisionChoice>& fixed, double budget) {
  const Plan plan = solve_plan(plan_units(s, planned, fixed), budget);
  std::vector<size_t> choice(s.units.size(), s.candidates.size() - 1);
  for (size_t i = 0, j = 0; i < s.units.size(); ++i)
    if (planned[i]) choice[i] = plan.choice[j++];
  AdvicePoint p = advice_point(s, planned, choice);
  p.label = "plan " + format_bpw(budget) + " bpw";
  p.budget = budget;
  mark_marlin(p, s);
  return p;
}

Advice advise(const Model& model, const AdviceSpec& spec, const ProgressFn& progress,
              CalibrationSet* calib_out) {
  const auto t0 = Clock::now();
  if (!model.tokenizer) throw ConfigError(file_msg(model.path, "was opened without a tokenizer"));
  const ModelConfig& c = model.config();
  // The calibration windows, as a run draws them, and held-out windows of the same text.
  std::vector<int32_t> ids;
  const CalibrationSet calib =
      sample_calibration(*model.tokenizer, spec.run.calib_file, spec.run.nsamples, spec.run.seqlen,
                         spec.run.seed, spec.run.calib_options, &ids);
  CalibrationSet held;
  try {
    held = held_out_windows(ids, calib, spec.held_out);
  } catch (const ConfigError& e) {
    throw ConfigError(file_msg(spec.run.calib_file, e.what()));
  }
  if (calib_out) *calib_out = calib;
  std::vector<std::vector<int32_t>> eval_ids = read_eval_texts(model, spec.run);
  if (spec.budgets.empty()) throw ConfigError("advise: no budget given");
  std::vector<std::string> eval_names;
  for (const auto& f : spec.run.eval_files) eval_names.push_back(f.string());
  if (spec.curve && eval_ids.empty()) {
    // The curve's text: the windows of the calibration text that neither the calibration nor
    // the sensitivity reads, back to back (each an evaluation window of the same length).
    CalibrationSet used = calib;
    used.offsets.insert(used.offsets.end(), held.offsets.begin(), held.offsets.end());
    CalibrationSet rest;
    try {
      rest = held_out_windows(ids, used, std::numeric_limits<int>::max());
    } catch (const ConfigError& e) {
      throw ConfigError(file_msg(spec.run.calib_file, std::string(e.what()) + " (for the curve's evaluation; or give --eval)"));
    }
    eval_ids.push_back(rest.tokens);
    eval_names.push_back(spec.run.calib_file.string() + " (" + std::to_string(rest.nsamples()) +
                         " windows used neither by the calibration nor the sensitivity)");
  }

  Advice a;
  SensitivityOptions so = spec.sensitivity;
  so.gptq = spec.run.options.gptq;
  so.keep = spec.run.options.skip;
  so.device = spec.run.options.device;
  a.sensitivity = measure_sensitivity(*model.weights, calib, held, so, progress);
  const Sensitivity& s = a.sensitivity;
  const size_t fp16 = s.candidates.size() - 1;
  for (const UnitSensitivity& u : s.units) {
    bool any = false;
    for (size_t ci = 0; ci < fp16; ++ci) any = any || u.unloadable[ci].empty();
    a.planned.push_back(any);
  }
  for (double budget : spec.budgets) a.plans.push_back(plan_point(s, a.planned, spec.fixed, budget));
  if (spec.curve)
    for (size_t ci = 0; ci < fp16; ++ci) {
      std::vector<size_t> choice(s.units.size(), ci);
      bool any = false;
      for (size_t i = 0; i < s.units.size(); ++i)
        if (!s.units[i].unloadable[ci].empty()) choice[i] = fp16;
        else any = any || a.planned[i];
      if (!any) continue;  // loaders take this setting for no module of this model
      // A setting that quantizes every unit as an earlier one does (a group as wide as the
      // inputs is one group per row) is the same model: named with it, not run twice.
      auto same = std::find_if(a.uniform.begin(), a.uniform.end(), [&](const AdvicePoint& q) {
        for (size_t i = 0; i < s.units.size(); ++i) {
          const size_t qc = q.units[i].choice, pc = choice[i];
          if (s.units[i].bits[qc] != s.units[i].bits[pc] || s.units[i].loss[qc] != s.units[i].loss[pc]) return false;
        }
        return true;
      });
      if (same != a.uniform.end()) {
        same->label += " = " + s.candidates[ci].describe();
        continue;
      }
      AdvicePoint p = advice_point(s, a.planned, choice);
      p.label = "uniform " + s.candidates[ci].describe();
      p.uniform = true;
      mark_marlin(p, s);
      a.uniform.push_back(std::move(p));
    }

  // The fair comparison: a plan at each uniform setting's own cost (where one fits).
  if (spec.curve)
    for (size_t ui = 0, n = a.uniform.size(); ui < n; ++ui) {
      const AdvicePoint& u = a.uniform[ui];
      try {
        // A hair above, so that rounding the product back to bits cannot drop the setting itself.
        AdvicePoint p = plan_point(s, a.planned, spec.fixed, u.bits_per_weight * (1 + 1e-12));
        p.budget = u.bits_per_weight;
        p.label = "plan at the cost of " + u.label;
        a.plans.push_back(std::move(p));
      } catch (const ConfigError&) {
        // the hand edits alone cost more than this setting
      }
    }

  if (spec.check || spec.curve) {
    const auto tr = Clock::now();
    const HeldOutReference reference(*model.weights, held);
    std::vector<AdvicePoint*> points;
    for (AdvicePoint& p : a.plans) points.push_back(&p);
    for (AdvicePoint& p : a.uniform) points.push_back(&p);
    std::vector<std::unique_ptr<QuantizedModel>> quantized;
    for (size_t pi = 0; pi < points.size(); ++pi) {
      AdvicePoint& p = *points[pi];
      QuantizeOptions o = point_options(spec.run.options, p);
      o.run_rtn = false;
      auto qm = std::make_unique<QuantizedModel>(model.weights);
      ProgressFn sub = [&](const Progress& pr) {
        if (!progress) return true;
        Progress q = pr;
        q.stage = p.label + ": " + pr.stage;
        return progress(q);
      };
      quantize_model(*model.weights, calib, o,
                     [&](Method, int b, LinearKind k, QuantizedWeights&& w) { qm->set(b, k, w); },
                     sub);
      std::map<int, BlockWeights> all;
      for (int b = 0; b < c.num_layers; ++b) all[b] = qm->block(b);
      p.held_out_kld = reference.kld(all);
      if (!p.uniform)
        for (size_t i = 0; i < p.units.size(); ++i) {
          PlannedUnit& pu = p.units[i];
          if (pu.choice == fp16) {
            pu.measured = 0;
            continue;
          }
          const int b = pu.modules.front().block;
          BlockWeights bw = reference.block(b);
          for (const LayerId& id : pu.modules) bw[id.kind].W = all[b][id.kind].W;
          pu.measured = reference.kld({{b, std::move(bw)}});
        }
      quantized.push_back(std::move(qm));
    }
    // Every point against the original on each evaluation text, all in one lockstep walk.
    std::vector<const WeightSource*> qs;
    for (const auto& q : quantized) qs.push_back(q.get());
    for (size_t t = 0; t < eval_ids.size() && !qs.empty(); ++t) {
      DivergenceOptions d;
      d.eval = spec.run.eval;
      if (t >= spec.run.eval_files.size()) d.eval.seqlen = calib.seqlen;  // the held-out windows
      d.stage = "evaluate " + std::filesystem::path(eval_names[t]).filename().string();
      const DivergenceResult r = compare_models(*model.weights, qs, eval_ids[t], d, progress);
      a.eval_files.push_back(eval_names[t]);
      a.eval_original.push_back(r.original);
      for (size_t pi = 0; pi < points.size(); ++pi) points[pi]->eval.push_back(r.quantized[pi].summary);
    }
    a.seconds_runs = since(tr);
  }
  a.seconds = since(t0);
  return a;
}

}  // namespace gptqw
