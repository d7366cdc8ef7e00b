// Hugging Face tokenizer.json (BPE model): loading, the encode pipeline (added tokens ->
// normalizer -> pre-tokenizer -> BPE -> post-processor) and the decoder chain. The steps follow
// the tokenizers library (Rust) closely enough to give its ids. The merges run on the shared
// engine (bpe.h); the regexes and GPT-2's byte alphabet are in pretokenizer.h.
#include "model/hf_tokenizer.h"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "common/cancel.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json.h"
#include "common/text_file.h"
#include "model/bpe.h"
#include "model/pretokenizer.h"
#include "model/token_matcher.h"
#include "model/unicode.h"

namespace gptqw {

using pretok::byte_alphabet;
using pretok::kGpt2Pattern;
using pretok::Matcher;
using pretok::Regex;
using pretok::thread_matcher;

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Token ids index dense tables, so an id is bounded by what a real vocabulary needs (the
// largest are about 256K): a 40-byte file naming id 2^30 would otherwise ask for gigabytes.
constexpr int64_t kMaxVocab = int64_t(1) << 24;

// ---------------------------------------------------------------------------------------------
// Pipeline pieces
// ---------------------------------------------------------------------------------------------

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// A span of the text being encoded: plain text to tokenize (token < 0) or an added token.
struct Segment {
  size_t start, end;
  int32_t token;  // index into added tokens, -1 for text
};

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

struct NormStep {
  enum Kind { prepend, replace, form, lowercase, strip } kind;
  explicit NormStep(Kind k, std::string a_ = {}, std::string b_ = {})
      : kind(k), a(std::move(a_)), b(std::move(b_)) {}
  std::string a, b;                 // prepend: a; replace: a -> b (literal)
  std::unique_ptr<Regex> re;        // replace with a regex pattern
  unicode::NormForm nf = unicode::NormForm::nfc;
  bool left = false, right = false; // strip
};

struct PreStep {
  enum Kind { split, byte_level, metaspace, digits } kind;
  explicit PreStep(Kind k) : kind(k) {}
  std::unique_ptr<Regex> re;  // split (regex pattern), byte_level with use_regex, digits
  std::string literal;        // split with a String pattern
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
  bool add_prefix_space = false;  // byte_level
  std::string replacement;        // metaspace
  enum class Prepend { always, first, never } prepend = Prepend::always;
  bool split_on_replacement = true;  // metaspace
};

struct DecStep {
  enum Kind { byte_level, replace, byte_fallback, fuse, strip, metaspace } kind;
  explicit DecStep(Kind k) : kind(k) {}
  std::string a, b;          // replace a -> b
  uint32_t strip_cp = ' ';   // strip
  size_t start = 0, stop = 0;
  std::string replacement;   // metaspace
  bool prepend = true;       // metaspace: drop the replacement chars of the first token
};

// A piece of text flowing through the pre-tokenizer; at_start: it begins at offset 0 of the
// original input (Metaspace's prepend_scheme "first" depends on it).
struct Piece {
  std::string_view text;
  bool at_start;
};

// Heterogeneous-lookup hash so string_view keys find std::string entries without a copy.
using SvHash = bpe::StringHash;  // heterogeneous lookup by string_view
using StrMap = std::unordered_map<std::string, int32_t, SvHash, std::equal_to<>>;

// Per-call cache of word -> ids for pre-tokenized words (most words of a text repeat).
struct WordCache {
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>, SvHash, std::equal_to<>> map;
  std::vector<int32_t> ids;
};

// Everything one encode() call needs besides the (const) tokenizer.
struct Scratch {
  Matcher& matcher = thread_matcher();
  bpe::Workspace ws;
  std::vector<int32_t> syms;
  WordCache cache;
  std::deque<std::string> arena;  // text made by pre-tokenizer steps (prefix spaces, ▁)
  std::vector<Piece> pieces, next_pieces;
  CancelPoll poll;  // a check every few thousand pieces (common/cancel.h)
};

std::string json_type(const json& j) { return j.is_object() ? j.value("type", "") : ""; }

std::string hex_byte_token(unsigned b) {
  static const char* digits = "0123456789ABCDEF";
  std::string s = "<0x00>";
  s[3] = digits[b >> 4];
  s[4] = digits[b & 15];
  return s;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Letters, digits and '_': what "single_word" added tokens must not touch.
bool is_word_char(uint32_t cp) {
  if (cp == '_') return true;
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
         (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

uint32_t last_cp(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xc0) == 0x80) --i;
  if (i > 0) --i;
  return unicode::next_cp(s, i);
}

uint32_t first_cp(std::string_view s) {
  size_t i = 0;
  return unicode::next_cp(s, i);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// HfTokenizer
// ---------------------------------------------------------------------------------------------

struct HfTokenizer::Impl {
  fs::path file;

  // BPE model.
  StrMap vocab;                          // model vocabulary, keys as written in the file
  std::vector<std::string> id_to_token;  // model and added tokens
  std::vector<int8_t> id_kind;           // -1 unused id, 0 model, 1 added, 2 added special
  bpe::MergeTable merges;
  int32_t unk_id = -1;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  std::array<int32_t, 256> fallback_ids{};  // <0xNN> tokens
  // SentencePiece style: symbol ids of single code points.
  std::array<int32_t, 128> ascii_ids{};
  std::unordered_map<uint32_t, int32_t> cp_ids;
  // Byte-level style: the model sees raw bytes; vocabulary strings are translated back from the
  // GPT-2 alphabet once here instead of mapping every byte of the text at encode time.
  bool byte_level = false;
  std::array<int32_t, 256> byte_ids{};
  StrMap byte_vocab;  // raw-byte keys, for ignore_merges whole-word lookups

  // Pipeline.
  std::vector<AddedToken> added;
  TokenMatcher raw_added, norm_added;  // added tokens matched before / after normalization
  std::vector<NormStep> norm;
  std::vector<PreStep> pre;
  bool has_decoder = false;
  std::vector<DecStep> dec;
  bool has_template = false;
  std::vector<std::pair<bool, std::vector<int32_t>>> single_template;  // (is the sequence, ids)

  int32_t n_vocab = 0, bos = -1, eos = -1;
  std::string kind;

  [[noreturn]] void fail(const std::string& msg) const { throw FormatError(file_msg(file, msg)); }

  // --- loading ---
  void load(const fs::path& f, const std::string& text);
  void parse(const json& j);
  void parse_model(const json& mj);
  void parse_added(const json& arr);
  void parse_normalizer(const json& n);
  void parse_pre_tokenizer(const json& p);
  void parse_decoder(const json& d);
  void parse_post_processor(const json& p);
  void find_bos_eos();
  int32_t lookup_any(std::string_view token) const;

  // --- encoding ---
  std::string run_normalizer(std::string_view s, Matcher& matcher) const;
  void split_added(std::string_view s, const TokenMatcher& matcher, std::vector<Segment>& out) const;
  void encode_normalized(std::string_view s, bool at_start, Scratch& sc,
                         std::vector<int32_t>& ids) const;
  void split_piece(const PreStep& step, const Piece& piece, Scratch& sc,
                   std::vector<Piece>& out) const;
  void tokenize_word(std::string_view w, Scratch& sc, std::vector<int32_t>& ids) const;
  void word_symbols(std::string_view w, std::vector<int32_t>& syms) const;
};

void HfTokenizer::Impl::load(const fs::path& f, const std::string& text) {
  file = f;
  if (text.empty()) fail("file is empty");
  const json j = parse_json(text, f);
  try {
    parse(j);
  } catch (const json::exception& e) {
    fail(std::string("unexpected tokenizer.json content: ") + e.what());
  }
}

void HfTokenizer::Impl::parse(const json& j) {
  if (!j.is_object()) fail("not a tokenizer.json: the top level is not a JSON object");
  if (!j.contains("model") || !j["model"].is_object())
    fail("not a tokenizer.json: no \"model\" object");
  parse_model(j["model"]);
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) parse_added(j["added_tokens"]);

  // Ids index dense tables (id -> token), so they are held to what the file really defines:
  // below the number of its entries (vocabulary plus added tokens). Real files number their
  // tokens 0..n-1 and the added ones next (or reuse vocabulary ids); a 14 KB file naming id
  // 2^24 - 1 would otherwise cost half a gigabyte of empty slots.
  const int64_t entries = int64_t(vocab.size()) + int64_t(added.size());
  n_vocab = 0;
  for (const auto& [k, id] : vocab) {
    if (id >= entries)
      fail("model.vocab['" + k + "'] has id " + std::to_string(id) + ", outside the " +
           std::to_string(entries) + " ids the file defines (" + std::to_string(vocab.size()) +
           " vocabulary entries + " + std::to_string(added.size()) + " added tokens)");
    n_vocab = std::max(n_vocab, id + 1);
  }
  for (const auto& t : added) {
    if (t.id >= entries)
      fail("added token '" + t.content + "' has id " + std::to_string(t.id) + ", outside the " +
           std::to_string(entries) + " ids the file defines (" + std::to_string(vocab.size()) +
           " vocabulary entries + " + std::to_string(added.size()) + " added tokens)");
    n_vocab = std::max(n_vocab, t.id + 1);
  }
  id_to_token.assign(size_t(n_vocab), std::string());
  id_kind.assign(size_t(n_vocab), -1);
  for (const auto& [k, id] : vocab) id_to_token[size_t(id)] = k, id_kind[size_t(id)] = 0;
  for (const auto& t : added) {
    id_to_token[size_t(t.id)] = t.content;
    id_kind[size_t(t.id)] = t.special ? 2 : 1;
  }

  if (j.contains("normalizer")) parse_normalizer(j["normalizer"]);
  if (j.contains("pre_tokenizer")) parse_pre_tokenizer(j["pre_tokenizer"]);
  for (size_t i = 0; i < pre.size(); ++i) {
    if (pre[i].kind == PreStep::byte_level) {
      byte_level = true;
      // Later steps would see the GPT-2 alphabet, which this implementation never builds.
      if (i + 1 != pre.size()) fail("pre-tokenizer steps after ByteLevel are not supported");
    }
  }
  if (j.contains("decoder") && !j["decoder"].is_null()) {
    has_decoder = true;
    parse_decoder(j["decoder"]);
  }
  if (j.contains("post_processor")) parse_post_processor(j["post_processor"]);
  kind = byte_level ? "hf-bpe-bytelevel" : "hf-bpe-sentencepiece";

  // Symbol tables for the two styles.
  ascii_ids.fill(-1);
  byte_ids.fill(-1);
  fallback_ids.fill(-1);
  const auto& alpha = byte_alphabet();
  if (byte_level) {
    for (int b = 0; b < 256; ++b) {
      std::string s;
      unicode::append_utf8(s, alpha.to_cp[size_t(b)]);
      if (auto it = vocab.find(s); it != vocab.end()) byte_ids[size_t(b)] = it->second;
    }
    if (ignore_merges) {
      byte_vocab.reserve(vocab.size());
      for (const auto& [k, id] : vocab) {
        std::string raw;
        size_t i = 0;
        bool ok = true;
        while (i < k.size() && ok) {
          int b = alpha.byte_of(unicode::next_cp(k, i));
          if (b < 0) ok = false; else raw += static_cast<char>(b);
        }
        if (ok) byte_vocab.emplace(std::move(raw), id);
      }
    }
  } else {
    for (const auto& [k, id] : vocab) {
      if (k.empty()) continue;
      size_t i = 0;
      uint32_t cp = unicode::next_cp(k, i);
      if (i != k.size()) continue;  // more than one code point
      if (cp < 128) ascii_ids[cp] = id; else cp_ids[cp] = id;
    }
  }
  if (byte_fallback)
    for (unsigned b = 0; b < 256; ++b)
      if (auto it = vocab.find(hex_byte_token(b)); it != vocab.end()) fallback_ids[b] = it->second;

  // Added tokens: HF matches the "normalized" ones in normalized text, with their own content
  // normalized the same way.
  Matcher& matcher = thread_matcher();
  CancelPoll poll;
  for (size_t i = 0; i < added.size(); ++i) {
    poll.tick();
    if (added[i].normalized && !norm.empty())
      norm_added.add(run_normalizer(added[i].content, matcher), int32_t(i));
    else if (added[i].normalized)
      norm_added.add(added[i].content, int32_t(i));
    else
      raw_added.add(added[i].content, int32_t(i));
  }
  raw_added.build();
  norm_added.build();
  find_bos_eos();
}

void HfTokenizer::Impl::parse_model(const json& mj) {
  std::string type;
  if (mj.contains("type") && mj["type"].is_string()) type = mj["type"].get<std::string>();
  else if (mj.contains("merges")) type = "BPE";  // older files leave the type out
  if (type != "BPE")
    fail("model type '" + (type.empty() ? std::string("(none)") : type) +
         "' is not supported (only BPE)");
  if (!mj.contains("vocab") || !mj["vocab"].is_object())
    fail("model.vocab is missing or not an object");
  if (!mj.contains("merges") || !mj["merges"].is_array())
    fail("model.merges is missing or not a list");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (mj.contains(key) && mj[key].is_string() && !mj[key].get<std::string>().empty())
      fail(std::string("model.") + key + " is not supported");
  }
  auto flag = [&](const char* key) {
    return mj.contains(key) && mj[key].is_boolean() && mj[key].get<bool>();
  };
  byte_fallback = flag("byte_fallback");
  fuse_unk = flag("fuse_unk");
  ignore_merges = flag("ignore_merges");

  const json& v = mj["vocab"];
  vocab.reserve(v.size());
  CancelPoll poll;
  for (auto it = v.begin(); it != v.end(); ++it) {
    poll.tick();
    if (!it.value().is_number_integer()) fail("model.vocab['" + it.key() + "'] is not an integer id");
    int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= kMaxVocab) fail("model.vocab['" + it.key() + "'] has id out of range");
    vocab.emplace(it.key(), int32_t(id));
  }
  if (vocab.empty()) fail("model.vocab is empty");

  const json& ms = mj["merges"];
  merges.reserve(ms.size());
  auto find_id = [&](const std::string& t, size_t rank) {
    auto it = vocab.find(t);
    if (it == vocab.end())
      fail("merge " + std::to_string(rank) + " names unknown token '" + t + "'");
    return it->second;
  };
  for (size_t r = 0; r < ms.size(); ++r) {
    poll.tick();
    const json& m = ms[r];
    std::string a, b;
    if (m.is_string()) {
      // "a b": the separator is the first space (vocabulary strings of BPE models hold no
      // literal spaces; files whose tokens do use the list form).
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos)
        fail("merge " + std::to_string(r) + " ('" + s + "') is not of the form 'a b'");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail("merge " + std::to_string(r) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    int32_t ia = find_id(a, r), ib = find_id(b, r);
    auto it = vocab.find(a + b);
    if (it == vocab.end())
      fail("merge " + std::to_string(r) + " ('" + a + "' + '" + b + "') gives '" + a + b +
           "', which is not in the vocabulary");
    merges.set(ia, ib, bpe::Merge{int32_t(r), it->second});
  }

  if (mj.contains("unk_token") && mj["unk_token"].is_string()) {
    std::string unk = mj["unk_token"].get<std::string>();
    auto it = vocab.find(unk);
    if (it == vocab.end()) fail("model.unk_token '" + unk + "' is not in the vocabulary");
    unk_id = it->second;
  }
}

void HfTokenizer::Impl::parse_added(const json& arr) {
  if (!arr.is_array()) fail("added_tokens is not a list");
  CancelPoll poll;
  for (const auto& t : arr) {
    poll.tick();
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
        !t.contains("id") || !t["id"].is_number_integer())
      fail("added_tokens: an entry lacks \"content\" or \"id\"");
    AddedToken a;
    a.content = t["content"].get<std::string>();
    int64_t id = t["id"].get<int64_t>();
    if (id < 0 || id >= kMaxVocab) fail("added token '" + a.content + "' has id out of range");
    a.id = int32_t(id);
    auto flag = [&](const char* key, bool dflt) {
      return t.contains(key) && t[key].is_boolean() ? t[key].get<bool>() : dflt;
    };
    a.special = flag("special", false);
    a.lstrip = flag("lstrip", false);
    a.rstrip = flag("rstrip", false);
    a.single_word = flag("single_word", false);
    a.normalized = flag("normalized", !a.special);
    if (a.content.empty()) continue;
    added.push_back(std::move(a));
  }
}

void HfTokenizer::Impl::parse_normalizer(const json& n) {
  if (n.is_null()) return;
  std::string type = json_type(n);
  auto pattern_of = [&](const json& p, std::string& literal, std::unique_ptr<Regex>& re) {
    if (p.contains("String") && p["String"].is_string()) {
      literal = p["String"].get<std::string>();
    } else if (p.contains("Regex") && p["Regex"].is_string()) {
      re = std::make_unique<Regex>(p["Regex"].get<std::string>(), file);
    } else {
      fail(type + ": pattern is neither String nor Regex");
    }
  };
  if (type == "Sequence") {
    for (const auto& s : n.at("normalizers")) parse_normalizer(s);
  } else if (type == "Prepend") {
    norm.emplace_back(NormStep::prepend, n.at("prepend").get<std::string>());
  } else if (type == "Replace") {
    NormStep s(NormStep::replace, "", n.at("content").get<std::string>());
    pattern_of(n.at("pattern"), s.a, s.re);
    norm.push_back(std::move(s));
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    NormStep s(NormStep::form);
    s.nf = type == "NFC" ? unicode::NormForm::nfc : type == "NFD" ? unicode::NormForm::nfd
         : type == "NFKC" ? unicode::NormForm::nfkc : unicode::NormForm::nfkd;
    norm.push_back(std::move(s));
  } else if (type == "Lowercase") {
    norm.emplace_back(NormStep::lowercase);
  } else if (type == "Strip") {
    NormStep s(NormStep::strip);
    s.left = n.value("strip_left", true);
    s.right = n.value("strip_right", true);
    norm.push_back(std::move(s));
  } else {
    fail("normalizer type '" + type + "' is not supported");
  }
}

void HfTokenizer::Impl::parse_pre_tokenizer(const json& p) {
  if (p.is_null()) return;
  std::string type = json_type(p);
  if (type == "Sequence") {
    for (const auto& s : p.at("pretokenizers")) parse_pre_tokenizer(s);
  } else if (type == "Split") {
    PreStep s{PreStep::split};
    const json& pat = p.at("pattern");
    if (pat.contains("Regex")) s.re = std::make_unique<Regex>(pat["Regex"].get<std::string>(), file);
    else if (pat.contains("String")) s.literal = pat["String"].get<std::string>();
    else fail("Split: pattern is neither String nor Regex");
    std::string b = p.value("behavior", "Isolated");
    if (b == "Removed") s.behavior = SplitBehavior::removed;
    else if (b == "Isolated") s.behavior = SplitBehavior::isolated;
    else if (b == "MergedWithPrevious") s.behavior = SplitBehavior::merged_with_previous;
    else if (b == "MergedWithNext") s.behavior = SplitBehavior::merged_with_next;
    else if (b == "Contiguous") s.behavior = SplitBehavior::contiguous;
    else fail("Split: behavior '" + b + "' is not supported");
    s.invert = p.value("invert", false);
    pre.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    PreStep s{PreStep::byte_level};
    s.add_prefix_space = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) s.re = std::make_unique<Regex>(kGpt2Pattern, file);
    pre.push_back(std::move(s));
  } else if (type == "Metaspace") {
    PreStep s{PreStep::metaspace};
    s.replacement = p.value("replacement", "\u2581");
    if (p.contains("prepend_scheme") && p["prepend_scheme"].is_string()) {
      std::string sch = p["prepend_scheme"].get<std::string>();
      s.prepend = sch == "first" ? PreStep::Prepend::first
                : sch == "never" ? PreStep::Prepend::never : PreStep::Prepend::always;
    } else {
      s.prepend = p.value("add_prefix_space", true) ? PreStep::Prepend::always
                                                    : PreStep::Prepend::never;
    }
    s.split_on_replacement = p.value("split", true);
    pre.push_back(std::move(s));
  } else if (type == "Digits") {
    PreStep s{PreStep::digits};
    s.re = std::make_unique<Regex>(p.value("individual_digits", false) ? "\\p{N}" : "\\p{N}+", file);
    pre.push_back(std::move(s));
  } else {
    fail("pre-tokenizer type '" + type + "' is not supported");
  }
}

