// load_tokenizer(): picks the tokenizer implementation for a path (tokenizer.json, llama2.c
// tokenizer .bin, or a folder holding tokenizer.json).
#include "model/tokenizer.h"

#include "common/error.h"
#include "common/input_file.h"
#include "common/output_file.h"
#include "model/hf_tokenizer.h"
#include "model/llama2c_tokenizer.h"

namespace gptqw {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw IoError(file_msg(path, "no such file or folder"));
  // Whatever this process writes later must not land in or over it (common/output_file.h).
  protect_input(path, "the tokenizer");
  if (fs::is_directory(st)) {
    fs::path json = path / "tokenizer.json";
    if (!fs::exists(fs::symlink_status(json, ec))) {
      std::string hint;
      if (fs::exists(path / "tokenizer.model", ec))
        hint = " (tokenizer.model, SentencePiece protobuf, is not supported: convert it to "
               "tokenizer.json)";
      throw IoError(file_msg(path, "folder has no tokenizer.json" + hint));
    }
    resolve_inside(path, "tokenizer.json");  // a model folder's file stays inside it
    return std::make_unique<HfTokenizer>(json);
  }
  std::string ext = path.extension().string();
  if (ext == ".json") return std::make_unique<HfTokenizer>(path);
  if (ext == ".bin") return std::make_unique<Llama2cTokenizer>(path);
  // Any other name: read once (within the larger of the two limits), then JSON starts with '{'
  // (after white space), a llama2.c file with an int32.
  const std::string bytes = read_input_file(path, kTokenizerJsonInput);
  size_t i = 0;
  while (i < bytes.size() && (bytes[i] == ' ' || bytes[i] == '\t' || bytes[i] == '\n' ||
                              bytes[i] == '\r'))
    ++i;
  if (i < bytes.size() && bytes[i] == '{') return std::make_unique<HfTokenizer>(path, bytes);
  if (bytes.size() > kTokenizerBinInput.max_bytes)
    throw FormatError(file_msg(path, "is not JSON, and too large for a llama2.c tokenizer"));
  return std::make_unique<Llama2cTokenizer>(path, bytes);
}

}  // namespace gptqw
