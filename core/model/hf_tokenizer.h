// Hugging Face tokenizer.json with a BPE model, in the two styles LLMs use:
//  - SentencePiece style (Llama-2, Mistral, stories260K): normalizer Prepend("▁")+Replace(" ","▁")
//    or a Metaspace pre-tokenizer, byte_fallback <0xNN> tokens, TemplateProcessing adding <s>;
//  - byte-level style (GPT-2, Llama 3, Qwen2/3): GPT-2 byte<->unicode alphabet, regex
//    pre-tokenization (PCRE2, made to behave like the Oniguruma engine HF uses), NFC, ignore_merges.
// Also holds the BPE merge engine (a linked list of symbols and a heap ordered by merge rank) that
// the llama2.c tokenizer shares.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/tokenizer.h"

namespace gptqw {

namespace bpe {

// What merging the pair (left, right) gives: the new token and its priority (lower merges first).
struct Merge {
  int32_t rank;
  int32_t new_id;
};

// (left id, right id) -> Merge, open addressing. Lookups sit in the innermost loop of encoding,
// where std::unordered_map's node chasing showed; a flat table keeps them to one cache line.
class MergeTable {
 public:
  void reserve(size_t n);
  // Inserts or overwrites (a pair listed twice keeps its last rank, as Hugging Face does).
  void set(int32_t left, int32_t right, Merge m);
  const Merge* find(int32_t left, int32_t right) const {
    if (m_keys.empty()) return nullptr;
    uint64_t key = pack(left, right);
    size_t i = slot(key);
    while (true) {
      uint64_t k = m_keys[i];
      if (k == key) return &m_vals[i];
      if (k == kEmpty) return nullptr;
      i = (i + 1) & m_mask;
    }
  }
  size_t size() const { return m_size; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t pack(int32_t l, int32_t r) {
    return uint64_t(uint32_t(l)) << 32 | uint32_t(r);
  }
  size_t slot(uint64_t key) const {
    return size_t((key * 0x9E3779B97F4A7C15ull) >> m_shift) & m_mask;
  }
  void grow();
  std::vector<uint64_t> m_keys;
  std::vector<Merge> m_vals;
  size_t m_mask = 0, m_size = 0;
  int m_shift = 64;
};

// Hash for maps keyed by std::string that are looked up with a string_view (no copy).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Scratch vectors reused across words so that encoding does not allocate per word.
struct Workspace {
  std::vector<int32_t> prev, next;
  std::vector<uint64_t> heap;  // rank << 32 | position: one integer compare orders both
};

// Merges ids in place until no adjacent pair is in the table: always the pair with the lowest
// rank, the leftmost one among equal ranks (Hugging Face's Word::merge_all, and llama2.c's
// "highest score, leftmost" when ranks are score ranks). O(n log n) in the number of symbols.
void merge(std::vector<int32_t>& ids, const MergeTable& table, Workspace& ws);

}  // namespace bpe

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
