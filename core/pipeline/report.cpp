#include "pipeline/report.h"

#include "pipeline/advice_json.h"

#include <cmath>
#include <ctime>
#include <sys/resource.h>
#include <fstream>
#include <tuple>

#include "common/error.h"
#include "common/json.h"
#include "common/json_fields.h"
#include "common/output_file.h"

namespace gptqw {

using nlohmann::json;

namespace {

// A module named as linear_name() writes it ("self_attn.q_proj").
LinearKind module_at(const JsonFields& f, const char* key) {
  const std::string module = f.string(key);
  if (auto k = linear_kind_of(module)) return *k;
  f.fail(key, "is \"" + module + "\", not a linear module (" + linear_names_list() + ")");
}

// A layer's shape, [out_features, in_features].
std::pair<int64_t, int64_t> shape_at(const JsonFields& f) {
  const std::vector<int64_t> shape = f.integers<int64_t>("shape");
  if (shape.size() != 2)
    f.fail("shape", "must be [out, in], got " + std::to_string(shape.size()) + " numbers");
  return {shape[0], shape[1]};
}

// The damping fraction's key: reports written before it was renamed call it "damp_percent"
// (holding the same fraction, as GPTQ's quantize_config.json does).
const char* damp_key(const JsonFields& f) {
  return f.has("damp_fraction") ? "damp_fraction" : "damp_percent";
}

// Optional numbers are written as null.
json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
std::optional<double> opt_at(const JsonFields& f, const char* key) {
  return f.has(key) ? std::optional<double>(f.real(key)) : std::nullopt;
}

// A plan's per-module settings, one entry per module.
json per_module_json(const std::map<LayerId, PrecisionChoice>& per_module) {
  json a = json::array();
  for (const auto& [id, c] : per_module)
    a.push_back({{"block", id.block}, {"module", std::string(linear_name(id.kind))},
                 {"bits", c.bits}, {"group_size", c.group_size}, {"fp16", c.fp16}});
  return a;
}

json layer_json(const LayerReport& r) {
  json j = {{"block", r.block},
            {"module", std::string(linear_name(r.kind))},
            {"name", r.name},
            {"shape", {r.out_features, r.in_features}},
            {"bits", r.bits},
            {"group_size", r.group_size},
            {"hessian",
             {{"min", r.hessian.min},
              {"median", r.hessian.median},
              {"max", r.hessian.max},
              {"mean", r.hessian.mean},
              {"dead_fraction", r.hessian.dead_fraction},
              {"diag", r.hessian_diag}}},
            {"bytes_fp16", r.bytes_fp16},
            {"bytes_quantized", r.bytes_quantized},
            {"bits_per_weight", r.bits_per_weight},
            {"note", r.note}};
  if (r.gptq_rel_error >= 0)
    j["gptq"] = {{"rel_error", r.gptq_rel_error}, {"loss", r.gptq_loss},
                 {"damp_fraction", r.damp_fraction}, {"damp_abs", r.damp_abs},
                 {"damp_raises", r.damp_raises},    {"fell_back_to_rtn", r.fell_back_to_rtn},
                 {"seconds", r.gptq_seconds},       {"perm", r.perm}};
  if (r.rtn_rel_error >= 0) j["rtn"] = {{"rel_error", r.rtn_rel_error}, {"seconds", r.rtn_seconds}};
  return j;
}

// `quant`: the run's settings, which layers written before they carried their own take.
LayerReport layer_from(const JsonFields& f, const QuantConfig& quant) {
  LayerReport r;
  r.bits = f.integer_or<int>("bits", quant.bits);
  r.group_size = f.integer_or<int>("group_size", quant.group_size);
  r.block = f.integer<int>("block");
  r.kind = module_at(f, "module");
  r.name = f.string("name");
  std::tie(r.out_features, r.in_features) = shape_at(f);
  const JsonFields h = f.object("hessian");
  r.hessian = {h.real<float>("min"), h.real<float>("median"), h.real<float>("max"),
               h.real<float>("mean"), h.real("dead_fraction")};
  r.hessian_diag = h.reals<float>("diag");
  r.bytes_fp16 = f.integer<uint64_t>("bytes_fp16");
  r.bytes_quantized = f.integer<uint64_t>("bytes_quantized");
  r.bits_per_weight = f.real("bits_per_weight");
  r.note = f.string_or("note", "");
  if (f.has("gptq")) {
    const JsonFields g = f.object("gptq");
    r.gptq_rel_error = g.real("rel_error");
    r.gptq_loss = g.real("loss");
    r.damp_fraction = g.real(damp_key(g));
    r.damp_abs = g.real<float>("damp_abs");
    r.damp_raises = g.integer<int>("damp_raises");
    r.fell_back_to_rtn = g.boolean("fell_back_to_rtn");
    r.gptq_seconds = g.real("seconds");
    r.perm = g.integers<int32_t>("perm");
  }
  if (f.has("rtn")) {
    const JsonFields t = f.object("rtn");
    r.rtn_rel_error = t.real("rel_error");
    r.rtn_seconds = t.real("seconds");
  }
  return r;
}

json skip_names(const QuantizeOptions& o) {
  json a = json::array();
  for (LinearKind k : kAllLinears)
    if (o.skip.count(k)) a.push_back(std::string(linear_name(k)));
  return a;
}

json kept_json(const std::vector<UnloadableModule>& kept) {
  json a = json::array();
  for (const auto& m : kept)
    a.push_back({{"module", std::string(linear_name(m.kind))},
                 {"shape", {m.out_features, m.in_features}},
                 {"reason", m.reason}});
  return a;
}

}  // namespace

ModelSummary summarize(const WeightSource& w, const std::string& path) {
  const ModelConfig& c = w.config();
  ModelSummary s;
  s.path = path;
  s.format = w.format();
  s.model_type = c.model_type;
  s.architecture = c.architecture;
  s.dtype = w.dtype();
  s.num_layers = c.num_layers;
  s.hidden_size = c.hidden_size;
  s.intermediate_size = c.intermediate_size;
  s.num_heads = c.num_heads;
  s.num_kv_heads = c.num_kv_heads;
  s.vocab_size = c.vocab_size;
  s.parameters = c.parameter_count();
  s.bytes_on_disk = w.bytes_on_disk();
  s.head_dim = c.head_dim;
  s.rope = describe_rope(c);
  s.qk_norm = c.qk_norm;
  s.tie_word_embeddings = c.tie_word_embeddings;
  s.unrecognized_config_keys = c.unrecognized_keys;
  return s;
}

MemorySummary memory_summary(const ModelConfig& c, const std::vector<LayerReport>& layers) {
  MemorySummary m;
  m.parameters = c.parameter_count();
  uint64_t linear_fp16 = 0, linear_q = 0;
  for (const auto& l : layers) {
    m.quantized_parameters += l.out_features * l.in_features;
    linear_fp16 += l.bytes_fp16;
    linear_q += l.bytes_quantized;
  }
  m.fp16_bytes = uint64_t(m.parameters) * 2;
  m.quantized_bytes = m.fp16_bytes - linear_fp16 + linear_q;
  m.bits_per_weight = m.quantized_parameters ? linear_q * 8.0 / double(m.quantized_parameters) : 0;
  m.saving_percent = m.fp16_bytes ? 100.0 * (1.0 - double(m.quantized_bytes) / m.fp16_bytes) : 0;
  return m;
}

std::optional<double> PerplexitySummary::percent_over_original(
    const std::optional<double>& quantized) const {
  if (!original || !quantized || !(*original > 0)) return std::nullopt;
  return 100.0 * (*quantized / *original - 1.0);
}

std::optional<double> PerplexitySummary::gptq_recovered_share() const {
  if (!original || !rtn || !gptq || !(*original > 0) || !(*rtn > 0) || !(*gptq > 0))
    return std::nullopt;
  const double lost = std::log(*rtn) - std::log(*original);
  if (!(lost > 0)) return std::nullopt;
  return (std::log(*rtn) - std::log(*gptq)) / lost;
}

Report make_report(const Model& model, const CalibrationSet& calib, const QuantizeOptions& options,
                   QuantizeResult result, int threads) {
  Report r;
  r.tool_version = GPTQW_VERSION;
  r.created = utc_now_iso8601();
  r.backend = result.backend.empty() ? best_backend().name() : result.backend;
  r.threads = threads;
  r.environment = current_environment(threads);
  r.model = summarize(*model.weights, model.path.string());
  r.options = options;
  r.calib_file = calib.source.string();
  r.calib_file_bytes = calib.source_bytes;
  r.calib_sha256 = calib.source_sha256;
  r.nsamples = calib.nsamples();
  r.seqlen = calib.seqlen;
  r.seed = calib.seed;
  r.calib_text_tokens = calib.text_tokens;
  r.calib_offsets = calib.offsets;
  r.calib_format = calib.format;
  r.calib_field = calib.field;
  r.calib_documents = calib.documents;
  r.calib_files = calib.files;
  r.memory = memory_summary(model.config(), result.layers);
  r.layers = std::move(result.layers);
  result.layers.clear();
  r.timing = std::move(result);
  return r;
}

CalibrationRecord calibration_record(const Report& r) {
  CalibrationRecord c;
  c.file = r.calib_file;
  c.file_bytes = r.calib_file_bytes;
  c.sha256 = r.calib_sha256;
  c.field = r.calib_field;
  c.text_tokens = r.calib_text_tokens;
  c.seqlen = r.seqlen;
  c.seed = r.seed;
  c.offsets = r.calib_offsets;
  return c;
}

json to_json(const Report& r) {
  const QuantConfig& q = r.options.gptq.quant;
  json methods = json::array();
  if (r.options.run_gptq) methods.push_back("gptq");
  if (r.options.run_rtn) methods.push_back("rtn");
  json j = {
      {"schema", "gptq-workbench-report"},
      {"schema_version", kReportSchemaVersion},
      {"tool", {{"name", "gptqw"}, {"version", r.tool_version}}},
      {"created", r.created},
      {"backend", r.backend},
      {"threads", r.threads},
      {"model",
       {{"path", r.model.path},           {"format", r.model.format},
        {"model_type", r.model.model_type}, {"architecture", r.model.architecture},
        {"dtype", r.model.dtype},          {"num_layers", r.model.num_layers},
        {"hidden_size", r.model.hidden_size}, {"intermediate_size", r.model.intermediate_size},
        {"num_heads", r.model.num_heads},  {"num_kv_heads", r.model.num_kv_heads},
        {"vocab_size", r.model.vocab_size}, {"parameters", r.model.parameters},
        {"bytes_on_disk", r.model.bytes_on_disk}, {"head_dim", r.model.head_dim},
        {"rope", r.model.rope},            {"qk_norm", r.model.qk_norm},
        {"tie_word_embeddings", r.model.tie_word_embeddings},
        {"unrecognized_config_keys", r.model.unrecognized_config_keys}}},
      {"settings",
       {{"methods", methods},
        {"bits", q.bits},
        {"group_size", q.group_size},
        {"sym", q.sym},
        {"mse", q.mse},
        {"exact_ties", q.exact_ties},
        {"act_order", r.options.gptq.act_order},
        {"static_groups", r.options.gptq.static_groups},
        {"damp_fraction", r.options.gptq.damp_fraction},
        {"block_size", r.options.gptq.blocksize},
        {"true_sequential", r.options.true_sequential},
        {"device", device_name(r.options.device)},
        {"skip_modules", skip_names(r.options)},
        {"per_module", per_module_json(r.options.per_module)},
        {"kept_for_loaders", kept_json(r.kept_for_loaders)},
        {"pad_unloadable", r.pad_unloadable}}},
      {"environment", to_json(r.environment)},
      {"calibration",
       {{"file", r.calib_file},
        {"file_bytes", r.calib_file_bytes},
        {"sha256", r.calib_sha256},
        {"format", r.calib_format},
        {"field", r.calib_field.empty() ? json(nullptr) : json(r.calib_field)},
        {"documents", r.calib_documents},
        {"files", r.calib_files},
        {"separator", kDocumentSeparator},
        {"nsamples", r.nsamples},
        {"seqlen", r.seqlen},
        {"seed", r.seed},
        {"text_tokens", r.calib_text_tokens},
        {"offsets", r.calib_offsets}}},
      {"memory",
       {{"parameters", r.memory.parameters},
        {"quantized_parameters", r.memory.quantized_parameters},
        {"fp16_bytes", r.memory.fp16_bytes},
        {"quantized_bytes", r.memory.quantized_bytes},
        {"bits_per_weight", r.memory.bits_per_weight},
        {"saving_percent", r.memory.saving_percent}}},
      {"timing",
       {{"total", r.timing.seconds},
        {"forward", r.timing.seconds_forward},
        {"calibration", r.timing.seconds_calibration},
        {"hessian", r.timing.seconds_hessian},
        {"factor", r.timing.seconds_factor},
        {"gptq", r.timing.seconds_gptq},
        {"columns", r.timing.seconds_columns},
        {"lazy", r.timing.seconds_lazy},
        {"rtn", r.timing.seconds_rtn},
        {"metrics", r.timing.seconds_metrics}}},
      {"peak_rss_bytes", r.peak_rss_bytes},
      {"layers", json::array()},
      {"perplexity", nullptr}};
  for (const auto& l : r.layers) j["layers"].push_back(layer_json(l));
  if (r.perplexity) {
    const auto& p = *r.perplexity;
    j["perplexity"] = {{"text", p.text},          {"seqlen", p.seqlen},   {"windows", p.windows},
                       {"tokens", p.tokens},      {"original", opt(p.original)},
                       {"rtn", opt(p.rtn)},       {"gptq", opt(p.gptq)}, {"seconds", p.seconds},
                       {"original_se", opt(p.original_se)}, {"rtn_se", opt(p.rtn_se)},
                       {"gptq_se", opt(p.gptq_se)}};
  }
  // Version 2: every evaluation text's comparison with the original, and the generations.
  j["quality"] = json::array();
  for (const TextQuality& q : r.quality) j["quality"].push_back(to_json(q));
  j["generations"] = to_json(r.generations);
  if (r.calibration_matrix) j["calibration_matrix"] = to_json(*r.calibration_matrix);
  if (r.advice) j["advice"] = to_json(*r.advice);
  return j;
}

Report report_from_json(const json& j, const std::filesystem::path& file) {
  try {
    // The fields of every object in the report are named bare in messages ("field 'max'").
    const JsonFields f(j, file);
    const json* schema = f.find("schema");
    if (!schema || *schema != "gptq-workbench-report")
      throw FormatError(file_msg(file, "not a GPTQ Workbench report (\"schema\" is not \"gptq-workbench-report\")"));
    int version = f.integer<int>("schema_version");
    if (version < 1 || version > kReportSchemaVersion)
      throw FormatError(file_msg(file, "report schema_version " + std::to_string(version) +
                                           " is not supported (this version reads 1 to " +
                                           std::to_string(kReportSchemaVersion) + ")"));
    Report r;
    r.tool_version = f.object("tool").string("version");
    r.created = f.string("created");
    r.backend = f.string("backend");
    r.threads = f.integer<int>("threads");
    if (f.has("environment")) r.environment = environment_from_json(f.object("environment"));
    const JsonFields m = f.object("model");
    r.model = {m.string("path"),          m.string("format"),
               m.string("model_type"),    m.string("architecture"),
               m.string("dtype"),         m.integer<int>("num_layers"),
               m.integer<int>("hidden_size"), m.integer<int>("intermediate_size"),
               m.integer<int>("num_heads"), m.integer<int>("num_kv_heads"),
               m.integer<int>("vocab_size"), m.integer<int64_t>("parameters"),
               m.integer<uint64_t>("bytes_on_disk"), 0, {}, false, false, {}};
    // Fields added later: optional, so that older reports still open.
    r.model.head_dim = m.integer_or<int>("head_dim", 0);
    r.model.rope = m.string_or("rope", "");
    r.model.qk_norm = m.boolean_or("qk_norm", false);
    r.model.tie_word_embeddings = m.boolean_or("tie_word_embeddings", false);
    if (m.has("unrecognized_config_keys"))
      r.model.unrecognized_config_keys = m.strings("unrecognized_config_keys");
    const JsonFields s = f.object("settings");
    QuantizeOptions& o = r.options;
    o.gptq.quant.bits = s.integer<int>("bits");
    o.gptq.quant.group_size = s.integer<int>("group_size");
    o.gptq.quant.sym = s.boolean("sym");
    o.gptq.quant.mse = s.boolean("mse");
    o.gptq.quant.exact_ties = s.boolean_or("exact_ties", o.gptq.quant.exact_ties);
    o.gptq.act_order = s.boolean("act_order");
    o.gptq.static_groups = s.boolean("static_groups");
    o.gptq.damp_fraction = s.real(damp_key(s));
    o.gptq.blocksize = s.integer<int>("block_size");
    o.true_sequential = s.boolean("true_sequential");
    if (s.has("device")) o.device = parse_device(s.string("device"));
    const std::vector<std::string> methods = s.strings("methods");
    o.run_gptq = std::find(methods.begin(), methods.end(), "gptq") != methods.end();
    o.run_rtn = std::find(methods.begin(), methods.end(), "rtn") != methods.end();
    // Fields added later are optional: older reports still open.
    if (s.has("skip_modules"))
      for (const auto& n : s.strings("skip_modules")) o.skip.insert(parse_linear_name(n));
    if (s.has("per_module"))
      for (const JsonFields& m : s.objects("per_module")) {
        PrecisionChoice& choice = o.per_module[{m.integer<int>("block"), module_at(m, "module")}];
        choice.fp16 = m.boolean("fp16");
        choice.bits = m.integer<int>("bits");
        choice.group_size = m.integer<int>("group_size");
      }
    if (s.has("kept_for_loaders"))
      for (const JsonFields& k : s.objects("kept_for_loaders")) {
        UnloadableModule km;
        km.kind = module_at(k, "module");
        std::tie(km.out_features, km.in_features) = shape_at(k);
        km.reason = k.string("reason");
        r.kept_for_loaders.push_back(std::move(km));
      }
    r.pad_unloadable = s.boolean_or("pad_unloadable", false);
    const JsonFields c = f.object("calibration");
    r.calib_file = c.string("file");
    if (c.has("sha256")) {  // older reports lack the fingerprint
      r.calib_file_bytes = c.integer<uint64_t>("file_bytes");
      r.calib_sha256 = c.string("sha256");
      if (!r.calib_sha256.empty() && (r.calib_sha256.size() != 64 ||
                                      r.calib_sha256.find_first_not_of("0123456789abcdef") != std::string::npos))
        c.fail("sha256", "must be 64 lowercase hexadecimal digits");
    }
    r.nsamples = c.integer<int>("nsamples");
    r.seqlen = c.integer<int>("seqlen");
    r.seed = c.integer<uint64_t>("seed");
    r.calib_text_tokens = c.integer<int64_t>("text_tokens");
    r.calib_offsets = c.integers<int64_t>("offsets");
    r.calib_format = c.string_or("format", r.calib_format);
    r.calib_field = c.string_or("field", "");
    r.calib_documents = c.integer_or<int64_t>("documents", r.calib_documents);
    if (c.has("files")) r.calib_files = c.strings("files");
    for (const JsonFields& l : f.objects("layers"))
      r.layers.push_back(layer_from(l, o.gptq.quant));
    const JsonFields mem = f.object("memory");
    r.memory = {mem.integer<int64_t>("parameters"),
                mem.integer<int64_t>("quantized_parameters"),
                mem.integer<uint64_t>("fp16_bytes"),
                mem.integer<uint64_t>("quantized_bytes"),
                mem.real("bits_per_weight"),
                mem.real("saving_percent")};
    const JsonFields t = f.object("timing");
    r.timing.seconds = t.real("total");
    r.timing.seconds_forward = t.real("forward");
    r.timing.seconds_hessian = t.real("hessian");
    r.timing.seconds_gptq = t.real("gptq");
    r.timing.seconds_rtn = t.real("rtn");
    r.timing.seconds_metrics = t.real("metrics");
    // Split out later; older reports count calibration in hessian and factor in gptq.
    r.timing.seconds_calibration = t.real_or("calibration", 0.0);
    r.timing.seconds_factor = t.real_or("factor", 0.0);
    r.timing.seconds_columns = t.real_or("columns", 0.0);
    r.timing.seconds_lazy = t.real_or("lazy", 0.0);
    r.peak_rss_bytes = f.integer_or<uint64_t>("peak_rss_bytes", 0);
    if (f.has("perplexity")) {
      const JsonFields p = f.object("perplexity");
      PerplexitySummary ps;
      ps.text = p.string("text");
      ps.seqlen = p.integer<int>("seqlen");
      ps.windows = p.integer<int>("windows");
      ps.tokens = p.integer<int64_t>("tokens");
      ps.original = opt_at(p, "original");
      ps.rtn = opt_at(p, "rtn");
      ps.gptq = opt_at(p, "gptq");
      ps.seconds = p.real("seconds");
      ps.original_se = opt_at(p, "original_se");
      ps.rtn_se = opt_at(p, "rtn_se");
      ps.gptq_se = opt_at(p, "gptq_se");
      r.perplexity = ps;
    }
    // Version 2.
    if (f.has("quality"))
      for (const JsonFields& q : f.objects("quality", "quality.")) r.quality.push_back(text_quality_from_json(q));
    if (f.has("generations"))
      for (const JsonFields& g : f.objects("generations", "generations."))
        r.generations.push_back(prompt_generations_from_json(g));
    if (f.has("advice")) r.advice = advice_from_json(f.object("advice", "advice."));
    if (f.has("calibration_matrix"))
      r.calibration_matrix = calibration_matrix_from_json(f.object("calibration_matrix", "calibration_matrix."));
    return r;
  } catch (const json::exception& e) {
    throw FormatError(file_msg(file, std::string("malformed report: ") + e.what()));
  } catch (const ConfigError& e) {  // a module name that is not one of the seven
    throw FormatError(file_msg(file, std::string("malformed report: ") + e.what()));
  } catch (const FormatError& e) {
    std::string what = e.what();
    if (what.rfind(file.string(), 0) == 0) throw;
    throw FormatError(file_msg(file, what));
  }
}

void save_report(const Report& r, const std::filesystem::path& file) {
  write_file_atomically(file, to_json(r).dump(1) + "\n");  // common/output_file.h
}

Report load_report(const std::filesystem::path& file) {
  return report_from_json(read_json_file(file, kReportInput), file);
}

uint64_t peak_rss_bytes() {
  // VmHWM belongs to this program's own address space. getrusage's ru_maxrss does not: Linux
  // carries the high-water mark across exec, so a gptqw started from a large process (a test,
  // the window) would report its parent's memory at fork time.
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // "… kB"
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<uint64_t>(u.ru_maxrss) * 1024;  // Linux reports kilobytes
}

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace gptqw
