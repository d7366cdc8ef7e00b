// GptqSettings to and from quantize_config.json (and config.json's "quantization_config"), as
// GPTQModel, AutoGPTQ and optimum write and read them.
#include "io/gptq_settings.h"

#include <memory>
#include <set>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/error.h"
#include "common/json_fields.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// One module name of modules_not_quantized / modules_in_block_to_quantize: exactly one of the
// seven, so that a typo cannot silently leave a layer quantized (or not).
LinearKind module_kind(const JsonFields& f, const std::string& field, const json& entry,
                       const std::string& position) {
  if (!entry.is_string())
    f.fail(field, position + " must be a module name (a string), got " + JsonFields::shown(entry));
  const std::string name = entry.get<std::string>();
  auto kind = linear_kind_of(name);
  if (!kind)
    f.fail(field, position + " is \"" + name + "\", not a linear module of a Llama block (" +
                      linear_names_list() + ")");
  return *kind;
}

// Keys of quantize_config.json that GptqSettings reads or writes itself (the rest goes to
// `extra`). "meta" describes the run that made the tensors, "dynamic" and "lm_head" which
// tensors are quantized: all are rewritten on export, never carried over.
const std::set<std::string> kInterpretedSettingsKeys = {
    "bits", "group_size", "desc_act", "sym", "true_sequential", "damp_percent", "static_groups",
    "quant_method", "checkpoint_format", "format", "model_file_base_name", "lm_head", "meta",
    "modules_not_quantized", "modules_in_block_to_quantize", "dynamic", "pack_dtype",
    "is_marlin_format"};

// A regex matching the full module name ("model.layers.3.mlp.down_proj") for GPTQModel's
// "dynamic" rules: re.match anchors at the start, hence the leading ".*".
std::string dynamic_skip_rule(LinearKind k) {
  std::string re = "-:.*\\.";
  for (char ch : linear_name(k)) {
    if (ch == '.') re += '\\';
    re += ch;
  }
  return re + "$";
}

// ---------------------------------------------------------------------------------------------
// Per-module rules ("dynamic")
//
// What the loaders do with "dynamic" (read from their code):
//   - GPTQModel, gptqmodel/quantization/config.py: QuantizeConfig.__post_init__ reorders the
//     dict so that every "-:" key comes first (then the others, each group in file order),
//     and checks each override (_normalize_dynamic_layer_config: "bits" one of the valid
//     widths, 2-8, where 5-7 force its planar format; "group_size" -1 or > 0). dynamic_get /
//     _resolve_dynamic_override return the FIRST rule whose pattern matches the module name
//     with PCRE's match(), anchored at the start only ("-:" gives False = not quantized; "+:"
//     or no prefix gives the override dict; a key missing from it takes the global value).
//     It matches the unfused module names ("model.layers.3.self_attn.q_proj"), which are also
//     the tensor names. to_dict writes the dict as it holds it.
//   - vLLM, vllm/model_executor/layers/quantization/utils/gptq_utils.py: get_dynamic_override
//     walks config.dynamic in dict (= file) order with re.match, "-:" returns False, "+:" or
//     no prefix the override's value (or the global one); override_config applies "bits",
//     "group_size", "desc_act" (isinstance int / bool, anything else is ignored) and, for
//     gptq_marlin, "sym", and raises ValueError for bits the kernel lacks (gptq_marlin: 4 and
//     8 with sym only; gptq: 2/3/4/8). get_linear_quant_method calls it with the prefix of the
//     vLLM layer, which for Llama is the FUSED name ("model.layers.3.self_attn.qkv_proj",
//     "model.layers.3.mlp.gate_up_proj"). gptq.py / gptq_marlin.py from_config take "dynamic"
//     as is (default {}); gptq_marlin is chosen from the global bits/sym/group_size alone
//     (is_gptq_marlin_compatible), so a 3-bit override under a 4-bit global fails there.
// So a rule we write matches the unfused names and the fused one of its unit, and no two rules
// match one name (then the order, which nlohmann::json loses, and GPTQModel's "-:"-first
// reordering cannot change anything).

