// Command-line options of one gptqw command: "--name value" and "--flag". Each command states
// the options it accepts; anything else is a usage error naming the option.
#pragma once

#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace gptqw::cli {

// The ranges of the numeric options (README, "Command-line reference"): each far beyond any real
// run, and small enough that nothing computed from it overflows or asks for absurd memory.
constexpr long kMaxThreads = 1024;         // --threads (0: all cores)
constexpr long kMaxSeqlen = 1L << 20;      // --seqlen, --eval-seqlen
constexpr long kMaxSamples = 1L << 20;     // --nsamples
constexpr long kMaxGroupSize = 1L << 20;   // --group-size (-1: one grid per row)
constexpr long kMaxBlockSize = 1L << 16;   // --block-size
constexpr long kMaxWindows = 1L << 30;     // --max-windows, --eval-max-windows (0: all)
constexpr long kMaxNewTokens = 1L << 20;   // generate --tokens
constexpr long kMaxChars = 1L << 40;       // tokenize --max-chars
constexpr double kMinShardGB = 0.001, kMaxShardGB = 1e6;  // --shard-size, in 10^9 bytes
constexpr double kMinPrecision = 1e-9, kMaxPrecision = 1e6;  // eval --eval-precision (relative)

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Args {
 public:
  // flags take no value; valued options take the next word.
  Args(const std::vector<std::string>& words, const std::set<std::string>& flags,
       const std::set<std::string>& valued);
  bool flag(const std::string& name) const { return m_flags.count(name) > 0; }
  std::optional<std::string> get(const std::string& name) const;  // the last one given
  std::vector<std::string> get_all(const std::string& name) const;  // every one, in order
  std::string require(const std::string& name) const;  // UsageError when absent
  std::string get_or(const std::string& name, const std::string& fallback) const;
  // The option's comma-separated pieces ("a,b,,c": "a", "b", "", "c"), the fallback's when
  // absent; an empty value has none.
  std::vector<std::string> get_list(const std::string& name, const std::string& fallback) const;
  // The option as an integer in [min, max] (the fallback when absent). Anything else, a value
  // out of the range or too large for 64 bits included, is a UsageError naming the option and
  // the range: nothing wraps around.
  long get_int(const std::string& name, long fallback, long min, long max) const;
  // The option as a finite real number in [min, max]; nan, inf and values out of range are a
  // UsageError naming the option and the range.
  double get_double(const std::string& name, double fallback, double min, double max) const;

 private:
  std::set<std::string> m_flags;
  std::vector<std::pair<std::string, std::string>> m_values;
};

}  // namespace gptqw::cli
