// The BPE merge engine: the open-addressing merge table and the heap-based merge loop.
#include "model/bpe.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "common/cancel.h"

namespace gptqw::bpe {

void MergeTable::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;  // load factor <= 0.5 keeps probe runs short
  if (cap <= m_keys.size()) return;
  std::vector<uint64_t> old_keys = std::move(m_keys);
  std::vector<Merge> old_vals = std::move(m_vals);
  m_keys.assign(cap, kEmpty);
  m_vals.assign(cap, Merge{0, 0});
  m_mask = cap - 1;
  m_shift = 64;
  for (size_t c = cap; c > 1; c >>= 1) --m_shift;
  m_size = 0;
  for (size_t i = 0; i < old_keys.size(); ++i) {
    if (old_keys[i] == kEmpty) continue;
    set(int32_t(old_keys[i] >> 32), int32_t(uint32_t(old_keys[i])), old_vals[i]);
  }
}

void MergeTable::grow() { reserve(std::max<size_t>(16, m_size * 2 + 2)); }

void MergeTable::set(int32_t left, int32_t right, Merge m) {
  if (m_keys.empty() || (m_size + 1) * 2 > m_keys.size()) grow();
  uint64_t key = pack(left, right);
  size_t i = slot(key);
  while (m_keys[i] != kEmpty && m_keys[i] != key) i = (i + 1) & m_mask;
  if (m_keys[i] == kEmpty) ++m_size;
  m_keys[i] = key;
  m_vals[i] = m;
}

void merge(std::vector<int32_t>& ids, const MergeTable& table, Workspace& ws) {
  const size_t n = ids.size();
  if (n < 2 || table.size() == 0) return;
  // A whole text can be one word (SentencePiece style, no pre-tokenizer): tens of millions of
  // symbols, so every loop here polls for cancellation.
  CancelPoll poll(1 << 16);
  auto& prev = ws.prev;
  auto& next = ws.next;
  auto& heap = ws.heap;
  prev.resize(n);
  next.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    prev[i] = int32_t(i) - 1;
    next[i] = i + 1 < n ? int32_t(i + 1) : -1;
  }
  auto key = [](int32_t rank, int32_t pos) { return uint64_t(uint32_t(rank)) << 32 | uint32_t(pos); };
  for (size_t i = 0; i + 1 < n; ++i) {
    poll.tick();
    if (const Merge* m = table.find(ids[i], ids[i + 1])) heap.push_back(key(m->rank, int32_t(i)));
  }
  if (heap.empty()) return;
  // Min-heap on (rank, position): the lowest rank first, the leftmost among equal ranks. Built
  // bottom-up as std::make_heap does, but with the polls; the keys are distinct, so any valid
  // heap pops them in the same order.
  const std::greater<uint64_t> later;
  for (size_t i = heap.size() / 2; i-- > 0;) {
    poll.tick();
    for (size_t p = i;;) {
      size_t c = 2 * p + 1;
      if (c >= heap.size()) break;
      if (c + 1 < heap.size() && heap[c + 1] < heap[c]) ++c;
      if (heap[p] <= heap[c]) break;
      std::swap(heap[p], heap[c]);
      p = c;
    }
  }
  bool merged_any = false;
  while (!heap.empty()) {
    poll.tick();
    std::pop_heap(heap.begin(), heap.end(), later);
    const uint64_t top = heap.back();
    heap.pop_back();
    const int32_t rank = int32_t(top >> 32);
    const int32_t p = int32_t(uint32_t(top));
    if (ids[p] < 0) continue;  // absorbed by its left neighbour since this entry was queued
    const int32_t q = next[p];
    if (q < 0) continue;
    // Entries are not removed when a neighbour changes. An entry is still good when the pair
    // now at p merges with the entry's rank: every live pair is queued with its true key and
    // this key is the smallest, so that pair is the right one to merge now (HF compares the
    // new id instead, which selects the same merges).
    const Merge* cur = table.find(ids[p], ids[q]);
    if (!cur || cur->rank != rank) continue;
    merged_any = true;
    ids[p] = cur->new_id;
    ids[q] = -1;
    const int32_t r = next[q];
    next[p] = r;
    if (r >= 0) prev[r] = p;
    if (prev[p] >= 0) {
      if (const Merge* m = table.find(ids[prev[p]], ids[p])) {
        heap.push_back(key(m->rank, prev[p]));
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
    if (r >= 0) {
      if (const Merge* m = table.find(ids[p], ids[r])) {
        heap.push_back(key(m->rank, p));
        std::push_heap(heap.begin(), heap.end(), later);
      }
    }
  }
  if (merged_any) std::erase_if(ids, [](int32_t id) { return id < 0; });
}

}  // namespace gptqw::bpe