void HfTokenizer::Impl::parse_decoder(const json& d) {
  if (d.is_null()) return;
  std::string type = json_type(d);
  if (type == "Sequence") {
    for (const auto& s : d.at("decoders")) parse_decoder(s);
  } else if (type == "ByteLevel") {
    dec.emplace_back(DecStep::byte_level);
  } else if (type == "Replace") {
    DecStep s{DecStep::replace};
    const json& pat = d.at("pattern");
    if (!pat.contains("String")) fail("Replace decoder: only String patterns are supported");
    s.a = pat["String"].get<std::string>();
    s.b = d.at("content").get<std::string>();
    dec.push_back(std::move(s));
  } else if (type == "ByteFallback") {
    dec.emplace_back(DecStep::byte_fallback);
  } else if (type == "Fuse") {
    dec.emplace_back(DecStep::fuse);
  } else if (type == "Strip") {
    DecStep s{DecStep::strip};
    std::string c = d.value("content", " ");
    s.strip_cp = c.empty() ? ' ' : first_cp(c);
    // Counts must be JSON integers >= 0: value<size_t>() would cast a float such as -1e30
    // with undefined behaviour.
    auto count = [&](const char* key) -> size_t {
      if (!d.contains(key)) return 0;
      if (!d[key].is_number_unsigned())
        fail(std::string("Strip decoder: '") + key + "' must be a non-negative integer");
      return d[key].get<size_t>();
    };
    s.start = count("start");
    s.stop = count("stop");
    dec.push_back(std::move(s));
  } else if (type == "Metaspace") {
    DecStep s{DecStep::metaspace};
    s.replacement = d.value("replacement", "\u2581");
    if (d.contains("prepend_scheme") && d["prepend_scheme"].is_string())
      s.prepend = d["prepend_scheme"].get<std::string>() != "never";
    else
      s.prepend = d.value("add_prefix_space", true);
    dec.push_back(std::move(s));
  } else {
    fail("decoder type '" + type + "' is not supported");
  }
}

