// Synthetic Llama-family models with real shapes (for example LLaMA-7B's 32 blocks of 4096 /
// 11008), written as a Hugging Face folder: config.json, sharded bf16/f16/f32 safetensors with
// an index, and a tokenizer copied from a real model. Weights are N(0, 0.02) from a seeded
// counter-based generator, so a seed gives the same bytes on every machine and each tensor is
// generated on its own: the model is never held in memory whole. For speed and scale work and
// for tests that need a deep model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace gptqw {

struct SyntheticModelOptions {
  std::string preset = "llama-7b";  // "llama-7b" (4096 / 11008, 32 blocks) or "tiny" (256 / 688)
  int layers = -1;                  // > 0 overrides the preset's block count
  std::string dtype = "bf16";       // "bf16", "f16" or "f32"
  uint64_t seed = 0;
  std::filesystem::path tokenizer_from;  // folder whose tokenizer files are copied, or empty
  double shard_bytes = 2e9;
};

// Writes the model into out (created if needed). Throws ConfigError for an unknown preset or
// dtype, IoError when writing fails. Returns the parameter count.
int64_t write_synthetic_model(const std::filesystem::path& out,
                              const SyntheticModelOptions& options);

}  // namespace gptqw
