// UTF-8 and Unicode helpers the tokenizers share: walking code points, encoding them, cutting
// a text after N code points, the White_Space property, and normalization forms (utf8proc).
// Inputs are assumed to be valid UTF-8 unless a function says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gptqw::unicode {

// Length of the UTF-8 sequence that starts with lead byte c (1 for stray continuation bytes,
// so that walking a damaged string still advances).
inline size_t seq_len(unsigned char c) {
  return c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
}

// Decodes the code point at s[i] and advances i past it. Malformed input yields the lead byte's
// value and advances one byte (callers validate first when that matters).
uint32_t next_cp(std::string_view s, size_t& i);

// Appends code point cp as UTF-8.
void append_utf8(std::string& out, uint32_t cp);

// Number of code points in valid UTF-8 text.
size_t count_cps(std::string_view s);

// The first n code points of s (all of s when it has fewer).
std::string_view prefix_cps(std::string_view s, size_t n);

// Replaces every ill-formed sequence by U+FFFD (one per maximal ill-formed subpart, as Rust's
// String::from_utf8_lossy does), so decoded byte tokens always give displayable text.
std::string to_valid_utf8(std::string_view s);

// Unicode White_Space (what Rust's char::is_whitespace answers).
bool is_white_space(uint32_t cp);

// Oniguruma's \s in Unicode mode, which is what the Hugging Face tokenizers library's regexes
// use: U+0009..U+000D, U+0085, and the Zs, Zl, Zp categories. The same set as White_Space.
inline bool is_regex_space(uint32_t cp) { return is_white_space(cp); }

enum class NormForm { nfc, nfd, nfkc, nfkd };

// Normalizes valid UTF-8 text (embedded NUL bytes are kept). Pure ASCII is returned unchanged
// without calling into utf8proc. Throws std::runtime_error on invalid UTF-8.
std::string normalize(std::string_view s, NormForm form);
inline std::string nfc(std::string_view s) { return normalize(s, NormForm::nfc); }

// Simple per-code-point lowercase mapping.
std::string lowercase(std::string_view s);

// The byte of a byte-fallback token "<0xNN>" (SentencePiece and llama2.c vocabularies), or -1
// when t is not one.
int parse_byte_token(std::string_view t);

}  // namespace gptqw::unicode