void HfTokenizer::Impl::parse_post_processor(const json& p) {
  if (p.is_null()) return;
  std::string type = json_type(p);
  // A template id must be an integer inside the vocabulary: get<int32_t>() would cast a float
  // such as 1e300 with undefined behaviour, and encode() must not return ids the model has
  // no embedding for.
  auto template_id = [&](const json& v, const std::string& name) -> int32_t {
    if (!v.is_number_integer())
      fail("post_processor: special token '" + name + "' has an id that is not an integer");
    const int64_t id = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT32_MAX)
                           ? int64_t(INT32_MAX) + 1
                           : v.get<int64_t>();
    if (id < 0 || id >= n_vocab)
      fail("post_processor: special token '" + name + "' has id " + std::to_string(id) +
           ", outside the vocabulary (" + std::to_string(n_vocab) + " ids)");
    return int32_t(id);
  };
  if (type == "Sequence") {
    for (const auto& s : p.at("processors")) parse_post_processor(s);
  } else if (type == "ByteLevel") {
    // Only adjusts offsets; ids are unchanged.
  } else if (type == "TemplateProcessing") {
    if (has_template) fail("more than one TemplateProcessing post-processor");
    has_template = true;
    const json& specials = p.contains("special_tokens") ? p["special_tokens"] : json::object();
    for (const auto& item : p.at("single")) {
      if (item.contains("Sequence")) {
        single_template.push_back({true, {}});
      } else if (item.contains("SpecialToken")) {
        std::string name = item["SpecialToken"].at("id").get<std::string>();
        if (!specials.contains(name))
          fail("post_processor: special token '" + name + "' is not in special_tokens");
        std::vector<int32_t> ids;
        for (const auto& id : specials[name].at("ids")) ids.push_back(template_id(id, name));
        single_template.push_back({false, std::move(ids)});
      } else {
        fail("post_processor: unknown template item " + item.dump());
      }
    }
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    if (has_template) fail("more than one template post-processor");
    has_template = true;
    single_template.push_back({false, {template_id(p.at("cls").at(1), "cls")}});
    single_template.push_back({true, {}});
    single_template.push_back({false, {template_id(p.at("sep").at(1), "sep")}});
  } else {
    fail("post-processor type '" + type + "' is not supported");
  }
}

