// Reading JSON from user files with one rule for every loader (config.json, tokenizer.json,
// quantize_config.json, reports): nesting deeper than kMaxJsonDepth is refused while parsing.
// nlohmann's parser is iterative, but copying, dumping (error messages quote values) and
// destroying a value recurse, so a few hundred kilobytes of brackets would overflow the stack.
// The files we read nest 3 to 6 levels.
#pragma once

#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gptqw {

constexpr int kMaxJsonDepth = 64;

// The depth rule, for a parse callback: admit() is false for an object or array that opens
// deeper than kMaxJsonDepth (the callback returns it, so the value is not built) and remembers
// that it happened. parse_json uses it; so does the safetensors header parser, whose callback
// also refuses duplicate keys.
class JsonDepthLimit {
 public:
  bool admit(int depth, nlohmann::json::parse_event_t event) {
    if (depth > kMaxJsonDepth && (event == nlohmann::json::parse_event_t::object_start ||
                                  event == nlohmann::json::parse_event_t::array_start)) {
      exceeded_ = true;
      return false;
    }
    return true;
  }
  bool exceeded() const { return exceeded_; }

 private:
  bool exceeded_ = false;
};

// Throws FormatError naming `file`: not valid JSON (with the parser's position), or too deep.
nlohmann::json parse_json(std::string_view text, const std::filesystem::path& file);

// The whole file, parsed as above; IoError naming the file when it cannot be read.
nlohmann::json read_json_file(const std::filesystem::path& file);

}  // namespace gptqw
