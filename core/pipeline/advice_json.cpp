#include "pipeline/advice_json.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "pipeline/divergence_json.h"

namespace gptqw {

using nlohmann::json;

std::string choice_text(const PrecisionChoice& c) {
  return c.fp16 ? "fp16" : std::to_string(c.bits) + ":" + std::to_string(c.group_size);
}

PrecisionChoice parse_choice(const std::string& text) {
  if (text == "fp16") return {16, -1, true};
  const size_t colon = text.find(':');
  PrecisionChoice c;
  try {
    size_t used = 0;
    c.bits = std::stoi(text.substr(0, colon), &used);
    if (used != colon) throw std::invalid_argument(text);
    c.group_size = colon == std::string::npos ? -1 : std::stoi(text.substr(colon + 1), &used);
    if (colon != std::string::npos && colon + 1 + used != text.size()) throw std::invalid_argument(text);
  } catch (const std::exception&) {
    throw ConfigError("'" + text + "' is not a setting: write BITS:GROUP (4:128, 3:-1) or fp16");
  }
  if (c.bits != 2 && c.bits != 3 && c.bits != 4 && c.bits != 8)
    throw ConfigError("'" + text + "': bits must be 2, 3, 4 or 8");
  if (c.group_size != -1 && (c.group_size < 16 || c.group_size > 4096))
    throw ConfigError("'" + text + "': the group size must be -1 or 16 to 4096");
  return c;
}

namespace {

json modules_json(const std::vector<LayerId>& modules) {
  json a = json::array();
  for (const LayerId& id : modules) a.push_back(id.module());
  return a;
}

std::vector<LayerId> modules_from(const JsonFields& f) {
  std::vector<LayerId> out;
  for (const std::string& name : f.strings("modules")) {
    try {
      out.push_back(parse_layer_module(name));
    } catch (const ConfigError& e) {
      f.fail("modules", e.what());
    }
  }
  if (out.empty()) f.fail("modules", "is empty");
  return out;
}

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json point_json(const AdvicePoint& p, const std::vector<PrecisionChoice>& candidates) {
  json units = json::array();
  for (const PlannedUnit& u : p.units)
    units.push_back({{"modules", modules_json(u.modules)},
                     {"setting", choice_text(candidates[u.choice])},
                     {"predicted", finite_or_null(u.predicted)},
                     {"measured", u.measured},
                     {"marlin", u.marlin}});
  json eval = json::array();
  for (const DivergenceSummary& s : p.eval) eval.push_back(to_json(s));
  return {{"label", p.label},
          {"uniform", p.uniform},
          {"budget", p.budget},
          {"bits_per_weight", p.bits_per_weight},
          {"predicted", p.predicted},
          {"held_out_kld", p.held_out_kld},
          {"global", choice_text(p.global)},
          {"units", units},
          {"eval", eval}};
}

AdvicePoint point_from(const JsonFields& f, const std::vector<PrecisionChoice>& candidates) {
  AdvicePoint p;
  p.label = f.string("label");
  p.uniform = f.boolean("uniform");
  p.budget = f.real("budget");
  p.bits_per_weight = f.real("bits_per_weight");
  p.predicted = f.real("predicted");
  p.held_out_kld = f.real("held_out_kld");
  try {
    p.global = parse_choice(f.string("global"));
  } catch (const ConfigError& e) {
    f.fail("global", e.what());
  }
  for (const JsonFields& u : f.objects("units")) {
    PlannedUnit& pu = p.units.emplace_back();
    pu.modules = modules_from(u);
    const std::string setting = u.string("setting");
    auto it = std::find_if(candidates.begin(), candidates.end(),
                           [&](const PrecisionChoice& c) { return choice_text(c) == setting; });
    if (it == candidates.end()) u.fail("setting", "'" + setting + "' is not one of the candidates");
    pu.choice = size_t(it - candidates.begin());
    pu.predicted = u.has("predicted") && !u.find("predicted")->is_null()
                       ? u.real("predicted") : std::numeric_limits<double>::infinity();
    pu.measured = u.real("measured");
    pu.marlin = u.string("marlin");
  }
  for (const JsonFields& e : f.objects("eval")) p.eval.push_back(summary_from_json(e));
  p.per_module = per_module_of(p.units, candidates, p.global);
  return p;
}

}  // namespace

json to_json(const Advice& a) {
  const Sensitivity& s = a.sensitivity;
  json candidates = json::array();
  for (const PrecisionChoice& c : s.candidates) candidates.push_back(choice_text(c));
  json units = json::array();
  for (size_t i = 0; i < s.units.size(); ++i) {
    const UnitSensitivity& u = s.units[i];
    json kld = json::array();
    for (double v : u.kld) kld.push_back(finite_or_null(v));
    units.push_back({{"modules", modules_json(u.modules)},
                     {"shapes", u.shapes},
                     {"weights", u.weights},
                     {"planned", bool(a.planned[i])},
                     {"bits", u.bits},
                     {"kld", kld},
                     {"measured", u.measured},
                     {"loss", u.loss},
                     {"unloadable", u.unloadable}});
  }
  json plans = json::array(), uniform = json::array(), original = json::array();
  for (const AdvicePoint& p : a.plans) plans.push_back(point_json(p, s.candidates));
  for (const AdvicePoint& p : a.uniform) uniform.push_back(point_json(p, s.candidates));
  for (const PerplexityResult& r : a.eval_original)
    original.push_back({{"ppl", r.ppl}, {"ppl_se", r.ppl_se}, {"nll_mean", r.nll_mean},
                        {"nll_se", r.nll_se}, {"windows", r.windows}, {"seqlen", r.seqlen},
                        {"tokens", r.tokens}});
  return {{"candidates", candidates},
          {"measure", s.measure == SensitivityOptions::Measure::kld ? "kld" : "scaled"},
          {"sym", s.sym},
          {"held_out", {{"offsets", s.held_out_offsets}, {"seqlen", s.held_out_seqlen},
                        {"positions", s.held_out_positions}}},
          {"units", units},
          {"plans", plans},
          {"uniform", uniform},
          {"eval_files", a.eval_files},
          {"eval_original", original},
          {"cost", {{"gptq_runs", s.gptq_runs}, {"kld_passes", s.kld_passes},
                    {"seconds", s.seconds}, {"seconds_hessian", s.seconds_hessian},
                    {"seconds_gptq", s.seconds_gptq}, {"seconds_kld", s.seconds_kld},
                    {"seconds_runs", a.seconds_runs}, {"seconds_total", a.seconds},
                    {"backend", s.backend}}}};
}

Advice advice_from_json(const JsonFields& f) {
  Advice a;
  Sensitivity& s = a.sensitivity;
  for (const std::string& c : f.strings("candidates")) {
    try {
      s.candidates.push_back(parse_choice(c));
    } catch (const ConfigError& e) {
      f.fail("candidates", e.what());
    }
  }
  if (s.candidates.empty() || !s.candidates.back().fp16)
    f.fail("candidates", "must end with fp16");
  const size_t C = s.candidates.size();
  const std::string measure = f.string("measure");
  if (measure != "kld" && measure != "scaled") f.fail("measure", "must be kld or scaled");
  s.measure = measure == "kld" ? SensitivityOptions::Measure::kld : SensitivityOptions::Measure::scaled;
  s.sym = f.boolean("sym");
  const JsonFields h = f.object("held_out");
  s.held_out_offsets = h.integers<int64_t>("offsets");
  s.held_out_seqlen = h.integer<int>("seqlen");
  s.held_out_positions = h.integer<int64_t>("positions");
  for (const JsonFields& u : f.objects("units")) {
    UnitSensitivity& us = s.units.emplace_back();
    us.modules = modules_from(u);
    const nlohmann::json* shapes = u.find("shapes");
    if (!shapes || !shapes->is_array() || shapes->size() != us.modules.size())
      u.fail("shapes", "must be one [out, in] per module");
    for (const nlohmann::json& sh : *shapes) {
      auto dim = [](const nlohmann::json& v) {
        return v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() <= (int64_t(1) << 30);
      };
      if (!sh.is_array() || sh.size() != 2 || !dim(sh[0]) || !dim(sh[1]))
        u.fail("shapes", "must be one [out, in] per module, each from 1 to 2^30");
      us.shapes.push_back({sh[0].get<int64_t>(), sh[1].get<int64_t>()});
    }
    us.weights = u.integer<int64_t>("weights", 0);
    a.planned.push_back(u.boolean("planned"));
    us.bits = u.integers<uint64_t>("bits");
    const nlohmann::json* kld = u.find("kld");
    if (!kld || !kld->is_array()) u.fail("kld", "must be a list");
    for (const nlohmann::json& v : *kld) {
      if (!v.is_null() && !v.is_number()) u.fail("kld", "holds something else than numbers and null");
      us.kld.push_back(v.is_null() ? std::numeric_limits<double>::infinity() : v.get<double>());
      if (us.kld.back() < 0 || std::isnan(us.kld.back())) u.fail("kld", "holds a negative value");
    }
    const nlohmann::json* measured = u.find("measured");
    if (!measured || !measured->is_array()) u.fail("measured", "must be a list");
    for (const nlohmann::json& v : *measured) {
      if (!v.is_boolean()) u.fail("measured", "holds something else than true and false");
      us.measured.push_back(v.get<bool>());
    }
    us.loss = u.reals<double>("loss");
    us.unloadable = u.strings("unloadable");
    if (us.bits.size() != C || us.kld.size() != C || us.measured.size() != C ||
        us.loss.size() != C || us.unloadable.size() != C)
      u.fail("kld", "the lists must have one entry per candidate (" + std::to_string(C) + ")");
  }
  for (const JsonFields& p : f.objects("plans")) a.plans.push_back(point_from(p, s.candidates));
  for (const JsonFields& p : f.objects("uniform")) a.uniform.push_back(point_from(p, s.candidates));
  if (f.has("eval_files")) a.eval_files = f.strings("eval_files");
  for (const JsonFields& o : f.objects("eval_original")) {
    PerplexityResult& r = a.eval_original.emplace_back();
    r.ppl = o.real("ppl");
    r.ppl_se = o.real("ppl_se");
    r.nll_mean = o.real("nll_mean");
    r.nll_se = o.real("nll_se");
    r.windows = o.integer<int>("windows");
    r.seqlen = o.integer<int>("seqlen");
    r.tokens = o.integer<int64_t>("tokens");
  }
  const JsonFields c = f.object("cost");
  s.gptq_runs = c.integer<int>("gptq_runs");
  s.kld_passes = c.integer<int>("kld_passes");
  s.seconds = c.real("seconds");
  s.seconds_hessian = c.real("seconds_hessian");
  s.seconds_gptq = c.real("seconds_gptq");
  s.seconds_kld = c.real("seconds_kld");
  a.seconds_runs = c.real("seconds_runs");
  a.seconds = c.real("seconds_total");
  s.backend = c.string("backend");
  return a;
}

}  // namespace gptqw