int32_t HfTokenizer::Impl::lookup_any(std::string_view token) const {
  for (const auto& a : added)
    if (a.content == token) return a.id;
  auto it = vocab.find(token);
  return it == vocab.end() ? -1 : it->second;
}

void HfTokenizer::Impl::find_bos_eos() {
  // tokenizer_config.json names them; it is optional, and a broken one only costs the names.
  std::optional<std::string> bos_name, eos_name;
  // Reading it follows the rules of every input (a FIFO or a device there is an error, not a
  // hang, and a link must not lead out of the folder); only its content is forgiven.
  const fs::path dir = file.parent_path().empty() ? fs::path(".") : file.parent_path();
  const fs::path cfg = dir / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(fs::symlink_status(cfg, ec))) {
    resolve_inside(dir, "tokenizer_config.json");
    const std::string text = read_input_file(cfg, kConfigInput);
    try {
      const json c = parse_json(text, cfg);
      auto name = [&](const char* key) -> std::optional<std::string> {
        if (!c.contains(key)) return std::nullopt;
        const json& v = c[key];
        if (v.is_string()) return v.get<std::string>();
        if (v.is_object() && v.contains("content") && v["content"].is_string())
          return v["content"].get<std::string>();
        return std::string();  // null: the model has none
      };
      bos_name = name("bos_token");
      eos_name = name("eos_token");
    } catch (const json::exception&) {
    } catch (const FormatError&) {  // not JSON, or not the JSON expected
    }
  }
  if (bos_name) {
    bos = bos_name->empty() ? -1 : lookup_any(*bos_name);
  } else if (has_template && !single_template.empty() && !single_template[0].first &&
             !single_template[0].second.empty()) {
    bos = single_template[0].second[0];
  } else {
    for (const char* n : {"<s>", "<|begin_of_text|>", "<|endoftext|>"})
      if ((bos = lookup_any(n)) >= 0) break;
  }
  if (eos_name) {
    eos = eos_name->empty() ? -1 : lookup_any(*eos_name);
  } else {
    for (const char* n : {"</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>"})
      if ((eos = lookup_any(n)) >= 0) break;
  }
}

