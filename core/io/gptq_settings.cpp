// GptqSettings to and from quantize_config.json (and config.json's "quantization_config"), as
// GPTQModel, AutoGPTQ and optimum write and read them.
#include "io/gptq_settings.h"

#include <set>

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

}  // namespace

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
  if (extra.is_object())
    for (const auto& [k, v] : extra.items())
      if (!j.contains(k)) j[k] = v;
  return j;
}

GptqSettings GptqSettings::from_json(const json& j, const fs::path& file) {
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
  return s;
}

bool GptqSettings::is_quantized(LayerId id) const {
  auto it = per_module.find(id);
  return !is_skipped(id.kind) && (it == per_module.end() || !it->second.fp16);
}

QuantConfig GptqSettings::quant_of(LayerId id) const {
  auto it = per_module.find(id);
  return it == per_module.end() || it->second.fp16 ? quant : it->second.applied_to(quant);
}

}  // namespace gptqw
