// gptqw quantize / gptqw compare: the sequential driver from the command line. `quantize`
// runs one method (GPTQ by default), `compare` runs GPTQ and RTN from the same calibration
// windows and prints them side by side; both can evaluate perplexity and write the report.
#include <cstdio>
#include <limits>
#include <cmath>
#include <optional>
#include <tuple>

#include "cli_common.h"
#include "commands.h"
#include "common/threads.h"
#include "common/error.h"
#include "common/output_file.h"
#include "io/gptq_export.h"
#include "pipeline/advice_json.h"
#include "pipeline/advisor.h"
#include "pipeline/run.h"
#include "pipeline/run_settings.h"
#include "settings_words.h"

namespace gptqw::cli {

namespace {

const std::set<std::string> kFlags = {"--act-order", "--sym", "--asym", "--static-groups", "--mse",
                                      "--exact-ties", "--no-true-sequential", "--json", "--quiet",
                                      "--force", "--pad-unloadable", "--check", "--curve"};
const std::set<std::string> kValued = {"--model", "--tokenizer", "--calib", "--method", "--bits",
                                       "--group-size", "--damp", "--block-size", "--nsamples",
                                       "--seqlen", "--seed", "--eval", "--eval-seqlen",
                                       "--eval-max-windows", "--report", "--threads", "--out",
                                       "--shard-size", "--skip-modules", "--calib-field",
                                       "--calib-from", "--device", "--eval-precision", "--prompt",
                                       "--prompts", "--gen-tokens", "--budget", "--try-bits",
                                       "--try-groups", "--held-out", "--measure", "--anchor",
                                       "--keep", "--plan"};

// Every option not given keeps the core's default (a default-constructed RunSpec's).
QuantizeOptions parse_options(const Args& args, bool compare) {
  QuantizeOptions o = RunSpec().options;
  QuantConfig& q = o.gptq.quant;
  q.bits = static_cast<int>(args.get_int("--bits", q.bits, 2, 8));
  q.group_size = static_cast<int>(args.get_int("--group-size", q.group_size, -1, kMaxGroupSize));
  if (args.flag("--sym") && args.flag("--asym")) throw UsageError("--sym and --asym exclude each other");
  if (args.flag("--sym")) q.sym = true;
  if (args.flag("--asym")) q.sym = false;
  q.mse = q.mse || args.flag("--mse");
  q.exact_ties = q.exact_ties || args.flag("--exact-ties");
  o.gptq.act_order = o.gptq.act_order || args.flag("--act-order");
  o.gptq.static_groups = o.gptq.static_groups || args.flag("--static-groups");
  o.gptq.damp_fraction = args.get_double("--damp", o.gptq.damp_fraction, 0.0, 1.0);
  o.gptq.blocksize = static_cast<int>(args.get_int("--block-size", o.gptq.blocksize, 1, kMaxBlockSize));
  o.true_sequential = o.true_sequential && !args.flag("--no-true-sequential");
  try {
    o.device = parse_device(args.get_or("--device", std::string(device_name(o.device))));
  } catch (const ConfigError& e) {
    throw UsageError(std::string("--device: ") + e.what());
  }
  // --skip-modules mlp.down_proj,up_proj: left in full precision in every block.
  for (const std::string& name : args.get_list("--skip-modules", ""))
    try {
      if (!name.empty()) o.skip.insert(parse_linear_name(name));
    } catch (const ConfigError& e) {
      throw UsageError(std::string("--skip-modules: ") + e.what());
    }
  if (!compare) {
    std::string method = args.get_or("--method", "gptq");
    if (method != "gptq" && method != "rtn") throw UsageError("--method must be gptq or rtn, got '" + method + "'");
    o.run_gptq = method == "gptq";
    o.run_rtn = method == "rtn";
  }
  try {
    o.gptq.validate();
  } catch (const ConfigError& e) {
    throw UsageError(e.what());
  }
  return o;
}

std::string fmt(double v, const char* f = "%.4g") {
  if (v < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// One evaluation text: each model's perplexity ±, and each quantized model against the original
// (llama.cpp's statistics), then perplexity and KLD by position within the window.
void print_quality(const TextQuality& q) {
  // Cells padded by characters, not bytes ("±" is two bytes).
  auto cell = [](const std::string& text, size_t width) {
    size_t chars = 0;
    for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
    return text + std::string(width > chars ? width - chars : 1, ' ');
  };
  auto pm = [](const char* format, double value, double se) {
    char buf[96];
    std::snprintf(buf, sizeof buf, format, value, se);
    return std::string(buf);
  };
  std::printf("\nevaluation on %s (seqlen %d, %d of %d windows%s, %lld predictions):\n", q.text.c_str(),
              q.seqlen, q.windows, q.windows_available,
              q.stopped_early ? ", stopped early: --eval-precision reached" : "",
              static_cast<long long>(q.quantized.empty() ? 0 : q.quantized[0].vs_original.tokens));
  std::printf("  %s%s%s%s%s%s%s\n", cell("model", 10).c_str(), cell("PPL", 22).c_str(),
              cell("ln(PPL/PPL orig)", 22).c_str(), cell("mean KLD", 24).c_str(), cell("KLD p99", 10).c_str(),
              cell("same top-1", 18).c_str(), "top-5 same");
  std::printf("  %s%s\n", cell("original", 10).c_str(),
              pm("%.4f ± %.4f", q.ppl_original.value, q.ppl_original.se).c_str());
  for (const QuantizedQuality& m : q.quantized) {
    const DivergenceSummary& s = m.vs_original;
    std::printf("  %s%s%s%s%s%s%.2f%%\n", cell(m.model, 10).c_str(),
                cell(pm("%.4f ± %.4f", m.ppl.value, m.ppl.se), 22).c_str(),
                cell(pm("%+.5f ± %.5f", s.ln_ppl_ratio.value, s.ln_ppl_ratio.se), 22).c_str(),
                cell(pm("%.6f ± %.6f", s.kld.value, s.kld.se), 24).c_str(),
                cell(pm("%.5f%.0s", s.kld_pct.p99, 0), 10).c_str(),
                cell(pm("%.2f ± %.2f%%", 100 * s.top_agreement[0].value, 100 * s.top_agreement[0].se), 18).c_str(),
                100 * s.top_agreement[kTopRanks - 1].value);
  }
  for (const QuantizedQuality& m : q.quantized) {
    std::printf("  %s by position:", m.model.c_str());
    for (const PositionBucketSummary& b : m.vs_original.by_position) {
      if (b.tokens == 0) continue;
      const std::string range = std::to_string(b.first) + "-" + (b.end < 0 ? std::string("") : std::to_string(b.end - 1));
      std::printf("  [%s] PPL %.3f vs %.3f, KLD %.5f", range.c_str(), b.est.ppl_quant.value,
                  b.est.ppl_orig.value, b.est.kld.value);
    }
    std::printf("\n");
  }
}

void print_table(const Report& r) {
  bool g = r.options.run_gptq, t = r.options.run_rtn;
  std::printf("%-5s %-18s %-13s %10s %10s %7s %10s %8s %7s\n", "block", "module", "shape",
              g ? "gptq_err" : "", t ? "rtn_err" : "", g && t ? "ratio" : "", g ? "gptq_loss" : "",
              g ? "damp" : "", "sec");
  for (const auto& l : r.layers) {
    std::string shape = std::to_string(l.out_features) + "x" + std::to_string(l.in_features);
    std::string ratio = g && t && l.rtn_rel_error > 0 ? fmt(l.gptq_rel_error / l.rtn_rel_error, "%.3f") : "";
    std::printf("%-5d %-18s %-13s %10s %10s %7s %10s %8s %7.2f%s%s\n", l.block,
                std::string(linear_name(l.kind)).c_str(), shape.c_str(),
                g ? fmt(l.gptq_rel_error).c_str() : "", t ? fmt(l.rtn_rel_error).c_str() : "",
                ratio.c_str(), g ? fmt(l.gptq_loss).c_str() : "",
                g ? fmt(l.damp_fraction, "%.3g").c_str() : "", l.gptq_seconds + l.rtn_seconds,
                l.note.empty() ? "" : "  ", l.note.c_str());
  }
  if (!r.kept_for_loaders.empty()) {
    std::string names;
    for (const auto& k : r.kept_for_loaders) names += (names.empty() ? "" : ", ") + std::string(linear_name(k.kind));
    std::printf("\nkept in fp16 (GPTQ loaders cannot load them quantized): %s\n", names.c_str());
  }
  const MemorySummary& m = r.memory;
  std::printf("\nweights: fp16 %.2f MiB -> quantized %.2f MiB (%.2f bits per quantized weight, %.1f%% saved)\n",
              m.fp16_bytes / 1048576.0, m.quantized_bytes / 1048576.0, m.bits_per_weight, m.saving_percent);
  const QuantizeResult& time = r.timing;
  std::printf("time: %.2f s (calibration %.2f, hessian %.2f, factor %.2f, gptq %.2f [columns %.2f, "
              "lazy %.2f], rtn %.2f, metrics %.2f, forward %.2f); peak memory %.0f MiB\n",
              time.seconds, time.seconds_calibration, time.seconds_hessian, time.seconds_factor,
              time.seconds_gptq,
              time.seconds_columns, time.seconds_lazy, time.seconds_rtn, time.seconds_metrics,
              time.seconds_forward, r.peak_rss_bytes / 1048576.0);
  for (const TextQuality& q : r.quality) print_quality(q);
  if (!r.generations.empty()) std::printf("\n");
  for (const PromptGenerations& g : r.generations) print_generations(g);
}

// One method, both side by side, or both with each of several calibration corpora.
enum class Mode { quantize, compare, calibration_matrix, advise };

// A comma-separated list of integers ("2,3,4,8").
std::vector<int> int_list(const Args& args, const char* flag, const std::string& fallback) {
  std::vector<int> out;
  const std::vector<std::string> pieces = args.get_list(flag, fallback);
  if (pieces.empty()) throw UsageError(std::string(flag) + ": '' is not a list of integers");
  for (const std::string& piece : pieces) {
    try {
      size_t used = 0;
      out.push_back(std::stoi(piece, &used));
      if (used != piece.size()) throw std::invalid_argument(piece);
    } catch (const std::exception&) {
      throw UsageError(std::string(flag) + ": '" + args.get_or(flag, fallback) + "' is not a list of integers");
    }
  }
  return out;
}

// gptqw advise's own options: candidates, budgets, hand edits, what to check.
AdviceSpec advice_spec(const Args& args, const RunSpec& run) {
  AdviceSpec a;
  a.run = run;
  for (int bits : int_list(args, "--try-bits", "2,3,4,8"))
    for (int group : int_list(args, "--try-groups", "32,64,128,-1")) {
      try {
        a.sensitivity.candidates.push_back(parse_choice(std::to_string(bits) + ":" + std::to_string(group)));
      } catch (const ConfigError& e) {
        throw UsageError(std::string("--try-bits / --try-groups: ") + e.what());
      }
    }
  for (const std::string& b : args.get_all("--budget")) {
    char* end = nullptr;
    const double v = std::strtod(b.c_str(), &end);
    if (end == b.c_str() || *end || !(v > 0) || v > 16)
      throw UsageError("--budget: '" + b + "' is not a number of bits per weight between 0 and 16");
    a.budgets.push_back(v);
  }
  if (a.budgets.empty()) throw UsageError("missing required option --budget (bits per weight, e.g. 3.5)");
  a.held_out = static_cast<int>(args.get_int("--held-out", a.held_out, 1, kMaxSamples));
  const std::string measure = args.get_or("--measure", "kld");
  if (measure != "kld" && measure != "scaled") throw UsageError("--measure must be kld or scaled, got '" + measure + "'");
  a.sensitivity.measure = measure == "kld" ? SensitivityOptions::Measure::kld : SensitivityOptions::Measure::scaled;
  try {
    if (auto anchor = args.get("--anchor")) a.sensitivity.anchor = parse_choice(*anchor);
    // --keep model.layers.0.self_attn.q_proj=8:128 (or =fp16): a hand edit of that module's unit.
    for (const std::string& keep : args.get_all("--keep")) {
      const size_t eq = keep.find('=');
      if (eq == std::string::npos) throw ConfigError("'" + keep + "' is not MODULE=SETTING");
      a.fixed[parse_layer_module(keep.substr(0, eq))] = parse_choice(keep.substr(eq + 1));
    }
  } catch (const std::exception& e) {
    throw UsageError(std::string("--anchor / --keep: ") + e.what());
  }
  a.curve = args.flag("--curve");
  a.check = a.curve || args.flag("--check");
  return a;
}

// gptqw advise's findings: the most and least sensitive units, each plan with its predicted
// and (checked) measured damage, and the curve.
void print_advice(const Advice& a) {
  const Sensitivity& s = a.sensitivity;
  std::printf("sensitivity: mean KL divergence per held-out position (%lld positions) when the unit alone is quantized\n",
              static_cast<long long>(s.held_out_positions));
  std::printf("  %-34s", "unit");
  for (const PrecisionChoice& c : s.candidates) std::printf(" %9s", choice_text(c).c_str());
  std::printf("\n");
  for (size_t i = 0; i < s.units.size(); ++i) {
    const UnitSensitivity& u = s.units[i];
    std::string name = u.modules.front().module();
    if (u.modules.size() > 1) name += " +" + std::to_string(u.modules.size() - 1);
    std::printf("  %-34s", name.c_str());
    for (size_t c = 0; c < u.kld.size(); ++c)
      std::printf(" %9s", std::isfinite(u.kld[c]) ? fmt(u.kld[c], u.measured[c] ? "%.3g" : "~%.2g").c_str() : "-");
    std::printf("%s\n", a.planned[i] ? "" : "   (fp16 in every plan)");
  }
  std::printf("cost: %d GPTQ runs, %d held-out passes, %.2f s (hessians %.2f, gptq %.2f, kld %.2f)\n",
              s.gptq_runs, s.kld_passes, s.seconds, s.seconds_hessian, s.seconds_gptq, s.seconds_kld);
  auto point_line = [&](const AdvicePoint& p) {
    std::string ppl;
    for (size_t t = 0; t < p.eval.size(); ++t)
      ppl += "  PPL " + fmt(p.eval[t].ppl_quant.value, "%.4f") + " KLD " + fmt(p.eval[t].kld.value, "%.5f") + " ± " +
             fmt(p.eval[t].kld.se, "%.5f");
    std::printf("  %-22s %6.3f bpw  predicted KLD %.5f  held-out KLD %s%s\n", p.label.c_str(), p.bits_per_weight,
                p.predicted, p.held_out_kld < 0 ? "-" : fmt(p.held_out_kld, "%.5f").c_str(), ppl.c_str());
  };
  for (const AdvicePoint& p : a.plans) {
    std::printf("\n%s: %.3f bits per weight, predicted KLD %.5f\n", p.label.c_str(), p.bits_per_weight, p.predicted);
    for (const PlannedUnit& u : p.units) {
      std::string name = u.modules.front().module();
      if (u.modules.size() > 1) name += " +" + std::to_string(u.modules.size() - 1);
      std::printf("  %-34s %-9s predicted %-10s measured %-10s%s%s\n", name.c_str(),
                  choice_text(s.candidates[u.choice]).c_str(), fmt(u.predicted, "%.4g").c_str(),
                  u.measured < 0 ? "-" : fmt(u.measured, "%.4g").c_str(), u.marlin.empty() ? "" : "  no Marlin: ",
                  u.marlin.c_str());
    }
  }
  if (!a.plans.empty() && (a.plans[0].held_out_kld >= 0 || !a.uniform.empty())) {
    std::printf("\nbits per weight against KL divergence%s:\n",
                a.eval_files.empty() ? "" : (" (PPL and KLD on " + a.eval_files[0] + ")").c_str());
    for (size_t t = 0; t < a.eval_original.size(); ++t)
      std::printf("  original PPL %.4f ± %.4f on %s\n", a.eval_original[t].ppl, a.eval_original[t].ppl_se,
                  a.eval_files[t].c_str());
    std::vector<const AdvicePoint*> all;
    for (const AdvicePoint& p : a.plans) all.push_back(&p);
    for (const AdvicePoint& p : a.uniform) all.push_back(&p);
    std::sort(all.begin(), all.end(), [](auto* x, auto* y) { return x->bits_per_weight < y->bits_per_weight; });
    for (const AdvicePoint* p : all) point_line(*p);
  }
  // Each uniform setting against the plan of the same cost.
  bool header = false;
  for (const AdvicePoint& u : a.uniform)
    for (const AdvicePoint& p : a.plans) {
      if (p.label != "plan at the cost of " + u.label) continue;
      auto kld = [](const AdvicePoint& x) { return x.eval.empty() ? x.held_out_kld : x.eval[0].kld.value; };
      if (!header) std::printf("\nat equal cost (KLD%s):\n", a.eval_files.empty() ? " on the held-out windows" : "");
      header = true;
      std::printf("  %6.3f bpw  %-34s %.5f   plan %.5f  %s\n", u.bits_per_weight, u.label.c_str(), kld(u), kld(p),
                  kld(p) < kld(u) ? "plan better" : kld(p) == kld(u) ? "same" : "uniform better");
    }
}

// The calibration matrix as tables: GPTQ's perplexity and mean KLD, a row per corpus, a column
// per text, the best corpus of each text starred; RTN, which uses no calibration, below as the
// baseline (and the original's perplexity).
void print_matrix(const CalibrationMatrix& m) {
  auto name = [](const std::string& path) { return std::filesystem::path(path).filename().string(); };
  auto row = [](const std::string& label, const std::vector<double>& values, const std::vector<double>& best) {
    std::printf("  %-26.26s", label.c_str());
    for (size_t t = 0; t < values.size(); ++t)
      std::printf(" %15.5g%s", values[t], !best.empty() && values[t] == best[t] ? "*" : " ");
    std::printf("\n");
  };
  for (const auto& [quantity, title] : {std::pair{"ppl", "perplexity"}, std::pair{"kld", "mean KLD"}}) {
    const auto gptq = m.values("gptq", quantity), rtn = m.values("rtn", quantity);
    std::printf("\nGPTQ %s (rows: calibration corpus, columns: evaluation text; * the best corpus for the text):\n",
                title);
    std::printf("  %-26s", "");
    for (const std::string& t : m.texts) std::printf(" %16.16s", name(t).c_str());
    std::printf("\n");
    std::vector<double> best(m.texts.size(), std::numeric_limits<double>::infinity());
    for (const auto& r : gptq)
      for (size_t t = 0; t < r.size(); ++t) best[t] = std::min(best[t], r[t]);
    for (size_t c = 0; c < gptq.size(); ++c) row(name(m.calibs[c]), gptq[c], best);
    if (!rtn.empty() && std::isfinite(rtn[0][0])) row("RTN (no calibration)", rtn[0], {});
    if (std::string(quantity) == "ppl" && !m.cells.empty()) {
      std::vector<double> original;
      for (const TextQuality& q : m.cells[0]) original.push_back(q.ppl_original.value);
      row("original", original, {});
    }
  }
}

int run(const std::vector<std::string>& words, Mode mode) {
  const bool compare = mode != Mode::quantize;
  Args args(words, kFlags, kValued);
  RunSpec spec;
  spec.options = parse_options(args, compare);
  const QuantizeOptions& options = spec.options;
  if (auto field = args.get("--calib-field")) spec.calib_options.jsonl_field = *field;
  spec.pad_unloadable = args.flag("--pad-unloadable");
  if (auto plan = args.get("--plan")) {
    // A plan of `gptqw advise` (its report): the per-module settings of the plan under
    // --budget, or of its first plan.
    if (mode != Mode::quantize && mode != Mode::compare) throw UsageError("--plan: for quantize and compare");
    const Report advised = load_report(*plan);
    if (!advised.advice || advised.advice->plans.empty())
      throw ConfigError(file_msg(*plan, "holds no plan (write one with gptqw advise --report)"));
    const AdvicePoint* chosen = &advised.advice->plans.front();
    if (args.get("--budget")) {
      const double b = args.get_double("--budget", 0, 0, 16);
      // The plan whose budget is nearest, within the 3 decimals the advisor prints.
      chosen = nullptr;
      for (const AdvicePoint& p : advised.advice->plans)
        if (std::fabs(p.budget - b) < 5e-4 && (!chosen || std::fabs(p.budget - b) < std::fabs(chosen->budget - b)))
          chosen = &p;
      if (!chosen) throw ConfigError(file_msg(*plan, "has no plan for a budget of " + fmt(b) + " bits per weight"));
    }
    for (const char* own : {"--bits", "--group-size"})
      if (args.get(own)) throw UsageError(std::string("--plan sets every module's bits and group size; ") + own + " cannot be given with it");
    spec.options = point_options(spec.options, *chosen);
  }
  if (auto from = args.get("--calib-from")) {
    // The windows of an earlier run: its calibration file (or --calib, a copy of it), its
    // seqlen and its offsets.
    for (const char* own : {"--nsamples", "--seqlen", "--seed"})
      if (args.get(own))
        throw UsageError(std::string("--calib-from takes the windows from the report; ") + own +
                         " cannot be given with it");
    const Report earlier = load_report(*from);
    spec.replay = calibration_record(earlier);
    spec.calib_file = args.get_or("--calib", earlier.calib_file);
    spec.nsamples = earlier.nsamples;
    spec.seqlen = earlier.seqlen;
    spec.seed = earlier.seed;
  } else {
    spec.calib_file = args.require("--calib");
    if (mode != Mode::calibration_matrix && args.get_all("--calib").size() > 1)
      throw UsageError("--calib given more than once: one corpus per run (gptqw calibration-matrix takes several)");
    spec.nsamples = static_cast<int>(args.get_int("--nsamples", spec.nsamples, 1, kMaxSamples));
    spec.seqlen = static_cast<int>(args.get_int("--seqlen", spec.seqlen, 2, kMaxSeqlen));
    long seed = args.get_int("--seed", long(spec.seed), 0, std::numeric_limits<long>::max());
    spec.seed = static_cast<uint64_t>(seed);
  }
  for (const std::string& eval : args.get_all("--eval")) spec.eval_files.push_back(eval);
  if (mode != Mode::advise) {
    for (const char* own : {"--check", "--curve"})
      if (args.flag(own)) throw UsageError(std::string(own) + " is an option of gptqw advise");
    for (const char* own : {"--try-bits", "--try-groups", "--held-out", "--measure", "--anchor", "--keep"})
      if (args.get(own)) throw UsageError(std::string(own) + " is an option of gptqw advise");
    if (args.get("--budget") && !args.get("--plan"))
      throw UsageError("--budget is an option of gptqw advise, or picks a plan with --plan");
  }
  if (args.get("--eval-precision"))
    spec.eval_precision = args.get_double("--eval-precision", 0, 1e-9, 1.0);
  spec.generation.prompts = prompts_of(args);
  spec.generation.new_tokens =
      static_cast<int>(args.get_int("--gen-tokens", spec.generation.new_tokens, 1, kMaxNewTokens));
  // The evaluation windows are as long as the calibration windows unless asked otherwise.
  spec.eval.seqlen = static_cast<int>(args.get_int("--eval-seqlen", spec.seqlen, 2, kMaxSeqlen));
  spec.eval.max_windows = static_cast<int>(
      args.get_int("--eval-max-windows", spec.eval.max_windows, 0, kMaxWindows));
  const bool json_out = args.flag("--json");
  spec.threads = apply_threads(args);
  try {  // --device cuda where none answers: refused before anything loads, with the reason
    backend_for(options.device);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("--device ") + device_name(options.device) + ": " + e.what());
  }

  // Every destination is checked before anything is loaded or run (common/output_file.h):
  // a report that could not be written, or that would land on an input, is refused now rather
  // than after hours of work.
  GptqExportOptions eo;
  const std::optional<std::string> out = args.get("--out");
  if (out) {
    eo.source_dir = args.require("--model");
    eo.output_dir = *out;
    eo.force = args.flag("--force");
    eo.max_shard_bytes = static_cast<uint64_t>(
        args.get_double("--shard-size", double(eo.max_shard_bytes) / 1e9, kMinShardGB, kMaxShardGB) *
        1e9);
    check_export_destination(eo);
  }
  if (auto file = args.get("--report")) {
    ProtectedPaths inputs = {{args.require("--model"), "the source model"}};
    const std::vector<std::string> calibs = args.get_all("--calib");
    for (const std::string& calib : calibs)
      inputs.push_back({calib, calibs.size() > 1 ? "a calibration text" : "the calibration text"});
    if (calibs.empty()) inputs.push_back({spec.calib_file, "the calibration text"});
    if (auto tok = args.get("--tokenizer")) inputs.push_back({*tok, "the tokenizer"});
    if (auto plan = args.get("--plan")) inputs.push_back({*plan, "the plan's report"});
    if (auto from = args.get("--calib-from")) inputs.push_back({*from, "the report whose windows are used"});
    for (const auto& eval : spec.eval_files)
      inputs.push_back({eval, spec.eval_files.size() > 1 ? "an evaluation text" : "the evaluation text"});
    // The export folder is replaced as a whole when it is done: a report inside would go too.
    if (out) inputs.push_back({*out, "the --out folder (replaced by the export)"});
    check_output_file(*file, inputs);
  }

  Model model = open_model(args);
  // The advisor tries its own candidates: the run's bits and group size are not checked.
  if (mode == Mode::advise) {
    if (out) throw UsageError("--out: advise writes plans; export one with gptqw quantize --plan REPORT --out DIR");
    TerminalProgress bar(json_out || args.flag("--quiet"));
    const AdviceSpec aspec = advice_spec(args, spec);
    CalibrationSet calib;
    Advice advice = advise(model, aspec, bar.callback(), &calib);
    // The report records the model, the GPTQ settings the candidates share and the calibration
    // windows, as a run's does; its layers are empty.
    Report report = make_report(model, calib, aspec.run.options, {}, spec.threads);
    report.advice = std::move(advice);
    bar.finish();
    if (auto file = args.get("--report")) save_report(report, *file);
    if (json_out) std::printf("%s\n", to_json(*report.advice).dump().c_str());
    else print_advice(*report.advice);
    return 0;
  }
  // The settings against the model (the calibration text's length is checked once it is
  // tokenized): what stops the run first; the export's problems only with --out. Modules the
  // GPTQ loaders could not read quantized stay in fp16 (unless --pad-unloadable).
  const RunSettingsCheck check = check_run_settings(spec, &model.config(), -1);
  std::string stops;
  for (const SettingsProblem& p : check.problems)
    if (p.severity == SettingsProblem::Severity::blocks_run)
      for (const std::string& line : describe(p)) stops += (stops.empty() ? "" : "\n") + line;
  if (!stops.empty()) throw ConfigError(stops);
  std::string errors;
  for (const SettingsProblem& p : check.problems) {
    if (p.kind == SettingsProblem::Kind::export_issue && !out) continue;
    for (const std::string& line : describe(p))
      if (p.severity == SettingsProblem::Severity::blocks_export)
        errors += "\n  " + line;
      else if (!args.flag("--quiet"))
        std::fprintf(stderr, "%s\n", line.c_str());
  }
  // Export: the format's limits were checked against the architecture above, before anything
  // runs, and the destination rules are checked again (the writer makes its temporary folder
  // now).
  std::unique_ptr<GptqWriter> writer;
  const Method exported = options.run_gptq ? Method::gptq : Method::rtn;
  if (out) {
    eo.settings = checkpoint_settings(check.effective);
    if (!errors.empty())
      throw ConfigError("these settings cannot be exported as a GPTQ checkpoint:" + errors +
                        "\n(choose another --bits / --group-size, leave the module in full "
                        "precision with --skip-modules, or run without --out)");
    writer = std::make_unique<GptqWriter>(*model.weights, eo);
  }
  TerminalProgress bar(json_out || args.flag("--quiet"));
  if (mode == Mode::calibration_matrix) {
    if (out) throw UsageError("--out: the calibration matrix runs several quantizations and exports none");
    if (spec.eval_files.empty()) throw UsageError("missing required option --eval (one or more texts)");
    std::vector<std::filesystem::path> calibs;
    for (const std::string& c : args.get_all("--calib")) calibs.push_back(c);
    Report report;
    CalibrationMatrix m = calibration_matrix(model, spec, calibs, bar.callback(), &report);
    bar.finish();
    report.calibration_matrix = std::move(m);
    if (auto file = args.get("--report")) save_report(report, *file);
    if (json_out) std::printf("%s\n", to_json(report).dump().c_str());
    else print_matrix(*report.calibration_matrix);
    return 0;
  }
  const RunInputs inputs = prepare_run(model, spec);
  LayerSink sink;
  if (writer)
    sink = [&](Method m, int block, LinearKind kind, QuantizedWeights&& w) {
      if (m == exported) writer->add(block, kind, w);
    };
  Report report = run_quantization(model, spec, inputs, sink, bar.callback());
  bar.finish();
  if (auto file = args.get("--report")) save_report(report, *file);
  if (writer) {
    writer->set_report(to_json(report));
    writer->finish();
    if (!args.flag("--quiet"))
      std::fprintf(stderr, "exported %s checkpoint to %s\n", std::string(method_name(exported)).c_str(),
                   writer->destination().c_str());
  }
  if (json_out)
    std::printf("%s\n", to_json(report).dump().c_str());
  else
    print_table(report);
  return 0;
}

}  // namespace

int cmd_quantize(const std::vector<std::string>& words) { return run(words, Mode::quantize); }
int cmd_compare(const std::vector<std::string>& words) { return run(words, Mode::compare); }
int cmd_calibration_matrix(const std::vector<std::string>& words) { return run(words, Mode::calibration_matrix); }
int cmd_advise(const std::vector<std::string>& words) { return run(words, Mode::advise); }

}  // namespace gptqw::cli
