// Hugging Face tokenizer.json with a BPE model, in the two styles LLMs use:
//  - SentencePiece style (Llama-2, Mistral, stories260K): normalizer Prepend("▁")+Replace(" ","▁")
//    or a Metaspace pre-tokenizer, byte_fallback <0xNN> tokens, TemplateProcessing adding <s>;
//  - byte-level style (GPT-2, Llama 3, Qwen2/3): GPT-2 byte<->unicode alphabet, regex
//    pre-tokenization (PCRE2, made to behave like the Oniguruma engine HF uses), NFC, ignore_merges.
// The BPE merges run on the engine the llama2.c tokenizer shares (bpe.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"

namespace gptqw {

class HfTokenizer : public Tokenizer {
 public:
  // Reads and checks tokenizer.json (and tokenizer_config.json beside it, for BOS/EOS names),
  // each read once as common/input_file.h says (regular files, kTokenizerJsonInput and
  // kConfigInput limits). Ids must be below the number of entries the file defines (vocabulary
  // plus added tokens). Throws IoError / FormatError naming the file. Loading and encoding poll
  // for cancellation (common/cancel.h).
  explicit HfTokenizer(const std::filesystem::path& file);
  // From the file's text, read already; `file` names it in messages and locates
  // tokenizer_config.json.
  HfTokenizer(const std::filesystem::path& file, const std::string& text);
  ~HfTokenizer() override;

  // Thread-safe: all per-call state lives on the stack of encode().
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override;
  int32_t vocab_size() const override;
  int32_t bos_id() const override;
  int32_t eos_id() const override;
  std::string kind() const override;

  // The vocabulary string of an id ("" when unknown), and the id of a string (-1 when unknown;
  // added tokens included).
  std::string id_to_token(int32_t id) const;
  int32_t token_to_id(std::string_view token) const;
  const std::filesystem::path& file() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> m;
};

}  // namespace gptqw
