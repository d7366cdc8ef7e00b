#include "model/model.h"

#include "common/error.h"
#include "io/gptq_checkpoint.h"
#include "io/hf_checkpoint.h"
#include "io/llama2c.h"

namespace gptqw {

std::shared_ptr<const WeightSource> open_weights(const std::filesystem::path& model) {
  std::error_code ec;
  if (!std::filesystem::exists(model, ec)) throw IoError(file_msg(model, "no such file or folder"));
  if (std::filesystem::is_directory(model, ec)) {
    if (is_gptq_checkpoint(model)) return std::make_shared<GptqCheckpoint>(model);
    return std::make_shared<HfCheckpoint>(model);
  }
  if (model.extension() == ".safetensors" || model.filename() == "config.json")
    return std::make_shared<HfCheckpoint>(model.parent_path());
  return std::make_shared<Llama2cCheckpoint>(model);
}

Model load_model(const std::filesystem::path& model, const std::filesystem::path& tokenizer) {
  Model m;
  m.path = model;
  m.weights = open_weights(model);
  std::filesystem::path tok = tokenizer;
  if (tok.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(model, ec)) {
      tok = model;
    } else if (std::filesystem::exists(model.parent_path() / "tokenizer.bin", ec)) {
      tok = model.parent_path() / "tokenizer.bin";
    } else if (std::filesystem::exists(model.parent_path() / "tokenizer.json", ec)) {
      tok = model.parent_path() / "tokenizer.json";
    } else {
      throw IoError(file_msg(model, "no tokenizer found beside the model: pass --tokenizer "
                                    "(tokenizer.json or a llama2.c tokenizer.bin)"));
    }
  }
  m.tokenizer = load_tokenizer(tok);
  if (m.tokenizer->vocab_size() > m.config().vocab_size)
    throw FormatError(file_msg(tok, "tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                                        " tokens, more than the model's vocabulary of " +
                                        std::to_string(m.config().vocab_size)));
  return m;
}

}  // namespace gptqw
