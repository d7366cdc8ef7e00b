#include "model/config.h"

#include <climits>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/input_file.h"
#include "common/json.h"
#include "common/json_fields.h"

namespace gptqw {

namespace {

// Dimensions: at least 1, and small enough that the products parameter_count() forms fit.
constexpr int kMaxDimension = 1 << 30;

// A real number that must be > 0 and finite as an fp32 (the engine computes in fp32): a
// rope_theta or rms_norm_eps of 0, below 0 or beyond fp32 only yields NaN activations.
float positive_float_or(const JsonFields& f, std::string_view field, double fallback) {
  const nlohmann::json* v = f.find(field);
  if (!v) return static_cast<float>(fallback);
  const double d = v->is_number() ? v->get<double>() : 0.0;
  if (!(d > 0) || !(d <= double(std::numeric_limits<float>::max())) ||
      static_cast<float>(d) == 0.0f)
    f.fail(field, "must be a positive number that fits in fp32, got " + JsonFields::shown(*v));
  return static_cast<float>(d);
}

// eos_token_id may be a list (Llama 3); the first entry is the one generation stops on.
int token_id_or(const JsonFields& f, std::string_view field, int fallback) {
  const nlohmann::json* v = f.find(field);
  if (!v) return fallback;
  const nlohmann::json& id = v->is_array() && !v->empty() ? v->front() : *v;
  if (!id.is_number_integer()) f.fail(field, "must be a token id, got " + JsonFields::shown(*v));
  return f.integer_value<int>(id, field);
}

}  // namespace

int64_t ModelConfig::parameter_count() const {
  // In 128 bits: parse_hf_config accepts dimensions up to 2^30, whose sums of products do not
  // fit in 64 (signed overflow is undefined). A count past INT64_MAX is reported as INT64_MAX.
  __extension__ typedef __int128 i128;  // GCC and clang on 64-bit targets
  i128 h = hidden_size, q = i128(num_heads) * head_dim, kv = i128(num_kv_heads) * head_dim;
  i128 attn = h * q + 2 * h * kv + q * h + (qkv_bias ? q + 2 * kv : 0) + (o_bias ? h : 0);
  i128 mlp = 3 * h * intermediate_size + (mlp_bias ? 2 * i128(intermediate_size) + h : 0);
  i128 per_block = attn + mlp + 2 * h + (qk_norm ? 2 * i128(head_dim) : 0);
  i128 embed = i128(vocab_size) * h;
  i128 total = embed + num_layers * per_block + h + (tie_word_embeddings ? 0 : embed);
  return total > INT64_MAX ? INT64_MAX : static_cast<int64_t>(total);
}

namespace {

// Keys read by parse_hf_config (or by the GPTQ checkpoint reader: quantization_config).
const std::set<std::string>& read_keys() {
  static const std::set<std::string> keys = {
      "model_type", "architectures", "hidden_size", "num_hidden_layers", "num_attention_heads",
      "num_key_value_heads", "intermediate_size", "vocab_size", "max_position_embeddings",
      "head_dim", "rms_norm_eps", "rope_theta", "rope_scaling", "rope_parameters",
      "tie_word_embeddings", "attention_bias", "mlp_bias", "bos_token_id", "eos_token_id",
      "torch_dtype", "dtype", "hidden_act", "sliding_window", "use_sliding_window",
      "max_window_layers", "layer_types", "use_mrope", "partial_rotary_factor",
      "quantization_config"};
  return keys;
}

// Mixture-of-experts fields: a config with any of them describes expert MLPs this program does
// not have, whatever its model_type says.
const std::vector<std::string> kMoeKeys = {"num_experts",       "num_local_experts",
                                           "num_experts_per_tok", "moe_intermediate_size",
                                           "decoder_sparse_step", "n_routed_experts"};

// The keys of one rope_scaling object each rope_type reads; "rope_type" / "type" always.
std::set<std::string> rope_keys(const std::string& type) {
  if (type == "linear") return {"factor"};
  // transformers' dynamic NTK ignores original_max_position_embeddings (it scales against
  // max_position_embeddings), so do we.
  if (type == "dynamic") return {"factor", "original_max_position_embeddings"};
  if (type == "llama3")
    return {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"};
  if (type == "yarn") return {"factor", "attention_factor", "beta_fast", "beta_slow"};
  return {};
}

// "500000", "1000000", "0.25": as a person writes them (ostream would give 1e+06).
std::string number_str(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

// rope_scaling (or rope_parameters) into c.rope_scaling. `field` names the object in errors.
void parse_rope_scaling(const JsonFields& config, const nlohmann::json& r, const std::string& field,
                        ModelConfig& c) {
  if (!r.is_object()) config.fail(field, "must be an object, got " + JsonFields::shown(r));
  const JsonFields f = config.nested(r, field + ".");
  std::string type;
  for (const char* k : {"rope_type", "type"})  // "type" is the older spelling
    if (f.has(k)) {
      type = f.string(k);
      break;
    }
  if (type.empty()) f.fail("rope_type", "is missing");
  if (type == "default") return;
  if (type != "linear" && type != "dynamic" && type != "llama3" && type != "yarn")
    f.fail("rope_type", "is \"" + type +
                            "\": supported RoPE scalings are \"linear\", \"dynamic\", "
                            "\"llama3\" and \"yarn\"");
  RopeScaling& s = c.rope_scaling;
  s.type = type;
  auto number = [&](const char* k, bool required, double fallback) {
    if (required && !f.has(k)) f.fail(k, "is missing (rope_type \"" + type + "\" needs it)");
    return f.real_or(k, fallback);
  };
  s.factor = number("factor", true, 1.0);
  if (s.factor < 1.0)
    f.fail("factor", "is " + number_str(s.factor) + ": a RoPE scaling factor is at least 1");
  if (type == "llama3") {
    s.low_freq_factor = number("low_freq_factor", true, 1.0);
    s.high_freq_factor = number("high_freq_factor", true, 4.0);
    if (!(s.high_freq_factor > s.low_freq_factor) || s.low_freq_factor <= 0)
      f.fail("high_freq_factor", "(" + number_str(s.high_freq_factor) +
                                     ") must be greater than low_freq_factor (" +
                                     number_str(s.low_freq_factor) + "), both positive");
    // transformers reads it as a number: 8192.0 is as good as 8192.
    const double o = number("original_max_position_embeddings", true, 0);
    if (o < 1 || o > kMaxDimension || o != std::floor(o))
      f.fail("original_max_position_embeddings",
             "must be a positive integer, got " +
                 JsonFields::shown(*f.find("original_max_position_embeddings")));
    s.original_max_position_embeddings = static_cast<int>(o);
  }
  if (type == "yarn") {
    // transformers' versions disagree on these: since 2025 an original_max_position_embeddings
    // replaces `factor` by max_position_embeddings / original (before, it was ignored), and
    // mscale / mscale_all_dim / truncate exist only in the newer code. A result that depends
    // on the transformers version cannot be checked, so such configs are refused.
    for (const char* k : {"original_max_position_embeddings", "mscale", "mscale_all_dim", "truncate"})
      if (f.has(k))
        f.fail(k, "is set: YaRN with " + std::string(k) +
                           " is computed differently by different transformers versions and is "
                           "not supported (YaRN with factor, attention_factor, beta_fast and "
                           "beta_slow is)");
    if (f.has("attention_factor")) {
      s.attention_factor = number("attention_factor", false, 1.0);
      if (*s.attention_factor <= 0) f.fail("attention_factor", "must be positive");
    }
    // transformers: `beta_fast or 32`, so 0 means the default too.
    s.beta_fast = number("beta_fast", false, 32.0);
    s.beta_slow = number("beta_slow", false, 1.0);
    if (s.beta_fast == 0) s.beta_fast = 32.0;
    if (s.beta_slow == 0) s.beta_slow = 1.0;
    if (s.beta_fast <= 0 || s.beta_slow <= 0)
      f.fail("beta_fast", "and beta_slow must be positive");
  }
  const std::set<std::string> known = rope_keys(type);
  for (const auto& [k, v] : r.items())
    if (k != "rope_type" && k != "type" && k != "rope_theta" && !known.count(k))
      c.unrecognized_keys.push_back(field + "." + k);
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& ignored_config_keys() {
  static const std::vector<std::pair<std::string, std::string>> keys = {
      {"attention_dropout", "dropout is used in training only"},
      {"initializer_range", "weight initialisation for training"},
      {"pretraining_tp", "transformers' slice-wise matmul gives the same product"},
      {"use_cache", "the KV cache of generation; every pass here runs whole windows"},
      {"transformers_version", "provenance"},
      {"_name_or_path", "provenance"},
      {"is_llama_config", "a marker of SmolLM2's converter; transformers does not read it"},
      {"rope_interleaved", "a nanotron export flag; transformers does not read it (the "
                           "checkpoint's q/k rows are in the rotate-half layout)"},
      {"max_length", "a generation default"},
      {"pad_token_id", "padding is never used: windows are whole"},
      {"output_router_logits", "mixture-of-experts training output"},
      {"router_aux_loss_coef", "mixture-of-experts training loss"},
      {"mlp_only_layers", "mixture-of-experts layout (refused by its other fields)"},
      {"norm_topk_prob", "mixture-of-experts routing (refused by its other fields)"},
  };
  return keys;
}

std::string describe_rope(const ModelConfig& c) {
  std::string s = "theta " + number_str(c.rope_theta);
  const RopeScaling& r = c.rope_scaling;
  if (!r.active()) return s;
  s += ", " + r.type + " scaling (factor " + number_str(r.factor);
  if (r.type == "llama3")
    s += ", low " + number_str(r.low_freq_factor) + ", high " + number_str(r.high_freq_factor) +
         ", original context " + std::to_string(r.original_max_position_embeddings);
  if (r.type == "dynamic")
    s += ", above " + std::to_string(c.max_position_embeddings) + " tokens";
  if (r.type == "yarn") {
    s += ", beta " + number_str(r.beta_fast) + "/" + number_str(r.beta_slow);
    if (r.attention_factor) s += ", attention factor " + number_str(*r.attention_factor);
  }
  return s + ")";
}

ModelConfig parse_hf_config(const nlohmann::json& j, const std::filesystem::path& file) {
  if (!j.is_object()) throw ConfigError(file_msg(file, "expected a JSON object"));
  const JsonFields f(j, file, {}, JsonFields::Throws::config);
  ModelConfig c;
  // Mixture-of-experts first: Mixtral and Qwen3-MoE are named by what makes them unsupported.
  for (const std::string& k : kMoeKeys)
    if (f.has(k) && !(j[k].is_number() && j[k].get<double>() == 0))
      f.fail(k, "is " + JsonFields::shown(j[k]) +
                    ": mixture-of-experts models (Mixtral, Qwen2-MoE, Qwen3-MoE) are not "
                    "supported; GPTQ Workbench quantizes dense Llama-family decoders");
  if (!j.contains("model_type") || !j["model_type"].is_string())
    f.fail("model_type", "is missing (expected \"llama\", \"mistral\", \"qwen2\" or \"qwen3\")");
  c.model_type = j["model_type"].get<std::string>();
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2" &&
      c.model_type != "qwen3")
    f.fail("model_type", "is \"" + c.model_type +
                             "\": supported are \"llama\", \"mistral\", \"qwen2\" and \"qwen3\"");
  const bool qwen3 = c.model_type == "qwen3", qwen2 = c.model_type == "qwen2";
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.architecture = j["architectures"][0].get<std::string>();
  auto dimension = [&](const char* k) { return f.integer<int>(k, 1, kMaxDimension); };
  auto dimension_or = [&](const char* k, int fallback) {
    return f.integer_or<int>(k, fallback, 1, kMaxDimension);
  };
  c.hidden_size = dimension("hidden_size");
  c.num_layers = dimension("num_hidden_layers");
  c.num_heads = dimension("num_attention_heads");
  c.num_kv_heads = dimension_or("num_key_value_heads", c.num_heads);
  c.intermediate_size = dimension("intermediate_size");
  c.vocab_size = dimension("vocab_size");
  c.max_position_embeddings = dimension_or("max_position_embeddings", 2048);
  // Qwen3Config's head_dim defaults to 128 whatever hidden_size / heads is; the others derive it.
  if (!qwen3 && c.hidden_size % c.num_heads != 0 && !f.has("head_dim"))
    f.fail("hidden_size", "(" + std::to_string(c.hidden_size) +
                              ") is not a multiple of num_attention_heads (" +
                              std::to_string(c.num_heads) + ")");
  c.head_dim = dimension_or("head_dim", qwen3 ? 128 : c.hidden_size / c.num_heads);
  if (c.head_dim % 2) f.fail("head_dim", "must be even for rotary embeddings");
  if (c.num_heads % c.num_kv_heads != 0)
    f.fail("num_key_value_heads", "(" + std::to_string(c.num_kv_heads) +
                                      ") must divide num_attention_heads (" +
                                      std::to_string(c.num_heads) + ")");
  c.rms_norm_eps = positive_float_or(f, "rms_norm_eps", 1e-6);
  c.rope_theta = positive_float_or(f, "rope_theta", 10000.0);
  // LlamaConfig, MistralConfig, Qwen2Config and Qwen3Config all default to an untied lm_head.
  c.tie_word_embeddings = f.boolean_or("tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases and no o bias; Llama's and Qwen3's attention_bias cover q, k,
  // v and o; Mistral's attention has no biases (MistralConfig has no such key).
  bool attention_bias = f.boolean_or("attention_bias", false);
  c.qkv_bias = qwen2 || ((c.model_type == "llama" || qwen3) && attention_bias);
  c.o_bias = (c.model_type == "llama" || qwen3) && attention_bias;
  c.mlp_bias = c.model_type == "llama" && f.boolean_or("mlp_bias", false);
  c.qk_norm = qwen3;
  c.bos_token_id = token_id_or(f, "bos_token_id", -1);
  c.eos_token_id = token_id_or(f, "eos_token_id", -1);
  for (const char* k : {"torch_dtype", "dtype"})  // "dtype" is transformers 5's name
    if (c.torch_dtype.empty() && j.contains(k) && j[k].is_string()) c.torch_dtype = j[k].get<std::string>();
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    f.fail("hidden_act", "is " + JsonFields::shown(j["hidden_act"]) + ": only \"silu\" (SwiGLU) is supported");
  if (j.contains("partial_rotary_factor") && !j["partial_rotary_factor"].is_null() &&
      !(j["partial_rotary_factor"].is_number() && j["partial_rotary_factor"].get<double>() == 1.0))
    f.fail("partial_rotary_factor", "is " + JsonFields::shown(j["partial_rotary_factor"]) +
                                        ": only RoPE over the whole head (1.0) is supported");
  if (f.boolean_or("use_mrope", false))
    f.fail("use_mrope", "is true: multimodal RoPE (Qwen2-VL) is not supported");

  // RoPE scaling: rope_scaling, or transformers 5's rope_parameters (which also holds theta).
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    parse_rope_scaling(f, j["rope_scaling"], "rope_scaling", c);
  } else if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const nlohmann::json& rp = j["rope_parameters"];
    if (rp.is_object() && !j.contains("rope_theta"))
      c.rope_theta = positive_float_or(f.nested(rp, "rope_parameters."), "rope_theta", c.rope_theta);
    parse_rope_scaling(f, rp, "rope_parameters", c);
  }

  // Sliding-window attention: Mistral applies sliding_window whenever it is set; Qwen2 and
  // Qwen3 only with use_sliding_window (their configs carry a sliding_window either way), and
  // then on the layers that layer_types (or max_window_layers) mark; every layer is treated as
  // windowed here, which is exact for any sequence up to the window.
  bool windowed = c.model_type == "mistral" || f.boolean_or("use_sliding_window", false);
  if (j.contains("layer_types") && j["layer_types"].is_array())
    for (const auto& t : j["layer_types"])
      if (t == "sliding_attention") windowed = true;
  if (windowed && c.model_type != "llama") {
    // Absent: the config class's default (Qwen: 4096, Mistral: none); null: no window.
    if (!j.contains("sliding_window")) c.sliding_window = c.model_type == "mistral" ? 0 : 4096;
    else c.sliding_window = dimension_or("sliding_window", 0);
  }

  // Every other key: known to be irrelevant to the forward pass, or reported.
  std::set<std::string> ignored;
  for (const auto& [k, why] : ignored_config_keys()) ignored.insert(k);
  for (const auto& [k, v] : j.items())
    if (!read_keys().count(k) && !ignored.count(k)) c.unrecognized_keys.push_back(k);
  c.raw = j;
  return c;
}

std::optional<nlohmann::json> read_folder_json(const std::filesystem::path& dir,
                                               const std::string& name, bool required) {
  const std::filesystem::path folder = dir.empty() ? std::filesystem::path(".") : dir;
  const std::filesystem::path file = dir / name;
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(file, ec))) {
    if (!required) return std::nullopt;
    throw IoError(file_msg(file, "cannot open (a Hugging Face model folder needs " + name + ")"));
  }
  resolve_inside(folder, name);  // a link to a file outside the folder is refused
  try {
    return read_json_file(file, kConfigInput);
  } catch (const FormatError& e) {
    throw ConfigError(e.what());
  }
}

ModelConfig parse_hf_config(const std::filesystem::path& file) {
  return parse_hf_config(*read_folder_json(file.parent_path(), file.filename().string(), true),
                         file);
}

}  // namespace gptqw
