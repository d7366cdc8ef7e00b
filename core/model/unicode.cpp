// UTF-8 walking/encoding, White_Space, and utf8proc-backed normalization forms.
#include "model/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "common/cancel.h"

namespace gptqw::unicode {

uint32_t next_cp(std::string_view s, size_t& i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned c = p[i];
  size_t len = seq_len(static_cast<unsigned char>(c));
  if (len == 1 || i + len > s.size()) {
    ++i;
    return c;
  }
  uint32_t cp = len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) cp = cp << 6 | (p[i + k] & 0x3f);
  i += len;
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

size_t count_cps(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string_view prefix_cps(std::string_view s, size_t n) {
  size_t i = 0;
  while (n > 0 && i < s.size()) {
    i += seq_len(static_cast<unsigned char>(s[i]));
    --n;
  }
  return s.substr(0, std::min(i, s.size()));
}

std::string to_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  std::string out;
  out.reserve(n);
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // no overlong forms
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;
      if (c == 0xf4) hi = 0x8f;  // nothing past U+10FFFF
    }
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    size_t k = 1;
    while (k < len && i + k < n) {
      unsigned b = p[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80) break;
      ++k;
    }
    if (k == len) {
      out.append(s.substr(i, len));
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += k;
  }
  return out;
}

bool is_white_space(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0d);
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

static bool is_ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return true;
}

static std::string normalize_piece(std::string_view s, NormForm form);

std::string normalize(std::string_view s, NormForm form) {
  // ASCII is invariant under every normalization form; most text is mostly ASCII, so skipping
  // utf8proc there saves its decompose/recompose round trip.
  if (is_ascii(s)) return std::string(s);
  // A long text goes through utf8proc a megabyte at a time, cut just after a line feed, with a
  // cancellation check between: U+000A is a starter that never combines or composes with
  // anything, so every normalization form of the whole is that of the pieces put together.
  constexpr size_t kPiece = size_t(1) << 20;
  if (s.size() > 2 * kPiece) {
    std::string out;
    out.reserve(s.size());
    size_t pos = 0;
    while (pos < s.size()) {
      check_cancelled();
      size_t cut = s.size();
      if (s.size() - pos > 2 * kPiece) {
        const size_t lf = s.find('\n', pos + kPiece);
        if (lf != std::string_view::npos) cut = lf + 1;
      }
      out += normalize_piece(s.substr(pos, cut - pos), form);
      pos = cut;
    }
    return out;
  }
  return normalize_piece(s, form);
}

static std::string normalize_piece(std::string_view s, NormForm form) {
  int opts = UTF8PROC_STABLE;
  switch (form) {
    case NormForm::nfc: opts |= UTF8PROC_COMPOSE; break;
    case NormForm::nfd: opts |= UTF8PROC_DECOMPOSE; break;
    case NormForm::nfkc: opts |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormForm::nfkd: opts |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  // An explicit length (no UTF8PROC_NULLTERM) keeps embedded NUL characters.
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                    static_cast<utf8proc_ssize_t>(s.size()), &out,
                                    static_cast<utf8proc_option_t>(opts));
  if (n < 0) throw std::runtime_error(std::string("Unicode normalization failed: ") +
                                      utf8proc_errmsg(n));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> guard(out, &std::free);
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  CancelPoll poll(1 << 16);
  while (i < s.size()) {
    poll.tick();
    uint32_t cp = next_cp(s, i);
    append_utf8(out, static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
  }
  return out;
}

int parse_byte_token(std::string_view t) {
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  auto hex = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                        : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace gptqw::unicode
