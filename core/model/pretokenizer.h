// What Hugging Face's pre-tokenizers (and Replace normalizers) match with, outside of any one
// tokenizer.json: regexes compiled with PCRE2 but made to behave like the Oniguruma engine HF
// uses, the per-thread matching state, the pattern of GPT-2's ByteLevel pre-tokenizer, and
// GPT-2's byte <-> unicode alphabet. Internal to core/model (hf_tokenizer.cpp): it includes
// pcre2.h, which is gptqw_core's private dependency.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/cancel.h"
#include "common/error.h"
#include "model/unicode.h"

namespace gptqw::pretok {

// ---------------------------------------------------------------------------------------------
// GPT-2 byte <-> unicode alphabet
// ---------------------------------------------------------------------------------------------

// GPT-2 maps every byte to a printable code point so that vocabularies are plain strings:
// printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 onwards.
struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 324> to_byte{};  // code point -> byte, -1 where none
  ByteAlphabet();
  int byte_of(uint32_t cp) const { return cp < to_byte.size() ? to_byte[cp] : -1; }
};

const ByteAlphabet& byte_alphabet();

// The regex GPT-2's ByteLevel pre-tokenizer uses when use_regex is true.
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// ---------------------------------------------------------------------------------------------
// Regexes (PCRE2)
// ---------------------------------------------------------------------------------------------

// A pattern of tokenizer.json, compiled so that it matches as Oniguruma would (pretokenizer.cpp
// says where the engines differ). Throws FormatError naming `file` when it does not compile.
class Regex {
 public:
  Regex(std::string_view pattern, const std::filesystem::path& file);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  pcre2_code* code() const { return m_code; }
  const std::filesystem::path& file() const { return m_file; }

  static std::string error_text(int err);

 private:
  pcre2_code* m_code = nullptr;
  std::filesystem::path m_file;
};

// Matching state: match data and a JIT stack big enough for long runs of one class (a run of
// thousands of spaces backtracks through \s+(?!\S)). One per thread (thread_matcher()): setting
// it up costs more than encoding a short prompt, and sharing one between threads is not allowed.
class Matcher {
 public:
  Matcher();
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;

  // Calls fn(start, end) for every match, left to right, as Oniguruma's find_iter does.
  template <class F>
  void for_each(const Regex& re, std::string_view s, F&& fn) {
    size_t pos = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    CancelPoll poll;
    while (pos <= s.size()) {
      poll.tick();
      // The text was validated once up front; re-checking UTF-8 on every call would make the
      // loop quadratic.
      int rc = pcre2_match(re.code(), subject, s.size(), pos, PCRE2_NO_UTF_CHECK, m_data, m_ctx);
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0)
        throw FormatError(file_msg(re.file(), "regex matching failed: " + Regex::error_text(rc)));
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m_data);
      size_t start = ov[0], end = ov[1];
      fn(start, end);
      if (end > start) {
        pos = end;
      } else {  // empty match: step over one character
        if (end >= s.size()) return;
        pos = end + unicode::seq_len(static_cast<unsigned char>(s[end]));
      }
    }
  }

 private:
  pcre2_match_data* m_data = nullptr;
  pcre2_match_context* m_ctx = nullptr;
  pcre2_jit_stack* m_stack = nullptr;
};

Matcher& thread_matcher();

}  // namespace gptqw::pretok
