// llama2.c tokenizer.bin: reading and checking the file, run.c-exact encoding on the shared
// heap-based merge engine, and run.c-style decoding.
#include "model/llama2c_tokenizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>

#include "common/cancel.h"
#include "common/error.h"
#include "common/input_file.h"
#include "model/unicode.h"

namespace gptqw {

namespace {

namespace fs = std::filesystem;

// run.c starts with best_score = -1e10 and only takes strictly better pairs: tokens scored at or
// below that are never produced by a merge.
constexpr float kNeverMerged = -1e10f;

}  // namespace

Llama2cTokenizer::Llama2cTokenizer(const fs::path& file, int32_t vocab_size)
    : Llama2cTokenizer(file, read_input_file(file, kTokenizerBinInput), vocab_size) {}

Llama2cTokenizer::Llama2cTokenizer(const fs::path& file, const std::string& data,
                                   int32_t vocab_size)
    : m_file(file) {
  auto fail = [&](const std::string& msg) { throw FormatError(file_msg(file, msg)); };
  const size_t size = data.size();
  if (size < 4) fail("truncated: " + std::to_string(size) + " bytes, not even the header");
  std::memcpy(&m_max_len, data.data(), 4);
  if (m_max_len <= 0 || m_max_len > (1 << 16))
    fail("not a llama2.c tokenizer: max_token_length " + std::to_string(m_max_len) +
         " is not plausible");

  size_t off = 4;
  CancelPoll poll;
  while (off < size && (vocab_size < 0 || int32_t(m_pieces.size()) < vocab_size)) {
    poll.tick();
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

  build_pairs();
}

// Every pair (a, b) whose concatenation is a token t, found by cutting each token in two:
// exactly the pairs run.c's sprintf + str_lookup would find. Each cut is looked up by a
// polynomial hash of the prefix and of the suffix, computed incrementally, so a token of L bytes
// costs O(L) plus an exact comparison only for the cuts whose hashes both match a token (every
// such cut yields a pair). Looking each prefix up as a string would cost O(L^2): seconds for one
// 64 KB token.
void Llama2cTokenizer::build_pairs() {
  // Score ranks: equal scores share a rank, so the engine's "lowest rank, then leftmost" is
  // run.c's "highest score, first found".
  std::vector<float> distinct;
  for (float s : m_scores)
    if (!std::isnan(s)) distinct.push_back(s);
  std::sort(distinct.begin(), distinct.end(), std::greater<float>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

  // Hashes modulo the Mersenne prime 2^61 - 1; the key also holds the length.
  constexpr uint64_t kMod = (uint64_t(1) << 61) - 1, kBase = 1000003;
  auto mulmod = [](uint64_t a, uint64_t b) {
    __extension__ unsigned __int128 p = (unsigned __int128)a * b;
    uint64_t r = uint64_t(p & kMod) + uint64_t(p >> 61);
    return r >= kMod ? r - kMod : r;
  };
  auto key = [](uint64_t h, size_t len) { return h * 0x9E3779B97F4A7C15ull ^ uint64_t(len); };
  std::unordered_map<uint64_t, int32_t> by_hash;  // (hash, length) -> lowest id
  by_hash.reserve(m_pieces.size());
  CancelPoll poll;
  for (size_t t = 0; t < m_pieces.size(); ++t) {
    poll.tick();
    uint64_t h = 0;
    for (unsigned char c : m_pieces[t]) h = (mulmod(h, kBase) + c + 1) % kMod;
    by_hash.emplace(key(h, m_pieces[t].size()), int32_t(t));
  }
  auto find = [&](uint64_t h, std::string_view piece) -> int32_t {
    auto it = by_hash.find(key(h, piece.size()));
    if (it == by_hash.end()) return -1;
    if (m_pieces[size_t(it->second)] == piece) return it->second;
    return lookup(piece);  // a hash collision: the exact lookup decides
  };
  std::vector<uint64_t> prefix, power;
  for (size_t t = 0; t < m_pieces.size(); ++t) {
    const std::string& s = m_pieces[t];
    if (s.size() < 2 || std::isnan(m_scores[t]) || m_scores[t] <= kNeverMerged) continue;
    if (m_ids.at(s) != int32_t(t)) continue;  // a duplicate piece: str_lookup finds the first
    check_cancelled();
    int32_t rank = int32_t(std::lower_bound(distinct.begin(), distinct.end(), m_scores[t],
                                            std::greater<float>()) -
                           distinct.begin());
    const size_t L = s.size();
    prefix.assign(L + 1, 0);
    power.assign(L + 1, 1);
    for (size_t i = 0; i < L; ++i) {
      prefix[i + 1] = (mulmod(prefix[i], kBase) + static_cast<unsigned char>(s[i]) + 1) % kMod;
      power[i + 1] = mulmod(power[i], kBase);
    }
    for (size_t k = 1; k < L; ++k) {
      // hash(s[k, L)) = prefix[L] - prefix[k] * base^(L - k)
      const uint64_t suffix = (prefix[L] + kMod - mulmod(prefix[k], power[L - k])) % kMod;
      if (by_hash.find(key(prefix[k], k)) == by_hash.end() ||
          by_hash.find(key(suffix, L - k)) == by_hash.end())
        continue;
      const int32_t a = find(prefix[k], std::string_view(s).substr(0, k));
      if (a < 0) continue;
      const int32_t b = find(suffix, std::string_view(s).substr(k));
      if (b < 0) continue;
      m_pairs.set(a, b, bpe::Merge{rank, int32_t(t)});
    }
  }
}

int32_t Llama2cTokenizer::lookup(std::string_view s) const {
  auto it = m_ids.find(s);
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
  CancelPoll poll(1 << 16);
  while (i < n) {
    poll.tick();
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
