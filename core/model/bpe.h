// The BPE merge engine the Hugging Face and llama2.c tokenizers share: a flat table of merges
// keyed by (left id, right id), and the merge loop over a linked list of symbols with a heap
// ordered by merge rank.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace gptqw::bpe {

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

}  // namespace gptqw::bpe
