// Finding a tokenizer's added tokens in a text: leftmost-longest, non-overlapping matches (what
// Hugging Face's aho-corasick matcher with MatchKind::LeftmostLongest gives), in time linear in
// the text and in the tokens, however long or repetitive either is.
//
// How: the longest token that starts at each position i is the longest *reversed* token that
// ends at i in the reversed text, which an Aho-Corasick automaton over the reversed tokens reads
// off in one right-to-left pass (every state knows the longest token among its suffixes). The
// text is done in chunks, each scanned from (max token length - 1) bytes past its end so that a
// token starting near the end of the chunk is seen whole; with chunks at least that long, every
// byte is scanned at most twice and only a chunk's worth of results is held.
// (Walking a trie from every position, as before, costs O(text x longest token): 20 s for one
// 100,000-character token and a 100,000-character text.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gptqw {

class TokenMatcher {
 public:
  // Adds a token; `value` is what a match reports (an index into the caller's table). Empty
  // strings are ignored; a string added twice keeps the later value.
  void add(std::string_view token, int32_t value);
  // Builds the automaton; call once after the last add() and before scanning.
  void build();
  bool empty() const { return m_patterns.empty() && m_length.empty(); }

  struct Match {
    size_t start = 0, length = 0;
    int32_t value = -1;
  };

  // Successive matches in one text (which must outlive the scanner).
  class Scanner {
   public:
    Scanner(const TokenMatcher& matcher, std::string_view text);
    // The leftmost-longest match that starts at or after `pos`; false when there is none.
    // Positions asked for must not decrease between calls.
    bool next(size_t pos, Match& match);

   private:
    void scan_chunk(size_t from);

    const TokenMatcher& m;
    std::string_view m_text;
    size_t m_begin = 0, m_end = 0;  // the chunk [m_begin, m_end) whose results are in m_best
    std::vector<int32_t> m_best;    // pattern index of the longest token starting there, or -1
  };

 private:
  struct Node {
    int32_t first_child = -1, next_sibling = -1;  // children in byte order
    int32_t fail = 0;                             // longest proper suffix that is a node
    int32_t best = -1;  // longest pattern among this node's suffixes (itself included)
    unsigned char byte = 0;
  };
  struct Pattern {
    std::string reversed;
    int32_t value;
  };
  int32_t child(int32_t node, unsigned char c) const;
  int32_t step(int32_t state, unsigned char c) const;

  std::vector<Pattern> m_patterns;  // as added; sorted and deduplicated by build()
  std::vector<uint32_t> m_length;   // pattern index -> length
  std::vector<int32_t> m_value;     // pattern index -> value
  std::vector<Node> m_nodes;        // 0 is the root
  int32_t m_root_child[256];        // the root's children, dense (most steps start there)
  size_t m_max_length = 0;
};

}  // namespace gptqw
