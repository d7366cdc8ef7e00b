#include "common/text_file.h"

#include <cstdlib>

#include "common/error.h"
#include "common/input_file.h"
#include "common/output_file.h"

namespace gptqw {

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return i;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return i;
    i += len;
  }
  return std::string::npos;
}

std::string read_text_file(const std::filesystem::path& path, size_t max_bytes) {
  InputFile file(path, kTextInput, max_bytes);
  protect_input(path, "an input text");  // no output of this process may replace it
  const uint64_t size = file.size();
  std::string text = file.read();
  if (max_bytes && size > max_bytes) {
    // Cut back so that the limit does not split a multi-byte character.
    auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    size_t lead = text.size();
    while (lead > 0 && (byte(lead - 1) & 0xc0) == 0x80) --lead;
    if (lead > 0) {
      --lead;
      unsigned c = byte(lead);
      size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
      if (lead + len > text.size()) text.resize(lead);
    }
  }
  if (text.empty()) throw FormatError(file_msg(path, "file is empty"));
  size_t bad = find_invalid_utf8(text);
  if (bad != std::string::npos)
    throw FormatError(file_msg(path, "not valid UTF-8 text (invalid byte sequence at offset " +
                                         std::to_string(bad) + ")"));
  return text;
}

std::filesystem::path data_dir() {
  if (const char* env = std::getenv("GPTQW_DATA_DIR"); env && *env) return env;
  return GPTQW_DEFAULT_DATA_DIR;
}

}  // namespace gptqw
