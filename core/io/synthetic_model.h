// Synthetic Llama-family models with real shapes, written as a Hugging Face folder: config.json,
// sharded bf16/f16/f32 safetensors with an index, and a tokenizer copied from a real model.
// The shapes come from a preset (LLaMA-7B's 32 blocks of 4096 / 11008, or a tiny one) or from
// any real config.json (Llama 3.x, Qwen2.5, Qwen3, Mistral, ...), which is written out as it is
// apart from the block count and dtype, so every key of the real file reaches the loader.
// Weights are N(0, 0.02) from a seeded counter-based generator, so a seed gives the same bytes on
// every machine and each tensor is generated on its own: the model is never held in memory
// whole. Norm weights are 1 for the presets and 1 + N(0, 0.1) for real configs (so that a norm
// weight applied to the wrong element changes the result); biases, Qwen3's q/k norms and an
// untied lm_head are written when the config has them. For speed and scale work and for tests
// that need a deep model or a real architecture.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace gptqw {

struct SyntheticModelOptions {
  std::string preset = "llama-7b";  // "llama-7b" (4096 / 11008, 32 blocks) or "tiny" (256 / 688)
  std::filesystem::path config_file;  // a real config.json: used instead of the preset
  int layers = -1;                  // > 0 overrides the preset's (or config's) block count
  std::string dtype = "bf16";       // "bf16", "f16" or "f32"
  uint64_t seed = 0;
  // Folder whose tokenizer files are copied. Empty with a config: the family's real tokenizer
  // from the data folder (family_tokenizer_dir); empty with a preset: none.
  std::filesystem::path tokenizer_from;
  double shard_bytes = 2e9;
};

// The data folder's tokenizer for a config's family: tokenizers/qwen3 for Qwen2/Qwen2.5/Qwen3
// (the same BPE), tokenizers/llama3 for Llama 3.x (vocabulary 128,256), and otherwise the sample
// model's 512-token Llama-2-style tokenizer (models/stories260K), whose ids are valid in any
// vocabulary: the data has no Mistral, SmolLM2 or Llama-2 tokenizer.
std::filesystem::path family_tokenizer_dir(const nlohmann::json& config);

// Writes the model into out (created if needed). Throws ConfigError for an unknown preset or
// dtype or a config the loader refuses, IoError when writing fails. Returns the parameter count.
int64_t write_synthetic_model(const std::filesystem::path& out,
                              const SyntheticModelOptions& options);

}  // namespace gptqw
