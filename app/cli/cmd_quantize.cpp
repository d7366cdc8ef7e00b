// gptqw quantize / gptqw compare: the sequential driver from the command line. `quantize`
// runs one method (GPTQ by default), `compare` runs GPTQ and RTN from the same calibration
// windows and prints them side by side; both can evaluate perplexity and write the report.
#include <cstdio>
#include <limits>
#include <optional>

#include "cli_common.h"
#include "commands.h"
#include "common/threads.h"
#include "common/error.h"
#include "common/output_file.h"
#include "io/gptq_export.h"
#include "pipeline/run.h"
#include "pipeline/run_settings.h"
#include "settings_words.h"

namespace gptqw::cli {

namespace {

const std::set<std::string> kFlags = {"--act-order", "--sym", "--asym", "--static-groups", "--mse",
                                      "--exact-ties", "--no-true-sequential", "--json", "--quiet",
                                      "--force", "--pad-unloadable"};
const std::set<std::string> kValued = {"--model", "--tokenizer", "--calib", "--method", "--bits",
                                       "--group-size", "--damp", "--block-size", "--nsamples",
                                       "--seqlen", "--seed", "--eval", "--eval-seqlen",
                                       "--eval-max-windows", "--report", "--threads", "--out",
                                       "--shard-size", "--skip-modules", "--calib-field",
                                       "--calib-from", "--device"};

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
  std::string skip = args.get_or("--skip-modules", "");
  for (size_t pos = 0; pos < skip.size();) {
    size_t comma = std::min(skip.find(',', pos), skip.size());
    try {
      if (comma > pos) o.skip.insert(parse_linear_name(skip.substr(pos, comma - pos)));
    } catch (const ConfigError& e) {
      throw UsageError(std::string("--skip-modules: ") + e.what());
    }
    pos = comma + 1;
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
  if (r.perplexity) {
    const auto& p = *r.perplexity;
    std::printf("\nperplexity on %s (seqlen %d, %d windows):\n", p.text.c_str(), p.seqlen, p.windows);
    auto line = [&](const char* name, const std::optional<double>& v) {
      if (!v) return;
      std::printf("  %-9s %.4f", name, *v);
      if (auto pct = p.percent_over_original(v); pct && v != p.original)
        std::printf("  (%+.2f%%, %+.4f vs original)", *pct, *v - *p.original);
      std::printf("\n");
    };
    line("original", p.original);
    line("rtn", p.rtn);
    line("gptq", p.gptq);
    if (auto share = p.gptq_recovered_share())
      std::printf("  GPTQ recovers %.0f%% of RTN's loss (in log-perplexity)\n", 100 * *share);
  }
}

int run(const std::vector<std::string>& words, bool compare) {
  Args args(words, kFlags, kValued);
  RunSpec spec;
  spec.options = parse_options(args, compare);
  const QuantizeOptions& options = spec.options;
  if (auto field = args.get("--calib-field")) spec.calib_options.jsonl_field = *field;
  spec.pad_unloadable = args.flag("--pad-unloadable");
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
    spec.nsamples = static_cast<int>(args.get_int("--nsamples", spec.nsamples, 1, kMaxSamples));
    spec.seqlen = static_cast<int>(args.get_int("--seqlen", spec.seqlen, 2, kMaxSeqlen));
    long seed = args.get_int("--seed", long(spec.seed), 0, std::numeric_limits<long>::max());
    spec.seed = static_cast<uint64_t>(seed);
  }
  if (auto eval = args.get("--eval")) spec.eval_file = *eval;
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
    ProtectedPaths inputs = {{args.require("--model"), "the source model"},
                             {spec.calib_file, "the calibration text"}};
    if (auto tok = args.get("--tokenizer")) inputs.push_back({*tok, "the tokenizer"});
    if (spec.eval_file) inputs.push_back({*spec.eval_file, "the evaluation text"});
    // The export folder is replaced as a whole when it is done: a report inside would go too.
    if (out) inputs.push_back({*out, "the --out folder (replaced by the export)"});
    check_output_file(*file, inputs);
  }

  Model model = open_model(args);
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
  const RunInputs inputs = prepare_run(model, spec);
  LayerSink sink;
  if (writer)
    sink = [&](Method m, int block, LinearKind kind, QuantizedWeights&& w) {
      if (m == exported) writer->add(block, kind, w);
    };
  TerminalProgress bar(json_out || args.flag("--quiet"));
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

int cmd_quantize(const std::vector<std::string>& words) { return run(words, false); }
int cmd_compare(const std::vector<std::string>& words) { return run(words, true); }

}  // namespace gptqw::cli
