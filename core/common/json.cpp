#include "common/json.h"

#include <fstream>
#include <iterator>

#include "common/error.h"

namespace gptqw {

nlohmann::json parse_json(std::string_view text, const std::filesystem::path& file) {
  JsonDepthLimit depth_limit;
  auto limit_depth = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    return depth_limit.admit(depth, event);
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, limit_depth);
  } catch (const nlohmann::json::exception& e) {
    std::string what = e.what();
    // "[json.exception.parse_error.101] parse error at line 3, ..." -> "parse error at ..."
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    throw FormatError(file_msg(file, "not valid JSON: " + what));
  }
  if (depth_limit.exceeded())
    throw FormatError(file_msg(file, "JSON nested more than " + std::to_string(kMaxJsonDepth) +
                                         " levels deep"));
  return j;
}

nlohmann::json read_json_file(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw IoError(file_msg(file, "is a folder, expected a JSON file"));
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file_msg(file, "cannot open for reading"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(file_msg(file, "read error"));
  return parse_json(text, file);
}

}  // namespace gptqw
