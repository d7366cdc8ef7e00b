#include "pipeline/run_settings.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/error.h"
#include "pipeline/calibration.h"

namespace gptqw {

namespace {

using Problem = SettingsProblem;
using Remedy = SettingsRemedy;

Problem make_problem(Problem::Kind kind, Problem::Severity severity, std::string message) {
  Problem p;
  p.kind = kind;
  p.severity = severity;
  p.message = std::move(message);
  return p;
}

void add_unloadable(Problem& p, std::vector<UnloadableModule> modules) {
  for (const UnloadableModule& m : modules) p.modules.push_back(m.kind);
  p.unloadable = std::move(modules);
}

// The group sizes, other than the run's, under which the loaders could load at least one module
// that the settings do not keep in fp16 anyway.
std::vector<int> loadable_group_sizes(const ModelConfig& config, const QuantizeOptions& o) {
  std::vector<int> sizes;
  std::vector<int> candidates(kKernelGroupSizes.begin(), kKernelGroupSizes.end());
  candidates.push_back(-1);
  for (int g : candidates) {
    if (g == o.gptq.quant.group_size) continue;
    QuantConfig q = o.gptq.quant;
    q.group_size = g;
    std::set<LinearKind> left_out = o.skip;
    for (const UnloadableModule& m : unloadable_modules(config, q)) left_out.insert(m.kind);
    if (left_out.size() < size_t(kNumLinears)) sizes.push_back(g);
  }
  return sizes;
}

// The calibration text against nsamples windows of seqlen, with the settings that would fit it.
void check_calibration(const RunSpec& spec, int64_t tokens, std::vector<Problem>& out) {
  const CalibrationShortfall s = calibration_shortfall(tokens, spec.nsamples, spec.seqlen);
  if (s.kind == CalibrationShortfall::Kind::none) return;
  Problem p = make_problem(s.kind == CalibrationShortfall::Kind::shorter_than_a_window
                               ? Problem::Kind::calibration_too_short
                               : Problem::Kind::too_few_windows,
                           Problem::Severity::blocks_run, s.message);
  p.tokens = tokens;
  p.windows = s.windows;
  if (s.kind == CalibrationShortfall::Kind::too_few_windows && s.windows >= 1)
    p.remedies.push_back({Remedy::Kind::fewer_samples, s.windows, {}});
  // The longest windows of which the text holds nsamples, one token to spare; seqlen >= 2.
  const int64_t longest = std::min(tokens - 1, tokens / std::max(spec.nsamples, 1));
  if (longest >= 2) p.remedies.push_back({Remedy::Kind::shorter_windows, longest, {}});
  out.push_back(std::move(p));
}

// check_exportable's issues: one problem per issue of the whole model, one per kind of a
// module's issue gathering its modules (the same shapes fail the same way in every block).
void check_export(const ModelConfig& config, const QuantizeOptions& effective,
                  std::vector<Problem>& out) {
  const int quantized = kNumLinears - int(effective.skip.size());
  std::map<ExportIssue::Kind, Problem> by_kind;
  for (const ExportIssue& i : check_exportable(config, checkpoint_settings(effective))) {
    const auto severity = i.severity == ExportIssue::Severity::error
                              ? Problem::Severity::blocks_export
                              : Problem::Severity::note;
    if (i.module.empty()) {
      Problem p = make_problem(Problem::Kind::export_issue, severity, i.message);
      p.export_kind = i.kind;
      p.issues.push_back(i);
      out.push_back(std::move(p));
      continue;
    }
    Problem& p =
        by_kind.try_emplace(i.kind, make_problem(Problem::Kind::export_issue, severity, ""))
            .first->second;
    p.export_kind = i.kind;
    p.modules.push_back(*linear_kind_of(i.module));
    p.issues.push_back(i);
  }
  for (auto& entry : by_kind) {
    Problem& p = entry.second;
    // The ways out are the same for every module of a kind (the group sizes are the model's).
    const ExportIssue& i = p.issues.front();
    for (int g : i.fix_group_sizes) p.remedies.push_back({Remedy::Kind::use_group_size, g, {}});
    // Keeping every module still quantized in fp16 is no way out: nothing would be left.
    if (i.fix_by_keeping_module && int(p.modules.size()) < quantized)
      p.remedies.push_back({Remedy::Kind::keep_in_fp16, 0, p.modules});
    out.push_back(std::move(p));
  }
}

}  // namespace

bool RunSettingsCheck::blocks(SettingsProblem::Severity severity) const {
  return std::any_of(problems.begin(), problems.end(),
                     [&](const SettingsProblem& p) { return p.severity == severity; });
}

RunSettingsCheck check_run_settings(const RunSpec& spec, const ModelConfig* config,
                                    int64_t calib_tokens) {
  RunSettingsCheck out;
  out.effective = spec.options;
  const QuantizeOptions& o = spec.options;
  std::vector<Problem>& problems = out.problems;
  try {
    o.gptq.validate();
  } catch (const ConfigError& e) {
    // Nothing below means anything for options that cannot run.
    problems.push_back(make_problem(Problem::Kind::invalid_options, Problem::Severity::blocks_run, e.what()));
    return out;
  }
  if (!o.run_gptq && !o.run_rtn)
    problems.push_back(make_problem(Problem::Kind::no_method, Problem::Severity::blocks_run,
                                    "neither GPTQ nor RTN is selected: nothing to do"));
  if (calib_tokens >= 0) check_calibration(spec, calib_tokens, problems);
  if (o.skip.size() == size_t(kNumLinears)) {
    problems.push_back(make_problem(Problem::Kind::every_module_kept, Problem::Severity::blocks_run,
                                    "every module is kept in fp16: nothing to quantize"));
    return out;
  }
  if (!config) return out;
  std::vector<UnloadableModule> kept;
  try {
    out.effective = effective_options(spec, *config, &kept);
  } catch (const NothingLoadable& e) {
    Problem p = make_problem(Problem::Kind::nothing_loadable, Problem::Severity::blocks_run, e.what());
    add_unloadable(p, e.modules);
    for (int g : loadable_group_sizes(*config, o))
      p.remedies.push_back({Remedy::Kind::use_group_size, g, {}});
    p.remedies.push_back({Remedy::Kind::quantize_padded, 0, {}});
    problems.push_back(std::move(p));
    return out;
  }
  if (!kept.empty()) {
    Problem p = make_problem(Problem::Kind::kept_for_loaders, Problem::Severity::note, "");
    add_unloadable(p, std::move(kept));
    p.remedies.push_back({Remedy::Kind::quantize_padded, 0, {}});
    problems.push_back(std::move(p));
  }
  check_export(*config, out.effective, problems);
  return out;
}

}  // namespace gptqw