// --- encoding ---------------------------------------------------------------------------------

std::string HfTokenizer::Impl::run_normalizer(std::string_view s, Matcher& matcher) const {
  std::string out(s);
  for (const auto& st : norm) {
    switch (st.kind) {
      case NormStep::prepend:
        if (!out.empty()) out.insert(0, st.a);
        break;
      case NormStep::replace:
        if (!st.re) {
          replace_all(out, st.a, st.b);
        } else {
          std::string r;
          size_t last = 0;
          matcher.for_each(*st.re, out, [&](size_t b, size_t e) {
            r.append(out, last, b - last);
            r += st.b;
            last = e;
          });
          r.append(out, last, std::string::npos);
          out = std::move(r);
        }
        break;
      case NormStep::form:
        out = unicode::normalize(out, st.nf);
        break;
      case NormStep::lowercase:
        out = unicode::lowercase(out);
        break;
      case NormStep::strip: {
        size_t b = 0, e = out.size();
        if (st.left)
          while (b < e) {
            size_t i = b;
            if (!unicode::is_white_space(unicode::next_cp(out, i))) break;
            b = i;
          }
        if (st.right)
          while (e > b) {
            size_t i = e;
            while (i > b && (static_cast<unsigned char>(out[i - 1]) & 0xc0) == 0x80) --i;
            --i;
            size_t j = i;
            if (!unicode::is_white_space(unicode::next_cp(out, j))) break;
            e = i;
          }
        out = out.substr(b, e - b);
        break;
      }
    }
  }
  return out;
}

