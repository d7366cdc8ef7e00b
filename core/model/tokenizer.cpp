// load_tokenizer(): picks the tokenizer implementation for a path (tokenizer.json, llama2.c
// tokenizer .bin, or a folder holding tokenizer.json).
#include "model/tokenizer.h"

#include <fstream>

#include "common/error.h"
#include "model/hf_tokenizer.h"
#include "model/llama2c_tokenizer.h"

namespace gptqw {

namespace fs = std::filesystem;

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw IoError(file_msg(path, "no such file or folder"));
  if (fs::is_directory(st)) {
    fs::path json = path / "tokenizer.json";
    if (!fs::exists(json, ec)) {
      std::string hint;
      if (fs::exists(path / "tokenizer.model", ec))
        hint = " (tokenizer.model, SentencePiece protobuf, is not supported: convert it to "
               "tokenizer.json)";
      throw IoError(file_msg(path, "folder has no tokenizer.json" + hint));
    }
    return std::make_unique<HfTokenizer>(json);
  }
  if (!fs::is_regular_file(st)) throw IoError(file_msg(path, "not a regular file"));
  std::string ext = path.extension().string();
  if (ext == ".json") return std::make_unique<HfTokenizer>(path);
  if (ext == ".bin") return std::make_unique<Llama2cTokenizer>(path);
  // Any other name: JSON starts with '{' (after white space), a llama2.c file with an int32.
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(file_msg(path, "cannot open for reading"));
  char c = 0;
  while (in.get(c) && (c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
  }
  if (in && c == '{') return std::make_unique<HfTokenizer>(path);
  return std::make_unique<Llama2cTokenizer>(path);
}

}  // namespace gptqw
