// llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length and
// the bytes. Encodes exactly like llama2.c run.c encode() (dummy " " prefix, code-point lookup,
// byte fallback id = byte + 3, repeatedly merge the adjacent pair whose concatenation is a token
// with the highest score, leftmost on ties), but with the heap-based merge engine instead of
// run.c's quadratic rescans.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/bpe.h"
#include "model/tokenizer.h"

namespace gptqw {

class Llama2cTokenizer : public Tokenizer {
 public:
  // vocab_size: the number of tokens to read (the model header's vocab_size); -1 reads records
  // until the end of the file. Throws IoError / FormatError naming the file (missing file,
  // truncated record, impossible lengths, byte tokens not at ids 3..258).
  // The file is read once, as common/input_file.h says (a regular file of at most
  // kTokenizerBinInput.max_bytes).
  explicit Llama2cTokenizer(const std::filesystem::path& file, int32_t vocab_size = -1);
  // From the file's bytes, read already (load_tokenizer reads a file of unknown kind once and
  // looks at its first byte); `file` names it in messages.
  Llama2cTokenizer(const std::filesystem::path& file, const std::string& data,
                   int32_t vocab_size = -1);

  // add_special: BOS (id 1) first, as run.c's encode(bos=1, eos=0). EOS is never appended.
  // Unlike run.c, a NUL byte does not end the text (it is byte-fallback id 3).
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const override;
  // run.c's decode(): "<0xNN>" pieces become bytes, the leading space of the first piece (and of
  // a piece after BOS) is dropped; BOS/EOS print as "<s>"/"</s>" unless skip_special.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override;
  int32_t vocab_size() const override { return int32_t(m_pieces.size()); }
  int32_t bos_id() const override { return 1; }
  int32_t eos_id() const override { return 2; }
  std::string kind() const override { return "llama2c"; }

  const std::string& piece(int32_t id) const { return m_pieces.at(size_t(id)); }
  float score(int32_t id) const { return m_scores.at(size_t(id)); }
  int32_t max_token_length() const { return m_max_len; }

 private:
  int32_t lookup(std::string_view s) const;
  void build_pairs();

  std::filesystem::path m_file;
  int32_t m_max_len = 0;
  std::vector<std::string> m_pieces;
  std::vector<float> m_scores;
  std::unordered_map<std::string, int32_t, bpe::StringHash, std::equal_to<>>
      m_ids;  // piece -> lowest id with that piece
  std::vector<int32_t> m_ascii;                    // one-byte pieces, -1 where none
  bpe::MergeTable m_pairs;  // (a, b) -> (score rank of a+b, id of a+b)
  int32_t m_space_id = -1;  // the dummy prefix " "
};

}  // namespace gptqw
