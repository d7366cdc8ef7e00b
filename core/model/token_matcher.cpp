#include "model/token_matcher.h"

#include <algorithm>
#include <numeric>

#include "common/cancel.h"

namespace gptqw {

void TokenMatcher::add(std::string_view token, int32_t value) {
  if (token.empty()) return;
  m_patterns.push_back({std::string(token.rbegin(), token.rend()), value});
}

int32_t TokenMatcher::child(int32_t node, unsigned char c) const {
  if (node == 0) return m_root_child[c];
  for (int32_t k = m_nodes[size_t(node)].first_child; k >= 0; k = m_nodes[size_t(k)].next_sibling) {
    const unsigned char b = m_nodes[size_t(k)].byte;
    if (b == c) return k;
    if (b > c) break;  // siblings are in byte order
  }
  return -1;
}

int32_t TokenMatcher::step(int32_t state, unsigned char c) const {
  for (;;) {
    const int32_t next = child(state, c);
    if (next >= 0) return next;
    if (state == 0) return 0;
    state = m_nodes[size_t(state)].fail;
  }
}

void TokenMatcher::build() {
  CancelPoll poll;
  // Sorted reversed strings give the trie in depth-first order, children in byte order, without
  // a map per node; of equal strings the one added last wins (stable sort, last kept).
  std::vector<uint32_t> order(m_patterns.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return m_patterns[a].reversed < m_patterns[b].reversed;
  });
  std::vector<Pattern> sorted;
  sorted.reserve(order.size());
  for (uint32_t i : order) {
    poll.tick();
    if (!sorted.empty() && sorted.back().reversed == m_patterns[i].reversed)
      sorted.back().value = m_patterns[i].value;
    else
      sorted.push_back(std::move(m_patterns[i]));
  }
  m_patterns.clear();
  m_patterns.shrink_to_fit();

  m_nodes.assign(1, Node{});
  std::fill(std::begin(m_root_child), std::end(m_root_child), -1);
  m_length.resize(sorted.size());
  m_value.resize(sorted.size());
  m_max_length = 0;
  std::vector<int32_t> path = {0};         // the nodes of the previous string, root first
  std::vector<int32_t> last_child = {-1};  // the last child made under path[d]
  const std::string* prev = nullptr;
  for (size_t p = 0; p < sorted.size(); ++p) {
    poll.tick();
    const std::string& r = sorted[p].reversed;
    size_t lcp = 0;
    if (prev)
      while (lcp < r.size() && lcp < prev->size() && r[lcp] == (*prev)[lcp]) ++lcp;
    path.resize(lcp + 1);
    last_child.resize(lcp + 1);
    for (size_t d = lcp; d < r.size(); ++d) {
      const int32_t id = int32_t(m_nodes.size());
      Node n;
      n.byte = static_cast<unsigned char>(r[d]);
      m_nodes.push_back(n);
      const int32_t parent = path[d];
      if (last_child[d] >= 0)
        m_nodes[size_t(last_child[d])].next_sibling = id;
      else
        m_nodes[size_t(parent)].first_child = id;
      if (parent == 0) m_root_child[n.byte] = id;
      last_child[d] = id;
      path.push_back(id);
      last_child.push_back(-1);
    }
    m_nodes[size_t(path.back())].best = int32_t(p);
    m_length[p] = uint32_t(r.size());
    m_value[p] = sorted[p].value;
    m_max_length = std::max(m_max_length, r.size());
    prev = &r;
  }

  // Failure links breadth first, so that a node's failure target (shallower) is done before it.
  std::vector<int32_t> queue;
  queue.reserve(m_nodes.size());
  for (int32_t k = m_nodes[0].first_child; k >= 0; k = m_nodes[size_t(k)].next_sibling) {
    m_nodes[size_t(k)].fail = 0;
    queue.push_back(k);
  }
  for (size_t head = 0; head < queue.size(); ++head) {
    poll.tick();
    const int32_t u = queue[head];
    for (int32_t v = m_nodes[size_t(u)].first_child; v >= 0; v = m_nodes[size_t(v)].next_sibling) {
      const unsigned char c = m_nodes[size_t(v)].byte;
      int32_t f = m_nodes[size_t(u)].fail;
      int32_t g;
      while ((g = child(f, c)) < 0 && f != 0) f = m_nodes[size_t(f)].fail;
      Node& node = m_nodes[size_t(v)];
      node.fail = g >= 0 ? g : 0;
      if (node.best < 0) node.best = m_nodes[size_t(node.fail)].best;
      queue.push_back(v);
    }
  }
}

TokenMatcher::Scanner::Scanner(const TokenMatcher& matcher, std::string_view text)
    : m(matcher), m_text(text) {}

void TokenMatcher::Scanner::scan_chunk(size_t from) {
  const size_t n = m_text.size();
  const size_t span = std::max<size_t>(size_t(1) << 16, 2 * m.m_max_length);
  m_begin = from;
  m_end = std::min(n, from + span);
  const size_t scan_end = std::min(n, m_end + m.m_max_length - 1);
  m_best.assign(m_end - m_begin, -1);
  int32_t state = 0;
  CancelPoll poll(1 << 16);
  for (size_t j = scan_end; j-- > m_begin;) {
    poll.tick();
    state = m.step(state, static_cast<unsigned char>(m_text[j]));
    if (j < m_end) m_best[j - m_begin] = m.m_nodes[size_t(state)].best;
  }
}

bool TokenMatcher::Scanner::next(size_t pos, Match& match) {
  if (m.m_length.empty()) return false;  // nothing built (or nothing to find)
  for (size_t i = pos; i < m_text.size(); ++i) {
    if (i < m_begin || i >= m_end) scan_chunk(i);
    const int32_t p = m_best[i - m_begin];
    if (p >= 0) {
      match = {i, m.m_length[size_t(p)], m.m_value[size_t(p)]};
      return true;
    }
  }
  return false;
}

}  // namespace gptqw
