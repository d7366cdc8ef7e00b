#include "common/text_file.h"

#include <cstdlib>
#include <fstream>

#include "common/error.h"

namespace gptqw {

size_t find_invalid_utf8(const std::string& s) {
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
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw IoError(file_msg(path, "no such file"));
  if (std::filesystem::is_directory(status))
    throw IoError(file_msg(path, "is a directory, expected a text file"));
  if (!std::filesystem::is_regular_file(status))
    throw IoError(file_msg(path, "not a regular file"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(file_msg(path, "cannot open for reading"));
  uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw IoError(file_msg(path, "cannot read its size: " + ec.message()));
  if (!max_bytes && size > kMaxTextBytes)
    throw FormatError(file_msg(path, "is " + std::to_string(size >> 20) +
                                         " MiB; texts over " + std::to_string(kMaxTextBytes >> 20) +
                                         " MiB are refused (use an excerpt)"));
  size_t want = static_cast<size_t>(size);
  if (max_bytes && want > max_bytes) want = max_bytes;
  std::string text(want, '\0');
  in.read(text.data(), static_cast<std::streamsize>(want));
  if (static_cast<size_t>(in.gcount()) != want) throw IoError(file_msg(path, "short read"));
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
