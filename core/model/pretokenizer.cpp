// The Oniguruma-compatible PCRE2 regexes, their per-thread matching state, and GPT-2's byte
// alphabet (pretokenizer.h).
#include "model/pretokenizer.h"

namespace gptqw::pretok {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// GPT-2 byte <-> unicode alphabet
// ---------------------------------------------------------------------------------------------

ByteAlphabet::ByteAlphabet() {
  to_byte.fill(-1);
  uint32_t extra = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
    to_cp[b] = printable ? uint32_t(b) : extra++;
    to_byte[to_cp[b]] = int16_t(b);
  }
}

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet a;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Regexes (PCRE2)
// ---------------------------------------------------------------------------------------------

namespace {

// HF compiles these patterns with Oniguruma, whose \s in Unicode mode is U+0009..U+000D, U+0085
// (NEL) and the Zs/Zl/Zp categories; U+FEFF (BOM) is not a space (JavaScript's \s would take
// it). What PCRE2's \s matches under PCRE2_UCP has changed between releases (the Perl space set
// plus Z, which leaves out NEL, or White_Space; 10.42 gives the latter), so \s and \S are
// spelled out as explicit classes: the pre-tokens then do not depend on the PCRE2 version.
constexpr const char* kSpaceItems = R"(\t-\r \x{85}\p{Zs}\x{2028}\x{2029})";

std::string onig_compatible(std::string_view pat) {
  std::string out;
  out.reserve(pat.size() + 64);
  bool in_class = false;
  for (size_t i = 0; i < pat.size(); ++i) {
    char c = pat[i];
    if (c == '\\' && i + 1 < pat.size()) {
      char e = pat[i + 1];
      if (e == 's') {
        out += in_class ? std::string(kSpaceItems) : "[" + std::string(kSpaceItems) + "]";
      } else if (e == 'S' && !in_class) {
        out += "[^" + std::string(kSpaceItems) + "]";
      } else {
        // \S inside a class cannot be spelled as a complement there; PCRE2's own \S is the
        // closest and only differs on U+0085.
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' (after an optional '^') right after '[' is a literal, not the end of the class.
      if (i + 1 < pat.size() && pat[i + 1] == '^') out += pat[++i];
      if (i + 1 < pat.size() && pat[i + 1] == ']') out += pat[++i];
      continue;
    }
    if (in_class && c == '[' && i + 1 < pat.size() && pat[i + 1] == ':') {
      // POSIX class [:name:] inside a bracket expression.
      size_t end = pat.find(":]", i + 2);
      if (end != std::string_view::npos) {
        out.append(pat.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

}  // namespace

Regex::Regex(std::string_view pattern, const fs::path& file) : m_file(file) {
  std::string pat = onig_compatible(pattern);
  int err = 0;
  PCRE2_SIZE off = 0;
  m_code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.data()), pat.size(),
                         PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (!m_code) {
    throw FormatError(file_msg(file, "regex '" + std::string(pattern) +
                                         "' does not compile: " + error_text(err) +
                                         " (at offset " + std::to_string(off) + ")"));
  }
  // JIT is an optimisation only: without it pcre2_match interprets the same pattern.
  pcre2_jit_compile(m_code, PCRE2_JIT_COMPLETE);
}

Regex::~Regex() { pcre2_code_free(m_code); }

std::string Regex::error_text(int err) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(err, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

Matcher::Matcher() {
  m_data = pcre2_match_data_create(1, nullptr);
  m_ctx = pcre2_match_context_create(nullptr);
  m_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  if (m_ctx && m_stack) pcre2_jit_stack_assign(m_ctx, nullptr, m_stack);
}

Matcher::~Matcher() {
  pcre2_jit_stack_free(m_stack);
  pcre2_match_context_free(m_ctx);
  pcre2_match_data_free(m_data);
}

Matcher& thread_matcher() {
  thread_local Matcher matcher;
  return matcher;
}

}  // namespace gptqw::pretok
