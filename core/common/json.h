// Reading JSON from user files with one parser for every loader (config.json, tokenizer.json,
// quantize_config.json, safetensors headers and indexes, reports). It runs in time linear in
// the input, whatever the input:
//   - nesting deeper than kMaxJsonDepth is refused as soon as the parser reaches it.
//     nlohmann's parser is iterative, but copying, dumping (error messages quote values) and
//     destroying a value recurse, so a few hundred kilobytes of brackets would overflow the
//     stack. The files we read nest 3 to 6 levels;
//   - optionally, an object holding the same key twice is refused (safetensors headers and
//     indexes: nlohmann keeps the last of duplicate keys silently, which would hide a tensor
//     whose bytes are still in the buffer, or a conflicting shard assignment).
// Both rules are applied by our own SAX handler, which builds the value as nlohmann's own DOM
// parser does. (A parse callback, nlohmann's other way to see the events, makes its parser
// re-scan what it has built: 480 KB of [{},{},...] took 42 s that way.)
// The parse also polls for cancellation (common/cancel.h) every few thousand values.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/input_file.h"

namespace gptqw {

constexpr int kMaxJsonDepth = 64;

struct JsonRules {
  // Messages read "<file>: <what> is not valid JSON: ..."; empty: "<file>: not valid JSON: ...".
  std::string what;
  bool unique_keys = false;  // refuse an object that holds a key twice
};

// Throws FormatError naming `file`: not valid JSON (with the parser's position), too deep, or
// (rules.unique_keys) a duplicate key.
nlohmann::json parse_json(std::string_view text, const std::filesystem::path& file,
                          const JsonRules& rules = {});

// The whole file, read as common/input_file.h says (regular file, at most kind.max_bytes) and
// parsed as above. IoError / FormatError naming the file.
nlohmann::json read_json_file(const std::filesystem::path& file,
                              const InputKind& kind = kConfigInput, const JsonRules& rules = {});

}  // namespace gptqw
