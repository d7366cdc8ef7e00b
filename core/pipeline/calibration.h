// Calibration data: nsamples windows of seqlen tokens drawn from a text, seeded, as the
// reference's get_wikitext2 does (random start offsets into the tokenized text). The offsets
// go into the report, so anyone can rebuild exactly the same windows.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/tokenizer.h"

namespace gptqw {

struct CalibrationSet {
  std::filesystem::path source;
  uint64_t source_bytes = 0;   // the text file's size and SHA-256, so that a rerun can check
  std::string source_sha256;   // it reads the same text (empty when built from ids alone)
  int seqlen = 0;
  uint64_t seed = 0;
  int64_t text_tokens = 0;       // tokens of the whole text (BOS included)
  std::vector<int64_t> offsets;  // start of each window in the text's tokens
  std::vector<int32_t> tokens;   // the windows back to back: offsets.size() * seqlen ids
  int nsamples() const { return static_cast<int>(offsets.size()); }
};

// Windows from already tokenized text. Throws ConfigError when the text is shorter than one
// window plus one token, or when nsamples * seqlen exceeds the text's tokens (the windows
// would mostly repeat the same text).
CalibrationSet sample_calibration(const std::vector<int32_t>& text_ids, int nsamples, int seqlen,
                                  uint64_t seed);

// Reads and tokenizes the file (BOS at the start, as the reference's tokenizer call does);
// errors name the file.
CalibrationSet sample_calibration(const Tokenizer& tokenizer, const std::filesystem::path& text,
                                  int nsamples, int seqlen, uint64_t seed);

// Rebuilds a set from recorded offsets (a report's), checking they fit the text.
CalibrationSet calibration_from_offsets(const std::vector<int32_t>& text_ids,
                                        const std::vector<int64_t>& offsets, int seqlen);

// What a report records of its calibration windows: enough to rebuild exactly the same ones.
struct CalibrationRecord {
  std::filesystem::path file;  // as the run named it
  uint64_t file_bytes = 0;     // 0 and "" in reports made before they were recorded
  std::string sha256;
  int64_t text_tokens = 0;
  int seqlen = 0;
  uint64_t seed = 0;
  std::vector<int64_t> offsets;
};

// The windows of an earlier run, from `text` (the recorded file or a copy of it). Throws
// ConfigError naming both files when `text` is not the recorded one (size or SHA-256 differ),
// and when its tokens, with this tokenizer, are not the recorded count (another model's
// tokenizer would put the offsets on other text).
CalibrationSet calibration_replay(const Tokenizer& tokenizer, const std::filesystem::path& text,
                                  const CalibrationRecord& record);

}  // namespace gptqw
