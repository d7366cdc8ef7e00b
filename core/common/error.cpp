#include "common/error.h"

namespace gptqw {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string file_msg(const std::filesystem::path& file, const std::string& message) {
  return file.string() + ": " + message;
}

}  // namespace gptqw