// One unit a loader handles as one layer: vLLM fuses q/k/v and gate/up.
struct LoaderUnit {
  std::vector<LinearKind> members;
  const char* fused;  // vLLM's short name of the fused layer, or nullptr
};
const std::vector<LoaderUnit>& loader_units() {
  static const std::vector<LoaderUnit> units = {
      {{LinearKind::q, LinearKind::k, LinearKind::v}, "qkv_proj"},
      {{LinearKind::o}, nullptr},
      {{LinearKind::gate, LinearKind::up}, "gate_up_proj"},
      {{LinearKind::down}, nullptr}};
  return units;
}

std::string regex_escaped(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '.') out += '\\';
    out += ch;
  }
  return out;
}

// The pattern of a unit's rule in block b: the unfused names of `kept` (the members not in
// modules_not_quantized) and, when all members are kept, the fused name. It starts with ".*\."
// as the kind-wide skip rules do (and GPTQModel's own examples, "+:.*\.(?:1[0-5])\..*"): the
// module path before "layers." is "model." for a Llama but another one where a wrapper holds
// the text model (vLLM's multimodal models: "language_model.model.layers.3...."); the "\."
// before "layers" and after the block number keep block 3 from matching block 13 or 30.
std::string unit_pattern(int block, const LoaderUnit& u, const std::vector<LinearKind>& kept) {
  const std::string name(linear_name(kept.front()));
  const std::string sub = name.substr(0, name.find('.'));  // "self_attn" or "mlp"
  std::string p = ".*\\.layers\\." + std::to_string(block) + "\\." + regex_escaped(sub) + "\\.";
  std::vector<std::string> alts;
  for (LinearKind k : kept) alts.emplace_back(linear_short_name(k));
  if (u.fused && kept.size() == u.members.size()) alts.emplace_back(u.fused);
  if (alts.size() == 1) return p + alts.front() + "$";
  std::string joined;
  for (const std::string& a : alts) joined += (joined.empty() ? "" : "|") + a;
  return p + "(" + joined + ")$";
}

// For comparisons: group sizes <= 0 as -1, and an fp16 choice with the (unused) bits and group
// size at their defaults, as the reader gives them.
PrecisionChoice fp16_choice() {
  PrecisionChoice c;
  c.fp16 = true;
  return c;
}
PrecisionChoice normalised(PrecisionChoice c) {
  if (c.fp16) return fp16_choice();
  if (c.group_size <= 0) c.group_size = -1;
  return c;
}

// One rule of a read "dynamic" object.
struct ReadRule {
  std::string key;
  bool exclude = false;
  std::shared_ptr<pcre2_code> re;
  std::optional<int> bits, group_size;
};

// More rules than any model has modules (GPTQModel writes at most one per module) is a hostile
// file: each rule is matched against every module name.
constexpr size_t kMaxDynamicRules = 16384;

// A JSON integer within [-2^30, 2^30] (not a bool, a float or a string), else nullopt.
std::optional<int64_t> small_integer(const json& v) {
  if (v.is_number_unsigned())
    return v.get<uint64_t>() <= (1ULL << 30) ? std::optional<int64_t>(int64_t(v.get<uint64_t>()))
                                             : std::nullopt;
  if (!v.is_number_integer()) return std::nullopt;
  const int64_t i = v.get<int64_t>();
  return i >= -(1LL << 30) && i <= (1LL << 30) ? std::optional<int64_t>(i) : std::nullopt;
}

