// Shared helpers of the fuzz targets: the rule for which exceptions are expected rejections,
// and a per-process scratch folder for parsers that only take a path.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace gptqw_fuzz {

// GPTQW_FUZZ_VERBOSE=1 prints every rejection (to see why a seed or regression input is
// refused when replaying it by hand).
inline bool verbose() {
  static const bool v = std::getenv("GPTQW_FUZZ_VERBOSE") != nullptr;
  return v;
}

// Runs f. gptqw::Error (IoError, FormatError, ConfigError) and nlohmann::json::exception are
// how a parser rejects bad input: expected. Any other exception (std::bad_alloc,
// std::length_error, std::out_of_range, ...) escaping a parser is a finding: reported and
// aborted on, so that libFuzzer saves the input.
template <class F>
bool expect_rejection(F&& f) {
  try {
    f();
    return true;
  } catch (const gptqw::Error& e) {
    if (verbose()) std::fprintf(stderr, "rejected (gptqw): %s\n", e.what());
  } catch (const nlohmann::json::exception& e) {
    if (verbose()) std::fprintf(stderr, "rejected (json): %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FINDING: unexpected exception %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "FINDING: unexpected non-std exception\n");
    std::abort();
  }
  return false;
}

// A finding that is not a crash (a broken invariant): print and abort.
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

// A loaded tokenizer's invariants on `text`, with and without special tokens: every id is inside
// the vocabulary, and decoding the ids does not fail.
template <class Tokenizer>
void check_encode_decode(const Tokenizer& tok, const std::string& text) {
  for (bool special : {true, false}) {
    std::vector<int32_t> ids = tok.encode(text, special);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.vocab_size())
        finding("encode produced id " + std::to_string(id) + " outside vocab " +
                std::to_string(tok.vocab_size()));
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
  }
}

// /tmp/gptqw-fuzz-<name>-<pid>/, made on first use, removed at normal exit (a crashed run
// leaves it behind: it is small, and its pid names it).
inline const std::filesystem::path& scratch_dir(const char* name) {
  static const std::filesystem::path dir = [&] {
    std::filesystem::path d = std::filesystem::temp_directory_path() /
                              ("gptqw-fuzz-" + std::string(name) + "-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    static std::filesystem::path to_remove = d;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(to_remove, ec);
    });
    return d;
  }();
  return dir;
}

inline void write_file(const std::filesystem::path& p, const void* data, size_t size) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) finding("harness: cannot write " + p.string());
}

inline void write_file(const std::filesystem::path& p, std::string_view s) {
  write_file(p, s.data(), s.size());
}

}  // namespace gptqw_fuzz
