#include "pipeline/report.h"

#include <cmath>
#include <ctime>
#include <sys/resource.h>
#include <fstream>
#include <limits>
#include <type_traits>

#include "common/error.h"
#include "common/json.h"
#include "common/output_file.h"

namespace gptqw {

using nlohmann::json;

namespace {

// An integer field: a JSON integer that fits T. nlohmann's get<int>() converts a float such as
// 1e300 with a bare static_cast (undefined behaviour) and wraps an integer that does not fit.
template <class T>
T to_integer(const json& v, const std::string& field) {
  auto bad = [&](const std::string& what) { return FormatError("field '" + field + "' " + what); };
  if (!v.is_number_integer())
    throw bad(std::string("must be an integer, got ") + v.type_name());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      throw bad(std::to_string(u) + " is out of range");
    return static_cast<T>(u);
  }
  const int64_t i = v.get<int64_t>();
  bool fits;
  if constexpr (std::is_signed_v<T>)
    fits = i >= std::numeric_limits<T>::min() && i <= std::numeric_limits<T>::max();
  else
    fits = i >= 0 && static_cast<uint64_t>(i) <= std::numeric_limits<T>::max();
  if (!fits) throw bad(std::to_string(i) + " is out of range");
  return static_cast<T>(i);
}

template <class T>
T integer_at(const json& obj, const char* key) {
  return to_integer<T>(obj.at(key), key);
}

template <class T>
std::vector<T> integers_at(const json& obj, const char* key) {
  const json& a = obj.at(key);
  if (!a.is_array())
    throw FormatError(std::string("field '") + key + "' must be a list of integers");
  std::vector<T> out;
  out.reserve(a.size());
  for (const json& v : a) out.push_back(to_integer<T>(v, key));
  return out;
}

// A real-number field: a finite JSON number that fits T. A float field given 1e308 would
// otherwise become infinity, which the next save writes as null and no reader accepts.
template <class T>
T to_real(const json& v, const std::string& field) {
  if (!v.is_number())
    throw FormatError("field '" + field + "' must be a number, got " + v.type_name());
  const double d = v.get<double>();
  if (!std::isfinite(d) || std::abs(d) > std::numeric_limits<T>::max())
    throw FormatError("field '" + field + "' " + v.dump() + " is out of range");
  return static_cast<T>(d);
}

template <class T = double>
T real_at(const json& obj, const char* key) {
  return to_real<T>(obj.at(key), key);
}

LinearKind kind_from_name(const std::string& module) {
  if (auto k = linear_kind_of(module)) return *k;
  throw FormatError("unknown module '" + module + "' (the linear modules are " +
                    linear_names_list() + ")");
}

// The damping fraction's key: reports written before it was renamed call it "damp_percent"
// (holding the same fraction, as GPTQ's quantize_config.json does).
const char* damp_key(const json& obj) {
  return obj.contains("damp_fraction") ? "damp_fraction" : "damp_percent";
}

// Optional numbers are written as null.
json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
std::optional<double> opt_at(const json& obj, const char* key) {
  const json& j = obj.at(key);
  return j.is_null() ? std::nullopt : std::optional<double>(to_real<double>(j, key));
}

json layer_json(const LayerReport& r) {
  json j = {{"block", r.block},
            {"module", std::string(linear_name(r.kind))},
            {"name", r.name},
            {"shape", {r.out_features, r.in_features}},
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

LayerReport layer_from(const json& j) {
  LayerReport r;
  r.block = integer_at<int>(j, "block");
  r.kind = kind_from_name(j.at("module").get<std::string>());
  r.name = j.at("name").get<std::string>();
  r.out_features = to_integer<int64_t>(j.at("shape").at(0), "shape");
  r.in_features = to_integer<int64_t>(j.at("shape").at(1), "shape");
  const json& h = j.at("hessian");
  r.hessian = {real_at<float>(h, "min"), real_at<float>(h, "median"), real_at<float>(h, "max"),
               real_at<float>(h, "mean"), real_at(h, "dead_fraction")};
  const json& diag = h.at("diag");
  if (!diag.is_array()) throw FormatError("field 'diag' must be a list of numbers");
  r.hessian_diag.reserve(diag.size());
  for (const json& v : diag) r.hessian_diag.push_back(to_real<float>(v, "diag"));
  r.bytes_fp16 = integer_at<uint64_t>(j, "bytes_fp16");
  r.bytes_quantized = integer_at<uint64_t>(j, "bytes_quantized");
  r.bits_per_weight = real_at(j, "bits_per_weight");
  r.note = j.value("note", "");
  if (j.contains("gptq")) {
    const json& g = j["gptq"];
    r.gptq_rel_error = real_at(g, "rel_error");
    r.gptq_loss = real_at(g, "loss");
    r.damp_fraction = real_at(g, damp_key(g));
    r.damp_abs = real_at<float>(g, "damp_abs");
    r.damp_raises = integer_at<int>(g, "damp_raises");
    r.fell_back_to_rtn = g.at("fell_back_to_rtn").get<bool>();
    r.gptq_seconds = real_at(g, "seconds");
    r.perm = integers_at<int32_t>(g, "perm");
  }
  if (j.contains("rtn")) {
    r.rtn_rel_error = real_at(j["rtn"], "rel_error");
    r.rtn_seconds = real_at(j["rtn"], "seconds");
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
                       {"rtn", opt(p.rtn)},       {"gptq", opt(p.gptq)}, {"seconds", p.seconds}};
  }
  return j;
}

Report report_from_json(const json& j, const std::filesystem::path& file) {
  try {
    if (!j.is_object() || j.value("schema", "") != "gptq-workbench-report")
      throw FormatError(file_msg(file, "not a GPTQ Workbench report (\"schema\" is not \"gptq-workbench-report\")"));
    int version = integer_at<int>(j, "schema_version");
    if (version != kReportSchemaVersion)
      throw FormatError(file_msg(file, "report schema_version " + std::to_string(version) +
                                           " is not supported (this version reads " +
                                           std::to_string(kReportSchemaVersion) + ")"));
    Report r;
    r.tool_version = j.at("tool").at("version").get<std::string>();
    r.created = j.at("created").get<std::string>();
    r.backend = j.at("backend").get<std::string>();
    r.threads = integer_at<int>(j, "threads");
    if (j.contains("environment")) r.environment = environment_from_json(j["environment"]);
    const json& m = j.at("model");
    r.model = {m.at("path").get<std::string>(),   m.at("format").get<std::string>(),
               m.at("model_type").get<std::string>(), m.at("architecture").get<std::string>(),
               m.at("dtype").get<std::string>(),  integer_at<int>(m, "num_layers"),
               integer_at<int>(m, "hidden_size"), integer_at<int>(m, "intermediate_size"),
               integer_at<int>(m, "num_heads"),   integer_at<int>(m, "num_kv_heads"),
               integer_at<int>(m, "vocab_size"),  integer_at<int64_t>(m, "parameters"),
               integer_at<uint64_t>(m, "bytes_on_disk"), 0, {}, false, false, {}};
    // Fields added later: optional, so that older reports still open.
    if (m.contains("head_dim")) r.model.head_dim = integer_at<int>(m, "head_dim");
    if (m.contains("rope")) r.model.rope = m.at("rope").get<std::string>();
    if (m.contains("qk_norm")) r.model.qk_norm = m.at("qk_norm").get<bool>();
    if (m.contains("tie_word_embeddings"))
      r.model.tie_word_embeddings = m.at("tie_word_embeddings").get<bool>();
    if (m.contains("unrecognized_config_keys"))
      r.model.unrecognized_config_keys = m.at("unrecognized_config_keys").get<std::vector<std::string>>();
    const json& s = j.at("settings");
    QuantizeOptions& o = r.options;
    o.gptq.quant.bits = integer_at<int>(s, "bits");
    o.gptq.quant.group_size = integer_at<int>(s, "group_size");
    o.gptq.quant.sym = s.at("sym").get<bool>();
    o.gptq.quant.mse = s.at("mse").get<bool>();
    if (s.contains("exact_ties")) o.gptq.quant.exact_ties = s.at("exact_ties").get<bool>();
    o.gptq.act_order = s.at("act_order").get<bool>();
    o.gptq.static_groups = s.at("static_groups").get<bool>();
    o.gptq.damp_fraction = real_at(s, damp_key(s));
    o.gptq.blocksize = integer_at<int>(s, "block_size");
    o.true_sequential = s.at("true_sequential").get<bool>();
    if (s.contains("device")) o.device = parse_device(s.at("device").get<std::string>());
    auto methods = s.at("methods").get<std::vector<std::string>>();
    o.run_gptq = std::find(methods.begin(), methods.end(), "gptq") != methods.end();
    o.run_rtn = std::find(methods.begin(), methods.end(), "rtn") != methods.end();
    // Fields added later are optional: older reports still open.
    if (s.contains("skip_modules"))
      for (const auto& n : s.at("skip_modules").get<std::vector<std::string>>())
        o.skip.insert(parse_linear_name(n));
    if (s.contains("kept_for_loaders"))
      for (const auto& k : s.at("kept_for_loaders")) {
        UnloadableModule m;
        m.kind = parse_linear_name(k.at("module").get<std::string>());
        const auto shape = integers_at<int64_t>(k, "shape");
        if (shape.size() != 2) throw FormatError("kept_for_loaders: shape must be [out, in]");
        m.out_features = shape[0];
        m.in_features = shape[1];
        m.reason = k.at("reason").get<std::string>();
        r.kept_for_loaders.push_back(std::move(m));
      }
    if (s.contains("pad_unloadable")) r.pad_unloadable = s.at("pad_unloadable").get<bool>();
    const json& c = j.at("calibration");
    r.calib_file = c.at("file").get<std::string>();
    if (c.contains("sha256")) {  // older reports lack the fingerprint
      r.calib_file_bytes = integer_at<uint64_t>(c, "file_bytes");
      r.calib_sha256 = c.at("sha256").get<std::string>();
      if (!r.calib_sha256.empty() && (r.calib_sha256.size() != 64 ||
                                      r.calib_sha256.find_first_not_of("0123456789abcdef") != std::string::npos))
        throw FormatError("field 'sha256' must be 64 lowercase hexadecimal digits");
    }
    r.nsamples = integer_at<int>(c, "nsamples");
    r.seqlen = integer_at<int>(c, "seqlen");
    r.seed = integer_at<uint64_t>(c, "seed");
    r.calib_text_tokens = integer_at<int64_t>(c, "text_tokens");
    r.calib_offsets = integers_at<int64_t>(c, "offsets");
    if (c.contains("format")) r.calib_format = c.at("format").get<std::string>();
    if (c.contains("field") && !c["field"].is_null()) r.calib_field = c.at("field").get<std::string>();
    if (c.contains("documents")) r.calib_documents = integer_at<int64_t>(c, "documents");
    if (c.contains("files")) r.calib_files = c.at("files").get<std::vector<std::string>>();
    for (const auto& l : j.at("layers")) r.layers.push_back(layer_from(l));
    const json& mem = j.at("memory");
    r.memory = {integer_at<int64_t>(mem, "parameters"),
                integer_at<int64_t>(mem, "quantized_parameters"),
                integer_at<uint64_t>(mem, "fp16_bytes"),
                integer_at<uint64_t>(mem, "quantized_bytes"),
                real_at(mem, "bits_per_weight"),
                real_at(mem, "saving_percent")};
    const json& t = j.at("timing");
    r.timing.seconds = real_at(t, "total");
    r.timing.seconds_forward = real_at(t, "forward");
    r.timing.seconds_hessian = real_at(t, "hessian");
    r.timing.seconds_gptq = real_at(t, "gptq");
    r.timing.seconds_rtn = real_at(t, "rtn");
    r.timing.seconds_metrics = real_at(t, "metrics");
    // Split out later; older reports count calibration in hessian and factor in gptq.
    for (auto [key, field] : {std::pair{"calibration", &QuantizeResult::seconds_calibration},
                              {"factor", &QuantizeResult::seconds_factor},
                              {"columns", &QuantizeResult::seconds_columns},
                              {"lazy", &QuantizeResult::seconds_lazy}})
      if (t.contains(key)) r.timing.*field = real_at(t, key);
    r.peak_rss_bytes = j.contains("peak_rss_bytes") ? integer_at<uint64_t>(j, "peak_rss_bytes") : 0;
    if (j.contains("perplexity") && !j["perplexity"].is_null()) {
      const json& p = j["perplexity"];
      PerplexitySummary ps;
      ps.text = p.at("text").get<std::string>();
      ps.seqlen = integer_at<int>(p, "seqlen");
      ps.windows = integer_at<int>(p, "windows");
      ps.tokens = integer_at<int64_t>(p, "tokens");
      ps.original = opt_at(p, "original");
      ps.rtn = opt_at(p, "rtn");
      ps.gptq = opt_at(p, "gptq");
      ps.seconds = real_at(p, "seconds");
      r.perplexity = ps;
    }
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
