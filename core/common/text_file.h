// Reading user text files (calibration corpora, evaluation texts) with the checks every caller
// needs: the file exists and is a regular file, it is not empty, it is valid UTF-8.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace gptqw {

// Reads the whole file (at most kTextInput.max_bytes, 256 MiB: calibration and evaluation need a
// few megabytes, and a multi-gigabyte file, a wrong path or a dump, would otherwise be held in
// memory with its token ids), or its first max_bytes bytes cut back to a character boundary.
// Opened once as common/input_file.h says (directories, FIFOs and devices refused without
// blocking). Throws IoError / FormatError naming the file; the UTF-8 error names the byte
// offset of the first invalid sequence.
std::string read_text_file(const std::filesystem::path& path, size_t max_bytes = 0);

// Byte offset of the first invalid UTF-8 sequence, or npos when the text is valid.
size_t find_invalid_utf8(std::string_view text);

// The sample data folder: $GPTQW_DATA_DIR if set, else the folder configured at build time
// (../shared/data beside the checkout).
std::filesystem::path data_dir();

}  // namespace gptqw
