#include "model/config.h"

#include <climits>
#include <limits>

#include "common/error.h"
#include "common/input_file.h"
#include "common/json.h"

namespace gptqw {

namespace {

// Field access that names the file and the field in every error.
struct Fields {
  const nlohmann::json& j;
  const std::filesystem::path& file;

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw ConfigError(file_msg(file, "field '" + field + "' " + what));
  }
  int get_int(const std::string& field) const {
    if (!j.contains(field)) fail(field, "is missing");
    const auto& v = j[field];
    if (!v.is_number_integer()) fail(field, "must be an integer, got " + v.dump());
    long long x = v.get<long long>();
    if (x <= 0 || x > (1LL << 30)) fail(field, "must be a positive integer, got " + v.dump());
    return static_cast<int>(x);
  }
  int get_int_or(const std::string& field, int fallback) const {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    return get_int(field);
  }
  double get_number_or(const std::string& field, double fallback) const {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    if (!j[field].is_number()) fail(field, "must be a number, got " + j[field].dump());
    return j[field].get<double>();
  }
  // A real number that must be > 0 and finite as an fp32 (the engine computes in fp32): a
  // rope_theta or rms_norm_eps of 0, below 0 or beyond fp32 only yields NaN activations.
  float get_positive_float_or(const std::string& field, double fallback) const {
    const double v = get_number_or(field, fallback);
    if (!(v > 0) || !(v <= double(std::numeric_limits<float>::max())) ||
        static_cast<float>(v) == 0.0f)
      fail(field, "must be a positive number that fits in fp32, got " + j[field].dump());
    return static_cast<float>(v);
  }
  bool get_bool_or(const std::string& field, bool fallback) const {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    if (!j[field].is_boolean()) fail(field, "must be true or false, got " + j[field].dump());
    return j[field].get<bool>();
  }
  // eos_token_id may be a list (Llama 3); the first entry is the one generation stops on.
  int get_token_id_or(const std::string& field, int fallback) const {
    if (!j.contains(field) || j[field].is_null()) return fallback;
    const auto& v = j[field];
    if (v.is_array() && !v.empty() && v[0].is_number_integer()) return v[0].get<int>();
    if (v.is_number_integer()) return v.get<int>();
    fail(field, "must be a token id, got " + v.dump());
  }
};

}  // namespace

int64_t ModelConfig::parameter_count() const {
  // In 128 bits: parse_hf_config accepts dimensions up to 2^30, whose sums of products do not
  // fit in 64 (signed overflow is undefined). A count past INT64_MAX is reported as INT64_MAX.
  __extension__ typedef __int128 i128;  // GCC and clang on 64-bit targets
  i128 h = hidden_size, q = i128(num_heads) * head_dim, kv = i128(num_kv_heads) * head_dim;
  i128 attn = h * q + 2 * h * kv + q * h + (qkv_bias ? q + 2 * kv : 0) + (o_bias ? h : 0);
  i128 mlp = 3 * h * intermediate_size + (mlp_bias ? 2 * i128(intermediate_size) + h : 0);
  i128 per_block = attn + mlp + 2 * h;
  i128 embed = i128(vocab_size) * h;
  i128 total = embed + num_layers * per_block + h + (tie_word_embeddings ? 0 : embed);
  return total > INT64_MAX ? INT64_MAX : static_cast<int64_t>(total);
}

ModelConfig parse_hf_config(const nlohmann::json& j, const std::filesystem::path& file) {
  if (!j.is_object()) throw ConfigError(file_msg(file, "expected a JSON object"));
  Fields f{j, file};
  ModelConfig c;
  if (!j.contains("model_type") || !j["model_type"].is_string())
    f.fail("model_type", "is missing (expected \"llama\", \"mistral\" or \"qwen2\")");
  c.model_type = j["model_type"].get<std::string>();
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2")
    f.fail("model_type", "is \"" + c.model_type +
                             "\": supported are \"llama\", \"mistral\" and \"qwen2\"");
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string())
    c.architecture = j["architectures"][0].get<std::string>();
  c.hidden_size = f.get_int("hidden_size");
  c.num_layers = f.get_int("num_hidden_layers");
  c.num_heads = f.get_int("num_attention_heads");
  c.num_kv_heads = f.get_int_or("num_key_value_heads", c.num_heads);
  c.intermediate_size = f.get_int("intermediate_size");
  c.vocab_size = f.get_int("vocab_size");
  c.max_position_embeddings = f.get_int_or("max_position_embeddings", 2048);
  if (c.hidden_size % c.num_heads != 0 && !j.contains("head_dim"))
    f.fail("hidden_size", "(" + std::to_string(c.hidden_size) +
                              ") is not a multiple of num_attention_heads (" +
                              std::to_string(c.num_heads) + ")");
  c.head_dim = f.get_int_or("head_dim", c.hidden_size / c.num_heads);
  if (c.head_dim % 2) f.fail("head_dim", "must be even for rotary embeddings");
  if (c.num_heads % c.num_kv_heads != 0)
    f.fail("num_key_value_heads", "(" + std::to_string(c.num_kv_heads) +
                                      ") must divide num_attention_heads (" +
                                      std::to_string(c.num_heads) + ")");
  c.rms_norm_eps = f.get_positive_float_or("rms_norm_eps", 1e-6);
  c.rope_theta = f.get_positive_float_or("rope_theta", 10000.0);
  // LlamaConfig, MistralConfig and Qwen2Config all default to an untied lm_head.
  c.tie_word_embeddings = f.get_bool_or("tie_word_embeddings", false);
  // Qwen2 always has q/k/v biases and no o bias; Llama's attention_bias covers q, k, v and o.
  bool attention_bias = f.get_bool_or("attention_bias", false);
  c.qkv_bias = c.model_type == "qwen2" || attention_bias;
  c.o_bias = c.model_type != "qwen2" && attention_bias;
  c.mlp_bias = f.get_bool_or("mlp_bias", false);
  c.bos_token_id = f.get_token_id_or("bos_token_id", -1);
  c.eos_token_id = f.get_token_id_or("eos_token_id", -1);
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string())
    c.torch_dtype = j["torch_dtype"].get<std::string>();
  if (j.contains("hidden_act") && j["hidden_act"] != "silu")
    f.fail("hidden_act", "is " + j["hidden_act"].dump() + ": only \"silu\" (SwiGLU) is supported");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null())
    f.fail("rope_scaling", "is set: scaled RoPE variants are not supported yet");
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
