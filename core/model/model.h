// A model as the user names it: a Hugging Face folder (config.json + safetensors, tokenizer in
// the folder) or a llama2.c checkpoint file (with its tokenizer.bin given or beside it).
#pragma once

#include <filesystem>
#include <memory>

#include "model/tokenizer.h"
#include "model/weights.h"

namespace gptqw {

struct Model {
  std::filesystem::path path;
  std::shared_ptr<const WeightSource> weights;
  std::shared_ptr<const Tokenizer> tokenizer;  // null when opened without one
  const ModelConfig& config() const { return weights->config(); }
};

// Opens the weights only (headers validated, data mapped, nothing converted yet).
std::shared_ptr<const WeightSource> open_weights(const std::filesystem::path& model);

// Opens weights and tokenizer. tokenizer empty: the model folder's tokenizer.json, or for a
// llama2.c file a tokenizer.bin beside it. Throws naming the file when none is found.
Model load_model(const std::filesystem::path& model, const std::filesystem::path& tokenizer = {});

}  // namespace gptqw