// HF AddedVocabulary::find_matches: leftmost-longest matches, honouring single_word, lstrip and
// rstrip; the text between matches becomes plain segments.
void HfTokenizer::Impl::split_added(std::string_view s, const TokenMatcher& matcher,
                                    std::vector<Segment>& out) const {
  out.clear();
  size_t from = 0, pos = 0;
  if (!matcher.empty()) {
    TokenMatcher::Scanner scan(matcher, s);
    TokenMatcher::Match m;
    while (pos < s.size() && scan.next(pos, m)) {
      const int32_t tok = m.value;
      const size_t len = m.length;
      pos = m.start;
      size_t start = pos, stop = pos + len;
      const AddedToken& t = added[size_t(tok)];
      if (t.single_word) {
        bool start_ok = start == 0 || !is_word_char(last_cp(s.substr(0, start)));
        bool stop_ok = stop == s.size() || !is_word_char(first_cp(s.substr(stop)));
        if (!start_ok || !stop_ok) {
          pos = stop;  // the matcher has consumed this span either way
          continue;
        }
      }
      if (t.lstrip) {
        size_t ns = start;
        while (ns > from) {
          size_t i = ns;
          while (i > 0 && (static_cast<unsigned char>(s[i - 1]) & 0xc0) == 0x80) --i;
          --i;
          size_t j = i;
          if (!unicode::is_white_space(unicode::next_cp(s, j))) break;
          ns = i;
        }
        start = ns;
      }
      if (t.rstrip) {
        while (stop < s.size()) {
          size_t j = stop;
          if (!unicode::is_white_space(unicode::next_cp(s, j))) break;
          stop = j;
        }
      }
      if (start > from) out.push_back({from, start, -1});
      out.push_back({start, stop, tok});
      from = pos = stop;
    }
  }
  if (from < s.size()) out.push_back({from, s.size(), -1});
}

void HfTokenizer::Impl::split_piece(const PreStep& step, const Piece& piece, Scratch& sc,
                                    std::vector<Piece>& out) const {
  std::string_view t = piece.text;
  auto emit = [&](size_t b, size_t e) {
    if (e > b) out.push_back({t.substr(b, e - b), piece.at_start && b == 0});
  };
  // Regex/literal matches as (start, end, is_match) spans covering the text, then grouped by
  // the behaviour (HF SplitDelimiterBehavior).
  auto split_by = [&](const Regex* re, std::string_view literal, SplitBehavior behavior,
                      bool invert) {
    if (behavior == SplitBehavior::isolated) {  // the common case, without the span list
      size_t last = 0;
      auto on_match = [&](size_t b, size_t e) {
        emit(last, b);
        emit(b, e);
        last = e;
      };
      if (re) sc.matcher.for_each(*re, t, on_match);
      else
        for (size_t p = t.find(literal); !literal.empty() && p != std::string_view::npos;
             p = t.find(literal, p + literal.size()))
          on_match(p, p + literal.size());
      emit(last, t.size());
      return;
    }
    struct Span {
      size_t b, e;
      bool m;
    };
    std::vector<Span> spans;
    size_t last = 0;
    auto on_match = [&](size_t b, size_t e) {
      if (b > last) spans.push_back({last, b, invert});
      spans.push_back({b, e, !invert});
      last = e;
    };
    if (re) sc.matcher.for_each(*re, t, on_match);
    else
      for (size_t p = t.find(literal); !literal.empty() && p != std::string_view::npos;
           p = t.find(literal, p + literal.size()))
        on_match(p, p + literal.size());
    if (last < t.size()) spans.push_back({last, t.size(), invert});
    std::vector<std::pair<size_t, size_t>> groups;
    bool prev_match = false;
    switch (behavior) {
      case SplitBehavior::removed:
        for (const auto& s : spans)
          if (!s.m) groups.push_back({s.b, s.e});
        break;
      case SplitBehavior::isolated:
        break;
      case SplitBehavior::merged_with_previous:
        for (const auto& s : spans) {
          if (s.m && !prev_match && !groups.empty()) groups.back().second = s.e;
          else groups.push_back({s.b, s.e});
          prev_match = s.m;
        }
        break;
      case SplitBehavior::merged_with_next:
        for (size_t k = spans.size(); k-- > 0;) {
          const auto& s = spans[k];
          if (s.m && !prev_match && !groups.empty()) groups.back().first = s.b;
          else groups.push_back({s.b, s.e});
          prev_match = s.m;
        }
        std::reverse(groups.begin(), groups.end());
        break;
      case SplitBehavior::contiguous:
        for (size_t k = 0; k < spans.size(); ++k) {
          const auto& s = spans[k];
          if (k > 0 && s.m == prev_match) groups.back().second = s.e;
          else groups.push_back({s.b, s.e});
          prev_match = s.m;
        }
        break;
    }
    for (const auto& [b, e] : groups) emit(b, e);
  };

  switch (step.kind) {
    case PreStep::split:
      split_by(step.re.get(), step.literal, step.behavior, step.invert);
      break;
    case PreStep::digits:
      split_by(step.re.get(), {}, SplitBehavior::isolated, false);
      break;
    case PreStep::byte_level:
      if (step.add_prefix_space && (t.empty() || t[0] != ' ')) {
        sc.arena.push_back(" " + std::string(t));
        t = sc.arena.back();
      }
      if (step.re) split_by(step.re.get(), {}, SplitBehavior::isolated, false);
      else emit(0, t.size());
      break;
    case PreStep::metaspace: {
      std::string r(t);
      replace_all(r, " ", step.replacement);
      bool prepend = step.prepend == PreStep::Prepend::always ||
                     (step.prepend == PreStep::Prepend::first && piece.at_start);
      if (prepend && r.compare(0, step.replacement.size(), step.replacement) != 0)
        r.insert(0, step.replacement);
      sc.arena.push_back(std::move(r));
      t = sc.arena.back();
      if (step.split_on_replacement) {
        split_by(nullptr, step.replacement, SplitBehavior::merged_with_next, false);
      } else {
        emit(0, t.size());
      }
      break;
    }
  }
}

