// llama2.c tokenizer.bin: reading and checking the file, run.c-exact encoding on the shared
// heap-based merge engine, and run.c-style decoding.
#include "model/llama2c_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "common/error.h"
#include "model/unicode.h"

namespace gptqw {

namespace {

namespace fs = std::filesystem;

// run.c starts with best_score = -1e10 and only takes strictly better pairs: tokens scored at or
// below that are never produced by a merge.
constexpr float kNeverMerged = -1e10f;

}  // namespace

Llama2cTokenizer::Llama2cTokenizer(const fs::path& file, int32_t vocab_size) : m_file(file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) throw IoError(file_msg(file, "no such file"));
  if (fs::is_directory(file, ec))
    throw IoError(file_msg(file, "is a folder, expected a llama2.c tokenizer .bin"));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file_msg(file, "cannot open for reading"));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(file_msg(file, "read error"));
  auto fail = [&](const std::string& msg) { throw FormatError(file_msg(file, msg)); };
  const size_t size = data.size();
  if (size < 4) fail("truncated: " + std::to_string(size) + " bytes, not even the header");
  std::memcpy(&m_max_len, data.data(), 4);
  if (m_max_len <= 0 || m_max_len > (1 << 16))
    fail("not a llama2.c tokenizer: max_token_length " + std::to_string(m_max_len) +
         " is not plausible");

  size_t off = 4;
  while (off < size && (vocab_size < 0 || int32_t(m_pieces.size()) < vocab_size)) {
    const std::string tok = "token " + std::to_string(m_pieces.size());
    if (off + 8 > size)
      fail("truncated: " + tok + " record cut at byte " + std::to_string(off) + " (file has " +
           std::to_string(size) + " bytes)");
    float score;
    int32_t len;
    std::memcpy(&score, data.data() + off, 4);
    std::memcpy(&len, data.data() + off + 4, 4);
    off += 8;
    if (len < 0 || len > m_max_len)
      fail("not a llama2.c tokenizer: " + tok + " has length " + std::to_string(len) +
           " (max_token_length is " + std::to_string(m_max_len) + ")");
    if (off + size_t(len) > size)
      fail("truncated: " + tok + " needs " + std::to_string(len) + " bytes at offset " +
           std::to_string(off) + ", the file ends at " + std::to_string(size));
    m_pieces.emplace_back(data.data() + off, size_t(len));
    m_scores.push_back(score);
    off += size_t(len);
  }
  if (vocab_size >= 0 && int32_t(m_pieces.size()) < vocab_size)
    fail("truncated: " + std::to_string(m_pieces.size()) + " tokens, the model expects " +
         std::to_string(vocab_size));
  // run.c hard-codes <unk>, BOS, EOS at 0..2 and byte fallback at 3 + byte.
  if (m_pieces.size() < 259)
    fail("truncated or not a llama2.c tokenizer: " + std::to_string(m_pieces.size()) +
         " tokens, expected at least 259 (3 specials and 256 byte tokens)");
  for (int b = 0; b < 256; ++b)
    if (unicode::parse_byte_token(m_pieces[size_t(3 + b)]) != b)
      fail("not a llama2.c tokenizer: token " + std::to_string(3 + b) + " is '" +
           m_pieces[size_t(3 + b)] + "', expected the byte token for " + std::to_string(b));

  m_ids.reserve(m_pieces.size());
  for (size_t i = 0; i < m_pieces.size(); ++i) m_ids.emplace(m_pieces[i], int32_t(i));
  m_ascii.assign(128, -1);
  for (int c = 0; c < 128; ++c) m_ascii[size_t(c)] = lookup(std::string(1, char(c)));
  m_space_id = lookup(" ");

  // Score ranks: equal scores share a rank, so the engine's "lowest rank, then leftmost" is
  // run.c's "highest score, first found".
  std::vector<float> distinct;
  for (float s : m_scores)
    if (!std::isnan(s)) distinct.push_back(s);
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  // Every pair whose concatenation is a token, found by cutting each token in two: exactly the
  // pairs run.c's sprintf + str_lookup would find.
  for (size_t t = 0; t < m_pieces.size(); ++t) {
    const std::string& s = m_pieces[t];
    if (s.size() < 2 || std::isnan(m_scores[t]) || m_scores[t] <= kNeverMerged) continue;
    if (m_ids.at(s) != int32_t(t)) continue;  // a duplicate piece: str_lookup finds the first
    int32_t rank = int32_t(std::lower_bound(distinct.begin(), distinct.end(), m_scores[t],
                                            std::greater<float>()) -
                           distinct.begin());
    for (size_t k = 1; k < s.size(); ++k) {
      int32_t a = lookup(std::string_view(s).substr(0, k));
      if (a < 0) continue;
      int32_t b = lookup(std::string_view(s).substr(k));
      if (b < 0) continue;
      m_pairs.set(a, b, bpe::Merge{rank, int32_t(t)});
    }
  }
}

int32_t Llama2cTokenizer::lookup(std::string_view s) const {
  auto it = m_ids.find(std::string(s));
  return it == m_ids.end() ? -1 : it->second;
}

std::vector<int32_t> Llama2cTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() + 2);
  if (add_special) ids.push_back(1);
  if (!text.empty() && m_space_id >= 0) ids.push_back(m_space_id);
  const size_t n = text.size();
  auto cont = [&](size_t i) { return (static_cast<unsigned char>(text[i]) & 0xc0) == 0x80; };
  size_t i = 0;
  while (i < n) {
    // run.c's buffer: a byte plus the continuation bytes after it, at most 4 bytes.
    size_t len = 1;
    while (i + len < n && len < 4 && cont(i + len)) ++len;
    unsigned char c = static_cast<unsigned char>(text[i]);
    int32_t id = (len == 1 && c < 0x80) ? m_ascii[c] : lookup(text.substr(i, len));
    if (id >= 0) {
      ids.push_back(id);
    } else {
      for (size_t k = 0; k < len; ++k) ids.push_back(int32_t(static_cast<unsigned char>(text[i + k])) + 3);
    }
    i += len;
  }
  bpe::Workspace ws;
  bpe::merge(ids, m_pairs, ws);
  return ids;
}

std::string Llama2cTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string raw;
  int32_t prev = -1;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    if (id <= 2) {  // <unk>, BOS, EOS
      if (!skip_special) raw += id == 0 ? "<unk>" : id == 1 ? "<s>" : "</s>";
      prev = id;
      continue;
    }
    std::string_view p = m_pieces[size_t(id)];
    // SentencePiece drops the space of the dummy prefix: at the start and after BOS.
    if ((prev == -1 || prev == 1) && !p.empty() && p[0] == ' ') p.remove_prefix(1);
    int b = unicode::parse_byte_token(p);
    if (b >= 0) raw += static_cast<char>(b);
    else raw += p;
    prev = id;
  }
  return unicode::to_valid_utf8(raw);
}

}  // namespace gptqw