std::string pcre2_error_text(int err) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(err, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

std::vector<std::string> dynamic_key_order(std::string_view text, bool nested) {
  // Each open container with the last key read in it (objects); the target is the object at
  // path ["dynamic"] or ["quantization_config", "dynamic"] from the root.
  struct Frame {
    bool object;
    bool target;
    std::string key;
  };
  struct Sax {
    std::vector<std::string> path;
    std::vector<Frame> stack;
    std::vector<std::string> order;
    std::set<std::string> seen;
    bool open(bool object) {
      bool target = object && stack.size() == path.size();
      for (size_t i = 0; target && i < stack.size(); ++i)
        target = stack[i].object && stack[i].key == path[i];
      if (target) {  // nlohmann keeps the last of repeated keys: so do we
        order.clear();
        seen.clear();
      }
      stack.push_back({object, target, {}});
      return true;
    }
    bool null() { return true; }
    bool boolean(bool) { return true; }
    bool number_integer(json::number_integer_t) { return true; }
    bool number_unsigned(json::number_unsigned_t) { return true; }
    bool number_float(json::number_float_t, const json::string_t&) { return true; }
    bool string(json::string_t&) { return true; }
    bool binary(json::binary_t&) { return true; }
    bool start_object(std::size_t) { return open(true); }
    bool start_array(std::size_t) { return open(false); }
    bool end_object() { stack.pop_back(); return true; }
    bool end_array() { stack.pop_back(); return true; }
    bool key(json::string_t& k) {
      Frame& f = stack.back();
      f.key = k;
      if (f.target && seen.insert(k).second) order.push_back(k);
      return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
      return false;
    }
  } sax;
  sax.path = nested ? std::vector<std::string>{"quantization_config", "dynamic"}
                    : std::vector<std::string>{"dynamic"};
  if (!json::sax_parse(text.begin(), text.end(), &sax)) return {};
  return sax.order;
}

std::array<bool, kNumLinears> GptqSettings::skipped_kinds() const {
  std::array<bool, kNumLinears> skip{};
  for (const std::string& name : modules_not_quantized) {
    auto kind = linear_kind_of(name);
    if (!kind)
      throw ConfigError("GPTQ settings: modules_not_quantized names '" + name +
                        "', which is not a linear module of a Llama block (" +
                        linear_names_list() + ")");
    skip[static_cast<int>(*kind)] = true;
  }
  return skip;
}

json GptqSettings::to_json() const {
  json j;
  j["bits"] = quant.bits;
  j["group_size"] = quant.group_size > 0 ? quant.group_size : -1;
  j["desc_act"] = desc_act;
  j["sym"] = quant.sym;
  j["true_sequential"] = true_sequential;
  j["damp_percent"] = damp_percent;
  j["static_groups"] = static_groups;
  j["quant_method"] = "gptq";
  j["checkpoint_format"] = std::string(checkpoint_format_name(zero_format()));
  // optimum reads "format" (since late 2025; without it a gptq_v2 file is read with v1 zero
  // points), GPTQModel writes both.
  j["format"] = j["checkpoint_format"];
  j["pack_dtype"] = "int32";
  j["model_file_base_name"] = model_file_base_name;
  // GPTQModel's keys: the lm_head stays unquantized; who wrote the file.
  j["lm_head"] = false;
  j["meta"] = {{"quantizer", {std::string("gptq_workbench:") + GPTQW_VERSION}}};
  const auto skip = skipped_kinds();
  bool any = false;
  for (bool b : skip) any = any || b;
  if (any) {
    // In kAllLinears order and without repeats, whatever order the caller listed them in, so
    // that the same choice always gives the same file.
    json skipped = json::array(), in_block = json::array(), dynamic = json::object();
    for (LinearKind k : kAllLinears)
      if (skip[static_cast<int>(k)]) {
        skipped.push_back(std::string(linear_name(k)));
        dynamic[dynamic_skip_rule(k)] = json::object();
      }
    // The true-sequential groups: how optimum nests modules_in_block_to_quantize (it quantizes
    // one inner list at a time).
    for (const auto& group : sequential_groups(true)) {
      json names = json::array();
      for (LinearKind k : group)
        if (!skip[static_cast<int>(k)]) names.push_back(std::string(linear_name(k)));
      if (!names.empty()) in_block.push_back(names);  // optimum would run an empty group
    }
    j["modules_not_quantized"] = skipped;
    j["modules_in_block_to_quantize"] = in_block;
    j["dynamic"] = dynamic;
  }
  // per_module: rules of their own, beside the kind-wide ones (they never match the same
  // module name, see dynamic_rules()).
  const auto rules = dynamic_rules();
  if (!rules.empty()) {
    if (!j.contains("dynamic")) j["dynamic"] = json::object();
    for (const auto& [key, value] : rules) j["dynamic"][key] = value;
  }
  if (extra.is_object())
    for (const auto& [k, v] : extra.items())
      if (!j.contains(k)) j[k] = v;
  return j;
}

namespace {

// "dynamic" of a read file into s.per_module (see from_json in the header and the notes on the
// loaders above). s.quant and s.modules_not_quantized are read already.
void read_dynamic(GptqSettings& s, const JsonFields& f, const json& d, int num_layers,
                  const std::vector<std::string>& order) {
  const std::string field = "dynamic";
  if (!d.is_object())
    f.fail(field, "must be an object of module patterns and their overrides, got " +
                      JsonFields::shown(d));
  if (d.size() > kMaxDynamicRules)
    f.fail(field, "has " + std::to_string(d.size()) + " rules, more than the " +
                      std::to_string(kMaxDynamicRules) + " this reader takes");
  // The rules in file order: `order` when given (it must name the same keys), else the keys
  // as nlohmann::json holds them (sorted), an order that is right only for one rule.
  std::vector<std::string> keys;
  const bool order_known = !order.empty() || d.size() <= 1;
  if (!order.empty()) {
    std::set<std::string> a(order.begin(), order.end()), b;
    for (const auto& [k, v] : d.items()) b.insert(k);
    if (a != b || a.size() != order.size())
      f.fail(field, "lists other keys in the file's text than in its parsed value (was the "
                    "file changed while it was read?)");
    keys = order;
  } else {
    for (const auto& [k, v] : d.items()) keys.push_back(k);
  }
  const PrecisionChoice global = normalised({s.quant.bits, s.quant.group_size, false});

  std::vector<ReadRule> rules;
  for (const std::string& key : keys) {
    const std::string at = "key \"" + key + "\" ";
    ReadRule r;
    r.key = key;
    std::string pattern = key;
    // No prefix means "+:" (GPTQModel and vLLM alike).
    if (key.rfind("-:", 0) == 0 || key.rfind("+:", 0) == 0) {
      r.exclude = key[0] == '-';
      pattern = key.substr(2);
    }
    // PCRE2 with UTF and Unicode properties: GPTQModel compiles the pattern with PCRE itself
    // (its "pcre" module), vLLM with Python's `regex`, whose syntax PCRE2 shares for anything
    // a module pattern needs (classes, groups, alternation, (?:...), (?P<name>...)).
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
    if (!code)
      f.fail(field, at + "is not a valid regular expression: " + pcre2_error_text(err) +
                        " (at offset " + std::to_string(off) + " of the pattern)");
    r.re.reset(code, pcre2_code_free);
    const json& v = d[key];
    if (!v.is_object())
      f.fail(field, at + "must map to an object of overrides ({} for a \"-:\" rule), got " +
                        JsonFields::shown(v));
    if (!r.exclude) {
      // vLLM's override_config reads these four; GPTQModel's loader the same ones. Other keys
      // (GPTQModel's quantization-time options such as damp_percent) do not change how the
      // tensors are stored and are ignored, as both loaders ignore them.
      if (v.contains("bits")) {
        const json& b = v["bits"];
        const auto bv = small_integer(b);
        if (!bv || !packable_bits(int(*bv)))
          f.fail(field, at + "overrides bits with " + JsonFields::shown(b) +
                            ": the GPTQ packing holds 2, 3, 4 or 8 bits per weight (GPTQModel's "
                            "5-7 bits use its planar format, which is not read here)");
        r.bits = int(*bv);
      }
      if (v.contains("group_size")) {
        const json& g = v["group_size"];
        const auto gv = small_integer(g);
        const bool ok = gv && (*gv == -1 || *gv > 0);
        if (!ok)
          f.fail(field, at + "overrides group_size with " + JsonFields::shown(g) +
                            ": expected an integer, -1 (no groups) or > 0");
        r.group_size = int(*gv);
      }
      if (v.contains("desc_act") && !v["desc_act"].is_boolean())
        f.fail(field, at + "overrides desc_act with " + JsonFields::shown(v["desc_act"]) +
                          ": expected true or false");
      // desc_act needs nothing here: every module is dequantized through its own g_idx.
      if (v.contains("sym")) {
        if (!v["sym"].is_boolean())
          f.fail(field, at + "overrides sym with " + JsonFields::shown(v["sym"]) +
                            ": expected true or false");
        if (v["sym"].get<bool>() != s.quant.sym)
          f.fail(field, at + "overrides sym with " + JsonFields::shown(v["sym"]) + " (sym is " +
                            (s.quant.sym ? "true" : "false") +
                            "): a per-module sym is not supported here (per-module settings "
                            "hold bits and group size only)");
      }
    }
    rules.push_back(std::move(r));
  }

  auto outcome = [&](const ReadRule& r) {
    if (r.exclude) return fp16_choice();
    return normalised({r.bits.value_or(global.bits), r.group_size.value_or(global.group_size),
                       false});
  };
  const auto skip = s.skipped_kinds();
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
      pcre2_match_data_create(1, nullptr), pcre2_match_data_free);
  for (int b = 0; b < num_layers; ++b)
    for (LinearKind k : kAllLinears) {
      const std::string name = linear_module(b, k);
      std::vector<const ReadRule*> hits;  // in file order
      for (const ReadRule& r : rules) {
        // re.match: anchored at the start, not at the end.
        const int rc = pcre2_match(r.re.get(), reinterpret_cast<PCRE2_SPTR>(name.data()),
                                   name.size(), 0, PCRE2_ANCHORED, md.get(), nullptr);
        if (rc >= 0)
          hits.push_back(&r);
        else if (rc != PCRE2_ERROR_NOMATCH)
          f.fail(field, "key \"" + r.key + "\": matching '" + name + "' failed: " +
                            pcre2_error_text(rc));
      }
      if (hits.empty()) continue;
      const ReadRule* vllm = hits.front();  // first in file order
      const ReadRule* gptqmodel = vllm;     // the first "-:" rule, else the first
      for (const ReadRule* r : hits)
        if (r->exclude) {
          gptqmodel = r;
          break;
        }
      if (outcome(*vllm) != outcome(*gptqmodel))
        f.fail(field, "rules \"" + vllm->key + "\" and \"" + gptqmodel->key + "\" both match '" +
                          name + "': GPTQModel applies every \"-:\" rule first and leaves it " +
                          "unquantized, vLLM applies the first in file order and loads it " +
                          outcome(*vllm).describe() + "; the loaders disagree");
      if (!order_known)
        for (const ReadRule* r : hits)
          if (outcome(*r) != outcome(*vllm))
            f.fail(field, "rules \"" + vllm->key + "\" and \"" + r->key + "\" both match '" +
                              name + "' with different settings, and the first in file order "
                              "wins, but the order of the rules was not read from the file");
      const PrecisionChoice c = outcome(*vllm);
      // A kind of modules_not_quantized stays unquantized whatever "dynamic" says (vLLM checks
      // modules_in_block_to_quantize first, and our own files exclude it by a "-:" rule).
      if (skip[int(k)] || c == global) continue;
      s.per_module[{b, k}] = c;
    }
}

}  // namespace

