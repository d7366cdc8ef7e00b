// Tokenizers: Hugging Face tokenizer.json (BPE, SentencePiece style and byte-level style) and
// llama2.c tokenizer.bin (score-based merges), behind one interface. Ids must equal what
// Hugging Face's tokenizers library produces.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gptqw {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // add_special: add what the tokenizer's post-processor adds (BOS for Llama-2 style).
  // Added/special tokens written in the text are always matched as single ids.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true) const = 0;
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special = false) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos_id() const = 0;  // -1 when the tokenizer has none
  virtual int32_t eos_id() const = 0;  // -1 when the tokenizer has none
  virtual std::string kind() const = 0;  // "hf-bpe-sentencepiece", "hf-bpe-bytelevel", "llama2c"
};

// path: a tokenizer.json, a llama2.c tokenizer .bin, or a folder holding tokenizer.json.
// Throws IoError / FormatError naming the file and the problem.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

}  // namespace gptqw
