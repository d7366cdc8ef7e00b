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

// Throws FormatError naming `file`: not valid JSON (with the parser's position), or too deep.
nlohmann::json parse_json(std::string_view text, const std::filesystem::path& file);

// The whole file, parsed as above; IoError naming the file when it cannot be read.
nlohmann::json read_json_file(const std::filesystem::path& file);

}  // namespace gptqw