GptqSettings GptqSettings::from_json(const json& j, const fs::path& file, int num_layers,
                                     const std::vector<std::string>& dynamic_order) {
  const std::string where = file.filename() == "config.json" ? "quantization_config." : "";
  if (!j.is_object()) throw FormatError(file_msg(file, where + "expected a JSON object"));
  const JsonFields f(j, file, where);
  GptqSettings s;
  if (f.has("quant_method")) {
    const std::string m = f.string("quant_method");
    if (m != "gptq")
      f.fail("quant_method", "is \"" + m + "\": only GPTQ checkpoints (\"gptq\") are read here");
  }
  if (!f.has("bits")) f.fail("bits", "is missing");
  const int64_t bits = f.integer<int64_t>("bits");
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    f.fail("bits", "is " + std::to_string(bits) +
                       ": the GPTQ packing holds 2, 3, 4 or 8 bits per weight");
  s.quant.bits = static_cast<int>(bits);
  if (f.has("group_size")) {
    const int64_t gs = f.integer<int64_t>("group_size");
    if (gs != -1 && (gs <= 0 || gs > (1LL << 30)))
      f.fail("group_size", "is " + std::to_string(gs) + ": expected -1 (no groups) or > 0");
    s.quant.group_size = static_cast<int>(gs);
  }
  s.quant.sym = f.boolean_or("sym", true);
  s.desc_act = f.boolean_or("desc_act", false);
  s.static_groups = f.boolean_or("static_groups", false);
  s.true_sequential = f.boolean_or("true_sequential", true);
  s.damp_percent = f.number_or("damp_percent", 0.01);
  // GPTQModel 1.x-5.x keep the run's settings under "meta" instead.
  if (f.has("meta") && j["meta"].is_object()) {
    const JsonFields m = f.nested(j["meta"], where + "meta.");
    if (!f.has("damp_percent")) s.damp_percent = m.number_or("damp_percent", s.damp_percent);
    if (!f.has("static_groups")) s.static_groups = m.boolean_or("static_groups", s.static_groups);
    if (!f.has("true_sequential"))
      s.true_sequential = m.boolean_or("true_sequential", s.true_sequential);
  }
  // Everything this reader does not interpret is kept, and written back on re-export.
  for (const auto& [k, v] : j.items())
    if (!kInterpretedSettingsKeys.count(k)) s.extra[k] = v;
  if (f.boolean_or("is_marlin_format", false))
    f.fail("is_marlin_format", "is true: Marlin-repacked checkpoints are not read here, only "
                               "the plain GPTQ layout");
  // GPTQModel writes "format" in quantize_config.json and "checkpoint_format" in config.json
  // (5.x writes both in both); optimum reads "format" since late 2025. AutoGPTQ before
  // checkpoint_format existed wrote v1 without saying so. Two that disagree are refused: the
  // readers would dequantize differently.
  if (f.has("checkpoint_format") && f.has("format") &&
      f.string("checkpoint_format") != f.string("format"))
    f.fail("format", "is \"" + f.string("format") + "\" but checkpoint_format is \"" +
                         f.string("checkpoint_format") + "\"; loaders read one or the other");
  std::string key = f.has("checkpoint_format") ? "checkpoint_format" : f.has("format") ? "format" : "";
  s.format = ZeroFormat::v1;
  if (!key.empty()) {
    const std::string name = f.string(key);
    auto parsed = parse_checkpoint_format(name);
    if (!parsed)
      f.fail(key, "is \"" + name + "\": known are \"gptq\" (zero points stored minus 1) and "
                                   "\"gptq_v2\" (stored as is)");
    s.format = parsed;
  }
  if (f.has("pack_dtype") && f.string("pack_dtype") != "int32")
    f.fail("pack_dtype", "is " + JsonFields::shown(j["pack_dtype"]) + ": only int32 packing is read here");
  s.model_file_base_name = f.string_or("model_file_base_name", s.model_file_base_name);

  // Modules left unquantized: our own list, and/or optimum's list of the quantized ones.
  std::optional<std::array<bool, kNumLinears>> listed, from_in_block;
  if (f.has("modules_not_quantized")) {
    const json& a = j["modules_not_quantized"];
    if (!a.is_array())
      f.fail("modules_not_quantized", "must be a list of module names, got " + JsonFields::shown(a));
    listed.emplace();
    for (size_t i = 0; i < a.size(); ++i)
      (*listed)[static_cast<int>(module_kind(f, "modules_not_quantized", a[i],
                                             "entry " + std::to_string(i)))] = true;
  }
  // An empty list is read as "not stated", as vLLM reads it (it then looks at the tensors);
  // taken literally it would mean that nothing is quantized.
  if (f.has("modules_in_block_to_quantize") && !j["modules_in_block_to_quantize"].empty()) {
    const std::string field = "modules_in_block_to_quantize";
    const json& a = j[field];
    if (!a.is_array())
      f.fail(field, "must be a list of lists of module names, got " + JsonFields::shown(a));
    std::array<bool, kNumLinears> quantized{};
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string pos = "entry " + std::to_string(i);
      if (a[i].is_array()) {
        for (size_t m = 0; m < a[i].size(); ++m)
          quantized[static_cast<int>(
              module_kind(f, field, a[i][m], pos + "[" + std::to_string(m) + "]"))] = true;
      } else {
        quantized[static_cast<int>(module_kind(f, field, a[i], pos))] = true;
      }
    }
    from_in_block.emplace();
    for (int k = 0; k < kNumLinears; ++k) (*from_in_block)[k] = !quantized[k];
  }
  if (listed && from_in_block && *listed != *from_in_block) {
    // Loaders read one or the other: a file where they differ loads differently depending on
    // who reads it, so neither is trusted.
    std::string a, b;
    for (LinearKind k : kAllLinears) {
      const std::string n(linear_name(k));
      if ((*listed)[static_cast<int>(k)]) a += (a.empty() ? "" : ", ") + n;
      if ((*from_in_block)[static_cast<int>(k)]) b += (b.empty() ? "" : ", ") + n;
    }
    f.fail("modules_not_quantized",
           "lists [" + a + "] but " + where + "modules_in_block_to_quantize leaves out [" + b +
               "]; the two must name the same unquantized modules");
  }
  if (auto skip = listed ? listed : from_in_block) {
    for (LinearKind k : kAllLinears)
      if ((*skip)[static_cast<int>(k)]) s.modules_not_quantized.emplace_back(linear_name(k));
    if (s.modules_not_quantized.size() == size_t(kNumLinears))
      f.fail(listed ? "modules_not_quantized" : "modules_in_block_to_quantize",
             "leaves every linear module unquantized: this is not a quantized model");
  }
  if (f.has("dynamic")) read_dynamic(s, f, j["dynamic"], num_layers, dynamic_order);
  return s;
}