// Initial symbols of a word before merging: bytes (byte-level) or code points with byte
// fallback / unk (SentencePiece style).
void HfTokenizer::Impl::word_symbols(std::string_view w, std::vector<int32_t>& syms) const {
  syms.clear();
  bool last_unk = false;
  auto push_unk = [&] {
    if (unk_id < 0 || (fuse_unk && last_unk)) return;
    syms.push_back(unk_id);
    last_unk = true;
  };
  CancelPoll poll(1 << 16);  // a word can be a whole text
  if (byte_level) {
    for (unsigned char b : w) {
      poll.tick();
      int32_t id = byte_ids[b];
      if (id >= 0) syms.push_back(id), last_unk = false;
      else push_unk();
    }
    return;
  }
  size_t i = 0;
  while (i < w.size()) {
    poll.tick();
    unsigned char c = static_cast<unsigned char>(w[i]);
    size_t start = i;
    int32_t id;
    if (c < 0x80) {
      id = ascii_ids[c];
      ++i;
    } else {
      uint32_t cp = unicode::next_cp(w, i);
      auto it = cp_ids.find(cp);
      id = it == cp_ids.end() ? -1 : it->second;
    }
    if (id >= 0) {
      syms.push_back(id);
      last_unk = false;
      continue;
    }
    if (byte_fallback) {
      bool all = true;
      for (size_t k = start; k < i; ++k) all = all && fallback_ids[static_cast<unsigned char>(w[k])] >= 0;
      if (all) {
        for (size_t k = start; k < i; ++k) syms.push_back(fallback_ids[static_cast<unsigned char>(w[k])]);
        last_unk = false;
        continue;
      }
    }
    push_unk();
  }
}

