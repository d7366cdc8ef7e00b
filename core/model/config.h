// The architecture of a Llama-family decoder (llama, mistral, qwen2), read from a Hugging Face
// config.json or a llama2.c header.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace gptqw {

struct ModelConfig {
  std::string model_type;    // "llama", "mistral", "qwen2"
  std::string architecture;  // "LlamaForCausalLM", ...
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // < num_heads: grouped-query attention
  int head_dim = 0;      // hidden_size / num_heads unless the config says otherwise
  int intermediate_size = 0;
  int vocab_size = 0;
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.f;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2 (always) and Llama with attention_bias
  bool o_bias = false;    // Llama with attention_bias
  bool mlp_bias = false;
  int bos_token_id = -1;
  int eos_token_id = -1;
  std::string torch_dtype;  // as declared; the tensors' own dtypes are what is read
  nlohmann::json raw;       // the file as read, carried into exported checkpoints

  int64_t parameter_count() const;
};

// Throws ConfigError naming the file and the field that is missing, of the wrong type,
// meaningless (a rope_theta or rms_norm_eps that is not a positive fp32 number) or unsupported
// (model_type other than llama / mistral / qwen2, rope_scaling, ...).
ModelConfig parse_hf_config(const std::filesystem::path& config_json);
ModelConfig parse_hf_config(const nlohmann::json& j, const std::filesystem::path& source);

// The JSON file `name` (config.json, quantize_config.json) of the model folder `dir`, read once
// (common/input_file.h: a regular file, at most kConfigInput.max_bytes) from inside the folder
// (a link leading out of it is refused). nullopt when the file does not exist and !required;
// IoError when it is required. Bad JSON is a ConfigError naming the file.
std::optional<nlohmann::json> read_folder_json(const std::filesystem::path& dir,
                                               const std::string& name, bool required);

}  // namespace gptqw