std::vector<std::pair<std::string, json>> GptqSettings::dynamic_rules() const {
  std::map<std::string, json> rules;  // sorted by key, as nlohmann::json writes them
  if (per_module.empty()) return {};
  const auto skip = skipped_kinds();
  const PrecisionChoice global = normalised({quant.bits, quant.group_size, false});
  std::set<int> blocks;
  for (const auto& [id, choice] : per_module) {
    if (id.block < 0)
      throw ConfigError("GPTQ settings: per_module names block " + std::to_string(id.block));
    if (skip[int(id.kind)] && !choice.fp16)
      throw ConfigError("GPTQ settings: per_module gives " + id.module() + " " +
                        choice.describe() + ", but modules_not_quantized lists " +
                        std::string(linear_name(id.kind)) + " (unquantized in every block)");
    blocks.insert(id.block);
  }
  for (int b : blocks)
    for (const LoaderUnit& u : loader_units()) {
      std::vector<LinearKind> kept;
      for (LinearKind k : u.members)
        if (!skip[int(k)]) kept.push_back(k);
      if (kept.empty()) continue;
      auto choice_of = [&](LinearKind k) {
        auto it = per_module.find({b, k});
        return it == per_module.end() ? global : normalised(it->second);
      };
      const PrecisionChoice c = choice_of(kept.front());
      for (LinearKind k : kept)
        if (choice_of(k) != c) {
          std::string all;
          for (LinearKind m : u.members) all += (all.empty() ? "" : " + ") + std::string(linear_name(m));
          throw ConfigError(
              "GPTQ settings: per_module gives block " + std::to_string(b) + "'s " +
              std::string(linear_name(kept.front())) + " " + c.describe() + " but its " +
              std::string(linear_name(k)) + " " + choice_of(k).describe() + ": vLLM loads " +
              all + " as one fused layer (" + u.fused + ") and refuses shards of different "
              "precision; give them one setting");
        }
      if (c == global) continue;
      const std::string key = (c.fp16 ? "-:" : "+:") + unit_pattern(b, u, kept);
      rules[key] = c.fp16 ? json::object()
                          : json{{"bits", c.bits}, {"group_size", c.group_size}};
    }
  return {rules.begin(), rules.end()};
}

QuantConfig module_quant(const std::map<LayerId, PrecisionChoice>& per_module, LayerId id,
                         const QuantConfig& base) {
  auto it = per_module.find(id);
  return it == per_module.end() || it->second.fp16 ? base : it->second.applied_to(base);
}

bool kept_in_fp16(const std::map<LayerId, PrecisionChoice>& per_module, LayerId id) {
  auto it = per_module.find(id);
  return it != per_module.end() && it->second.fp16;
}

bool GptqSettings::is_quantized(LayerId id) const {
  return !is_skipped(id.kind) && !kept_in_fp16(per_module, id);
}

QuantConfig GptqSettings::quant_of(LayerId id) const { return module_quant(per_module, id, quant); }

}  // namespace gptqw
