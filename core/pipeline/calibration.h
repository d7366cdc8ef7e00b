// Calibration data: nsamples windows of seqlen tokens drawn from a text, seeded, as the
// reference's get_wikitext2 does (random start offsets into the tokenized text). The offsets
// go into the report, so anyone can rebuild exactly the same windows.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "pipeline/calibration_corpus.h"

namespace gptqw {

struct CalibrationSet {
  std::filesystem::path source;
  // How the source was read (calibration_corpus.h): "text", "jsonl" or "folder", the JSONL
  // field, the number of documents joined and, for a folder, its files.
  std::string format = "text";
  std::string field;
  int64_t documents = 1;
  std::vector<std::string> files;
  // The joined text's size and SHA-256 (for a text file, the file's), so that a rerun can check
  // it reads the same text (0 and empty when built from ids alone).
  uint64_t source_bytes = 0;
  std::string source_sha256;
  int seqlen = 0;
  uint64_t seed = 0;
  int64_t text_tokens = 0;       // tokens of the whole text (BOS included)
  std::vector<int64_t> offsets;  // start of each window in the text's tokens
  std::vector<int32_t> tokens;   // the windows back to back: offsets.size() * seqlen ids
  int nsamples() const { return static_cast<int>(offsets.size()); }
};

// Whether a text of `tokens` tokens holds nsamples windows of seqlen tokens: not when it is
// shorter than one window plus one token, nor when nsamples * seqlen exceeds its tokens (the
// windows would mostly repeat the same text). The run's settings check (run_settings.h) and
// sample_calibration ask this one question.
struct CalibrationShortfall {
  enum class Kind { none, shorter_than_a_window, too_few_windows };
  Kind kind = Kind::none;
  int64_t windows = 0;  // windows of seqlen tokens the text holds
  std::string message;  // why not, in words ("" for none)
};
CalibrationShortfall calibration_shortfall(int64_t tokens, int nsamples, int seqlen);

// Windows from already tokenized text. Throws ConfigError with calibration_shortfall()'s
// message when the text cannot hold them.
CalibrationSet sample_calibration(const std::vector<int32_t>& text_ids, int nsamples, int seqlen,
                                  uint64_t seed);

// Reads the corpus (a text file, a JSONL file or a folder of .txt files: calibration_corpus.h)
// and tokenizes it once (BOS at the start where the tokenizer adds one, as the reference's
// tokenizer call does); errors name the file.
// text_ids (optional) receives the whole text's tokens (to draw further windows from it).
CalibrationSet sample_calibration(const Tokenizer& tokenizer, const std::filesystem::path& source,
                                  int nsamples, int seqlen, uint64_t seed,
                                  const CalibrationOptions& options = {},
                                  std::vector<int32_t>* text_ids = nullptr);

// Rebuilds a set from recorded offsets (a report's), checking they fit the text.
CalibrationSet calibration_from_offsets(const std::vector<int32_t>& text_ids,
                                        const std::vector<int64_t>& offsets, int seqlen);

// What a report records of its calibration windows: enough to rebuild exactly the same ones.
struct CalibrationRecord {
  std::filesystem::path file;  // as the run named it
  uint64_t file_bytes = 0;     // 0 and "" in reports made before they were recorded
  std::string sha256;            // of the joined text (the file's, for a text file)
  std::string field;             // the JSONL field read; empty for other formats
  int64_t text_tokens = 0;
  int seqlen = 0;
  uint64_t seed = 0;
  std::vector<int64_t> offsets;
};

// The windows of an earlier run, from `source` (the recorded corpus or a copy of it, read with
// the same options). Throws ConfigError naming both when its joined text is not the recorded
// one (size or SHA-256 differ), and when its tokens, with this tokenizer, are not the recorded
// count (another model's tokenizer would put the offsets on other text).
CalibrationSet calibration_replay(const Tokenizer& tokenizer, const std::filesystem::path& source,
                                  const CalibrationRecord& record,
                                  const CalibrationOptions& options = {});

}  // namespace gptqw
