// The architecture of a Llama-family decoder (llama, mistral, qwen2, qwen3), read from a Hugging
// Face config.json or a llama2.c header: dimensions, RoPE and its scaling, biases, the Qwen3
// q/k norm, and which keys of the file were not understood.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gptqw {

// RoPE frequency scaling: config.json's "rope_scaling" (or transformers 5's "rope_parameters"),
// computed as transformers' modeling_rope_utils computes it (see model/rope_scaling.h).
struct RopeScaling {
  // "default" (none), "linear", "dynamic" (NTK, depends on the sequence length run), "llama3",
  // "yarn". Every other rope_type is refused when the config is read.
  std::string type = "default";
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int original_max_position_embeddings = 0;             // llama3
  // yarn: the attention factor (cos and sin are scaled by it), defaulting to 0.1 ln(factor) + 1,
  // and the ramp's rotation bounds (defaults 32 and 1).
  std::optional<double> attention_factor;
  double beta_fast = 32.0, beta_slow = 1.0;
  bool active() const { return type != "default"; }
};

struct ModelConfig {
  std::string model_type;    // "llama", "mistral", "qwen2", "qwen3"
  std::string architecture;  // "LlamaForCausalLM", ...
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // < num_heads: grouped-query attention
  int head_dim = 0;      // hidden_size / num_heads unless the config says otherwise (Qwen3: 128)
  int intermediate_size = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 (always); Llama and Qwen3 with attention_bias
  bool o_bias = false;    // Llama and Qwen3 with attention_bias
  bool mlp_bias = false;  // Llama's mlp_bias
  // Qwen3: RMSNorm over head_dim of every query and key head (self_attn.q_norm / k_norm, one
  // [head_dim] weight each), applied after the projection and before RoPE.
  bool qk_norm = false;
  // Attention restricted to the last sliding_window tokens (Mistral with sliding_window set,
  // Qwen2/Qwen3 with use_sliding_window); 0: full causal attention. Sequences up to this length
  // attend exactly as with full attention; longer ones are refused (block_forward).
  int sliding_window = 0;
  int bos_token_id = -1;
  int eos_token_id = -1;
  std::string torch_dtype;  // as declared; the tensors' own dtypes are what is read
  nlohmann::json raw;       // the file as read, carried into exported checkpoints
  // Top-level keys (and rope_scaling keys, as "rope_scaling.KEY") that this program neither
  // reads nor knows to be irrelevant to the forward pass: shown as warnings, so that a key
  // that changes the model is never dropped without a word.
  std::vector<std::string> unrecognized_keys;

  int64_t parameter_count() const;
};

// One line describing the RoPE variant: "theta 500000, llama3 scaling (factor 32, low 1, high 4,
// original context 8192)", "theta 10000" without scaling.
std::string describe_rope(const ModelConfig& c);

// The keys of config.json this program knowingly does not read, each with the reason (training
// only, generation only, provenance, ...). Everything else it does not read is reported in
// ModelConfig::unrecognized_keys.
const std::vector<std::pair<std::string, std::string>>& ignored_config_keys();

// Throws ConfigError naming the file and the field that is missing, of the wrong type,
// meaningless (a rope_theta or rms_norm_eps that is not a positive fp32 number) or unsupported
// (model_type other than llama / mistral / qwen2 / qwen3, mixture-of-experts fields, a rope_type
// other than linear / dynamic / llama3 / yarn, ...).
ModelConfig parse_hf_config(const std::filesystem::path& config_json);
ModelConfig parse_hf_config(const nlohmann::json& j, const std::filesystem::path& source);

// The JSON file `name` (config.json, quantize_config.json) of the model folder `dir`, read once
// (common/input_file.h: a regular file, at most kConfigInput.max_bytes) from inside the folder
// (a link leading out of it is refused). nullopt when the file does not exist and !required;
// IoError when it is required. Bad JSON is a ConfigError naming the file.
std::optional<nlohmann::json> read_folder_json(const std::filesystem::path& dir,
                                               const std::string& name, bool required);

}  // namespace gptqw