void HfTokenizer::Impl::tokenize_word(std::string_view w, Scratch& sc,
                                      std::vector<int32_t>& ids) const {
  if (w.empty()) return;
  if (ignore_merges) {
    // Llama 3: a pre-token that is itself a vocabulary entry is taken whole.
    const StrMap& v = byte_level ? byte_vocab : vocab;
    if (auto it = v.find(w); it != v.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  // Pre-tokenized words repeat a lot; a whole un-pre-tokenized text (SentencePiece style) is
  // one long word that is not worth keeping.
  const bool cacheable = w.size() <= 256;
  if (cacheable) {
    if (auto it = sc.cache.map.find(w); it != sc.cache.map.end()) {
      auto [off, len] = it->second;
      ids.insert(ids.end(), sc.cache.ids.begin() + off, sc.cache.ids.begin() + off + len);
      return;
    }
  }
  word_symbols(w, sc.syms);
  bpe::merge(sc.syms, merges, sc.ws);
  ids.insert(ids.end(), sc.syms.begin(), sc.syms.end());
  if (cacheable) {
    sc.cache.map.emplace(std::string(w), std::pair<uint32_t, uint32_t>(
                                             uint32_t(sc.cache.ids.size()), uint32_t(sc.syms.size())));
    sc.cache.ids.insert(sc.cache.ids.end(), sc.syms.begin(), sc.syms.end());
  }
}

void HfTokenizer::Impl::encode_normalized(std::string_view s, bool at_start, Scratch& sc,
                                          std::vector<int32_t>& ids) const {
  if (s.empty()) return;
  if (pre.empty()) {
    tokenize_word(s, sc, ids);
    return;
  }
  sc.pieces.clear();
  sc.pieces.push_back({s, at_start});
  for (const auto& step : pre) {
    sc.next_pieces.clear();
    for (const auto& p : sc.pieces) {
      sc.poll.tick();
      split_piece(step, p, sc, sc.next_pieces);
    }
    std::swap(sc.pieces, sc.next_pieces);
  }
  for (const auto& p : sc.pieces) {
    sc.poll.tick();
    tokenize_word(p.text, sc, ids);
  }
}

// ---------------------------------------------------------------------------------------------

HfTokenizer::HfTokenizer(const fs::path& file)
    : HfTokenizer(file, read_input_file(file, kTokenizerJsonInput)) {}

HfTokenizer::HfTokenizer(const fs::path& file, const std::string& text)
    : m(std::make_unique<Impl>()) {
  m->load(file, text);
}
HfTokenizer::~HfTokenizer() = default;

std::vector<int32_t> HfTokenizer::encode(std::string_view text, bool add_special) const {
  size_t bad = find_invalid_utf8(text);
  if (bad != std::string::npos)
    throw FormatError(file_msg(m->file, "text to encode is not valid UTF-8 (byte offset " +
                                            std::to_string(bad) + ")"));
  Scratch sc;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> segs, sub;
  m->split_added(text, m->raw_added, segs);
  for (const auto& seg : segs) {
    if (seg.token >= 0) {
      ids.push_back(m->added[size_t(seg.token)].id);
      continue;
    }
    std::string_view part = text.substr(seg.start, seg.end - seg.start);
    bool at_start = seg.start == 0;
    std::string normalized;
    if (!m->norm.empty()) {
      normalized = m->run_normalizer(part, sc.matcher);
      part = normalized;
    }
    if (m->norm_added.empty()) {
      m->encode_normalized(part, at_start, sc, ids);
      continue;
    }
    m->split_added(part, m->norm_added, sub);
    for (const auto& s2 : sub) {
      if (s2.token >= 0) ids.push_back(m->added[size_t(s2.token)].id);
      else m->encode_normalized(part.substr(s2.start, s2.end - s2.start), at_start && s2.start == 0, sc, ids);
    }
  }
  if (add_special && m->has_template) {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& [is_seq, extra] : m->single_template) {
      if (is_seq) out.insert(out.end(), ids.begin(), ids.end());
      else out.insert(out.end(), extra.begin(), extra.end());
    }
    return out;
  }
  return ids;
}

std::string HfTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::vector<std::string> toks;
  toks.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= m->n_vocab || m->id_kind[size_t(id)] < 0) continue;  // as HF: dropped
    if (skip_special && m->id_kind[size_t(id)] == 2) continue;
    toks.push_back(m->id_to_token[size_t(id)]);
  }
  if (!m->has_decoder) {
    std::string out;
    for (size_t i = 0; i < toks.size(); ++i) out += (i ? " " : "") + toks[i];
    return out;
  }
  const auto& alpha = byte_alphabet();
  for (const auto& st : m->dec) {
    switch (st.kind) {
      case DecStep::byte_level: {
        std::string bytes;
        for (const auto& t : toks) {
          std::string raw;
          size_t i = 0;
          bool ok = true;
          while (i < t.size() && ok) {
            int b = alpha.byte_of(unicode::next_cp(t, i));
            if (b < 0) ok = false; else raw += static_cast<char>(b);
          }
          bytes += ok ? raw : t;  // a token outside the alphabet (added token) stays as is
        }
        toks.assign(1, unicode::to_valid_utf8(bytes));
        break;
      }
      case DecStep::replace:
        for (auto& t : toks) replace_all(t, st.a, st.b);
        break;
      case DecStep::byte_fallback: {
        std::vector<std::string> out;
        std::string pending;
        size_t n_pending = 0;
        auto flush = [&] {
          if (!n_pending) return;
          if (find_invalid_utf8(pending) == std::string::npos) out.push_back(pending);
          else
            for (size_t k = 0; k < n_pending; ++k) out.push_back("\xEF\xBF\xBD");
          pending.clear();
          n_pending = 0;
        };
        for (auto& t : toks) {
          int b = unicode::parse_byte_token(t);
          if (b >= 0) {
            pending += static_cast<char>(b);
            ++n_pending;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        toks = std::move(out);
        break;
      }
      case DecStep::fuse: {
        std::string all;
        for (const auto& t : toks) all += t;
        toks.assign(1, std::move(all));
        break;
      }
      case DecStep::strip:
        for (auto& t : toks) {
          std::string c;
          unicode::append_utf8(c, st.strip_cp);
          size_t b = 0, e = t.size();
          for (size_t k = 0; k < st.start && t.compare(b, c.size(), c) == 0 && b < e; ++k) b += c.size();
          for (size_t k = 0; k < st.stop && e >= b + c.size() && t.compare(e - c.size(), c.size(), c) == 0; ++k)
            e -= c.size();
          t = t.substr(b, e - b);
        }
        break;
      case DecStep::metaspace:
        for (size_t i = 0; i < toks.size(); ++i) {
          replace_all(toks[i], st.replacement, (i == 0 && st.prepend) ? "" : " ");
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : toks) out += t;
  return out;
}

int32_t HfTokenizer::vocab_size() const { return m->n_vocab; }
int32_t HfTokenizer::bos_id() const { return m->bos; }
int32_t HfTokenizer::eos_id() const { return m->eos; }
std::string HfTokenizer::kind() const { return m->kind; }
const fs::path& HfTokenizer::file() const { return m->file; }

std::string HfTokenizer::id_to_token(int32_t id) const {
  return id >= 0 && id < m->n_vocab ? m->id_to_token[size_t(id)] : std::string();
}

int32_t HfTokenizer::token_to_id(std::string_view token) const { return m->lookup_any(token); }

}  // namespace gptqw
