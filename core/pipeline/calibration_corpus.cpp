#include "pipeline/calibration_corpus.h"

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/input_file.h"
#include "common/json.h"
#include "common/text_file.h"

namespace gptqw {

namespace fs = std::filesystem;

namespace {

void append_document(CalibrationCorpus& c, const std::string& doc, const fs::path& source) {
  if (c.documents > 0) c.text += kDocumentSeparator;
  c.text += doc;
  ++c.documents;
  if (c.text.size() > kTextInput.max_bytes)
    throw FormatError(file_msg(source, "the calibration documents exceed " +
                                           std::to_string(kTextInput.max_bytes >> 20) +
                                           " MiB together; use fewer or shorter ones"));
}

void read_jsonl(CalibrationCorpus& c, const fs::path& path, const std::string& field) {
  const std::string all = read_text_file(path);
  std::istringstream in(all);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = "line " + std::to_string(n);
    nlohmann::json j;
    try {
      j = parse_json(line, path);
    } catch (const FormatError& e) {
      throw FormatError(file_msg(path, where + ": not a JSON object (" + e.what() + ")"));
    }
    if (!j.is_object()) throw FormatError(file_msg(path, where + ": expected a JSON object"));
    if (!j.contains(field))
      throw FormatError(file_msg(path, where + ": no field \"" + field +
                                           "\" (choose the text field with --calib-field)"));
    if (!j[field].is_string())
      throw FormatError(file_msg(path, where + ": field \"" + field + "\" is not a string"));
    append_document(c, j[field].get<std::string>(), path);
  }
  if (c.documents == 0) throw FormatError(file_msg(path, "has no JSON lines"));
}

void read_folder(CalibrationCorpus& c, const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".txt" && e.is_regular_file(ec)) files.push_back(e.path());
  if (ec) throw IoError(file_msg(dir, "cannot list the folder: " + ec.message()));
  if (files.empty()) throw IoError(file_msg(dir, "has no .txt files to calibrate on"));
  std::sort(files.begin(), files.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  for (const fs::path& f : files) {
    append_document(c, read_text_file(f), dir);
    c.files.push_back(f.filename().string());
  }
}

}  // namespace

CalibrationCorpus read_calibration_corpus(const fs::path& path, const CalibrationOptions& options) {
  CalibrationCorpus c;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    c.format = "folder";
    read_folder(c, path);
  } else if (path.extension() == ".jsonl") {
    c.format = "jsonl";
    c.field = options.jsonl_field;
    read_jsonl(c, path, options.jsonl_field);
  } else {
    c.format = "text";
    c.text = read_text_file(path);
    c.documents = 1;
  }
  if (c.text.empty()) throw FormatError(file_msg(path, "the calibration documents are empty"));
  return c;
}

}  // namespace gptqw
