#include "model/model.h"

#include "common/error.h"
#include "common/output_file.h"
#include "io/gptq_checkpoint.h"
#include "io/hf_checkpoint.h"
#include "io/llama2c.h"

namespace gptqw {

namespace {

// A model folder: config.json and quantize_config.json are each read once, and what they say
// picks the reader (no file is opened to probe the format and then again to read it).
std::shared_ptr<const WeightSource> open_folder(const std::filesystem::path& dir) {
  const nlohmann::json config = *read_folder_json(dir, "config.json", true);
  const std::optional<nlohmann::json> qc = read_folder_json(dir, "quantize_config.json", false);
  if (is_gptq_config(config, qc.has_value()))
    return std::make_shared<GptqCheckpoint>(dir, config, qc);
  return std::make_shared<HfCheckpoint>(dir, config);
}

}  // namespace

std::shared_ptr<const WeightSource> open_weights(const std::filesystem::path& model) {
  std::error_code ec;
  if (!std::filesystem::exists(model, ec)) throw IoError(file_msg(model, "no such file or folder"));
  // Whatever this process writes later must not land in or over it (common/output_file.h).
  if (std::filesystem::is_directory(model, ec)) {
    protect_input(model, "the source model folder");
    return open_folder(model);
  }
  if (model.extension() == ".safetensors" || model.filename() == "config.json") {
    const std::filesystem::path dir = model.parent_path().empty() ? "." : model.parent_path();
    protect_input(dir, "the source model folder");
    return open_folder(dir);
  }
  protect_input(model, "the source model file");
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
