// The one exception hierarchy of gptqw_core. Messages are written for the user who sees them
// in a dialog or on a terminal: they name the file, the tensor and the shapes involved
// ("model.safetensors: tensor 'model.norm.weight': expected [64], file has [32]").
// Library code never calls exit(); callers catch gptqw::Error and show what().
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace gptqw {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file could not be opened, read, mapped or written.
class IoError : public Error {
 public:
  using Error::Error;
};

// A file was read but its content is wrong: corrupt header, bad JSON, inconsistent shapes.
class FormatError : public Error {
 public:
  using Error::Error;
};

// A configuration or option is missing, unsupported or out of range.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// A long operation was cancelled by its progress callback; nothing was written.
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

// "[4096, 11008]": shapes are printed the way the safetensors header and PyTorch print them.
std::string shape_str(const std::vector<int64_t>& shape);

// "path: message", the prefix every file-related error carries.
std::string file_msg(const std::filesystem::path& file, const std::string& message);

}  // namespace gptqw
