// Opening user files for reading, with one rule for every reader (texts, config.json,
// tokenizer.json, tokenizer.bin, safetensors shards and their index, llama2.c checkpoints,
// reports, the files an export copies): the file is opened once, without blocking, and the
// checks are made on that open descriptor (fstat): it must be a regular file (a FIFO would block
// a reader for ever, /dev/zero would be read until memory runs out) no larger than the limit of
// its kind, and it is then read or mapped from the same descriptor. Every error names the file.
// Nothing is probed by path first and opened again later.
//
// Files a model folder refers to (its shards, config.json, tokenizer.json, the files an export
// copies) must also stay inside that folder once symbolic links are resolved: see
// resolve_inside().
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>

namespace gptqw {

// What a reader expects and how much of it: the limits are stated in README.md ("Input
// limits"). Each is far above what a real file of the kind needs and far below what would make
// holding it (and what is built from it) a problem.
struct InputKind {
  const char* noun;       // "a text file": in "is a directory, expected a text file"
  const char* plural;     // "texts": in "texts over 256 MiB are refused"
  uint64_t max_bytes;     // larger files are refused before a byte is read
  const char* hint = "";  // appended to the too-large message, e.g. " (use an excerpt)"
};

constexpr uint64_t kMiB = uint64_t(1) << 20;

// Calibration and evaluation texts, and `gptqw tokenize --text`.
inline constexpr InputKind kTextInput{"a text file", "texts", 256 * kMiB, " (use an excerpt)"};
// config.json, quantize_config.json, tokenizer_config.json, generation_config.json,
// special_tokens_map.json (real ones: a few KB; chat templates make some tokenizer_config.json
// files a few hundred KB).
inline constexpr InputKind kConfigInput{"a JSON configuration file", "configuration files",
                                        16 * kMiB};
// tokenizer.json (real ones: 2 to 35 MB).
inline constexpr InputKind kTokenizerJsonInput{"a tokenizer.json", "tokenizer.json files",
                                               256 * kMiB};
// llama2.c tokenizer.bin (real ones: under 1 MB).
inline constexpr InputKind kTokenizerBinInput{"a llama2.c tokenizer file",
                                              "llama2.c tokenizer files", 64 * kMiB};
// model.safetensors.index.json (real ones: under 200 KB).
inline constexpr InputKind kIndexInput{"a safetensors index", "safetensors indexes", 64 * kMiB};
// Reports written by gptqw --report (a 7B model's: about 20 MB).
inline constexpr InputKind kReportInput{"a report JSON file", "reports", 256 * kMiB};
// Other files an export copies from the model folder (LICENSE, tokenizer.model).
inline constexpr InputKind kCopiedInput{"a file", "copied files", 64 * kMiB};
// Weights (safetensors shards, llama2.c checkpoints): memory-mapped, never read whole, so any
// size the file system holds.
inline constexpr InputKind kWeightsInput{"a weights file", "weights files", UINT64_MAX};

// A regular file opened for reading (RAII). The constructor opens `path` once (O_NONBLOCK, so
// that a FIFO cannot block the open), checks the descriptor with fstat and refuses with an
// IoError naming the file: a missing file, a directory, a FIFO, socket or device, an unreadable
// file, and (FormatError) a file over kind.max_bytes. 0 < prefix < kind.max_bytes: only the
// first `prefix` bytes will be read, and a larger file is accepted.
class InputFile {
 public:
  InputFile(const std::filesystem::path& path, const InputKind& kind, uint64_t prefix = 0);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  int fd() const { return m_fd; }
  uint64_t size() const { return m_size; }  // from fstat
  // The file's identity (st_dev, st_ino): two paths naming the same file give the same pair.
  std::pair<uint64_t, uint64_t> identity() const { return m_identity; }
  const std::filesystem::path& path() const { return m_path; }

  // The whole file (at most kind.max_bytes: a file that grew past the limit since it was
  // opened is refused), or its prefix, read from the descriptor in chunks; polls for
  // cancellation between them.
  std::string read();

 private:
  std::filesystem::path m_path;
  InputKind m_kind;
  uint64_t m_prefix = 0;
  int m_fd = -1;
  uint64_t m_size = 0;
  std::pair<uint64_t, uint64_t> m_identity{0, 0};
};

// InputFile(path, kind).read().
std::string read_input_file(const std::filesystem::path& path, const InputKind& kind);

// `name` (a path relative to the folder, as a model folder or its index names it) inside the
// folder `dir`, with every symbolic link resolved. Throws FormatError naming the path and where
// it leads when it leaves the folder (a "../" in an index, a link to a file elsewhere); returns
// the resolved path otherwise (which need not exist: opening it says so).
std::filesystem::path resolve_inside(const std::filesystem::path& dir,
                                     const std::filesystem::path& name);

// p is q or lies inside q; both absolute and normalised.
bool path_is_within(const std::filesystem::path& p, const std::filesystem::path& q);

// "the text of the OS error" for errno values.
std::string errno_text(int err);

}  // namespace gptqw
