// Calibration data as users keep it, read into the one text that calibration windows are drawn
// from:
//   - a plain text file (any name but *.jsonl): the file, as it is (one document);
//   - a JSONL file (*.jsonl): one JSON object per line, the document in its string field
//     `field` ("text" by default; --calib-field), blank lines skipped;
//   - a folder: every *.txt file directly in it, in byte order of their names, each a document.
// Documents are joined with "\n\n" between them (as GPTQ's own WikiText-2 loader joins its
// records) and the joined text is tokenized once, BOS first where the tokenizer adds one, exactly
// as a plain text file is: windows are then drawn at seeded random offsets of that token stream
// and may span the end of one document and the start of the next. A folder holding one file, or
// a JSONL file of one record, gives the same tokens as that text alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace gptqw {

struct CalibrationOptions {
  std::string jsonl_field = "text";  // the string field of each JSONL object
};

struct CalibrationCorpus {
  std::string text;                // the documents joined with kDocumentSeparator
  std::string format;              // "text", "jsonl" or "folder"
  std::string field;               // JSONL: the field read; empty otherwise
  int64_t documents = 0;
  std::vector<std::string> files;  // folder: the .txt files read, in order (names only)
};

inline constexpr const char* kDocumentSeparator = "\n\n";

// Throws IoError / FormatError naming the file (and for JSONL the line and field): a missing
// path, a folder without .txt files, a line that is not a JSON object or lacks the field, a
// field that is not a string, invalid UTF-8, or a joined text over kTextInput.max_bytes (256 MiB).
CalibrationCorpus read_calibration_corpus(const std::filesystem::path& path,
                                          const CalibrationOptions& options = {});

}  // namespace gptqw
