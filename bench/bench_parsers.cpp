// Parsers and added-token matching on hostile sizes (README "Benchmarks"): their time must grow
// linearly with the input.
//  (a) parse_json on 10 MB of [{},{},...], and the same as a model's config.json (refused: it is
//      not an object), through the reader every loader uses;
//  (b) a tokenizer.json with 10^6 added tokens (the sample model's tokenizer with 10^6 entries
//      appended to added_tokens, in the form Hugging Face writes them), loaded, then a text
//      holding some of them encoded;
//  (c) added-token matching: one 100,000-character added token against a 100,000-character
//      text that holds it nowhere (the quadratic case of a trie walked from every position) and
//      against one that is exactly it; and the pair "a" + "a" * 100,000 + "b" against
//      100,000 "a"s (a match found at every position, and a longer candidate running to the
//      end each time).
//   bench_parsers [--added N] [--json-mb N]
// Writes its inputs into a fresh folder under $TMPDIR (removed at the end).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "common/json.h"
#include "common/text_file.h"
#include "model/config.h"
#include "model/hf_tokenizer.h"

using namespace gptqw;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string added_entry(int64_t id, const std::string& content) {
  return "{\"id\":" + std::to_string(id) + ",\"content\":" + nlohmann::json(content).dump() +
         ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
         "\"special\":true}";
}

// The sample tokenizer.json with `extra` added tokens appended (text surgery rather than a DOM
// round trip, so that building the input costs little next to what is measured).
std::string tokenizer_with_added(const std::string& base, const std::vector<std::string>& extra,
                                 int64_t first_id) {
  nlohmann::json j = nlohmann::json::parse(base);
  std::string added;
  for (size_t i = 0; i < extra.size(); ++i)
    added += "," + added_entry(first_id + int64_t(i), extra[i]);
  j["added_tokens"] = nlohmann::json::array();
  std::string text = j.dump();
  const std::string key = "\"added_tokens\":[]";
  const size_t at = text.find(key);
  std::string original;
  for (const auto& a : nlohmann::json::parse(base)["added_tokens"]) original += "," + a.dump();
  std::string all = original + added;
  if (!all.empty()) all.erase(0, 1);
  text.replace(at, key.size(), "\"added_tokens\":[" + all + "]");
  return text;
}

void write(const fs::path& p, const std::string& s) {
  FILE* f = std::fopen(p.c_str(), "wb");
  if (!f || std::fwrite(s.data(), 1, s.size(), f) != s.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", p.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  long n_added = 1000000, json_mb = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--added")) n_added = std::atol(argv[i + 1]);
    if (!std::strcmp(argv[i], "--json-mb")) json_mb = std::atol(argv[i + 1]);
  }
  std::string tmpl = (fs::temp_directory_path() / "bench_parsers-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return 1;
  const fs::path dir = tmpl;

  // (a)
  {
    const size_t n = size_t(json_mb) * 1024 * 1024 / 3;
    std::string text = "[";
    text.reserve(n * 3 + 2);
    for (size_t i = 0; i < n; ++i) text += i ? ",{}" : "{}";
    text += "]";
    auto t0 = Clock::now();
    nlohmann::json j = parse_json(text, "bench.json");
    const double parse = seconds_since(t0);
    write(dir / "config.json", text);
    t0 = Clock::now();
    std::string why;
    try {
      parse_hf_config(dir / "config.json");
    } catch (const Error& e) {
      why = e.what();
    }
    const double refuse = seconds_since(t0);
    std::printf(
        "(a) %.1f MB of [{},{},...] (%zu objects): parse_json %.3f s; as config.json "
        "read, parsed and refused in %.3f s (%s)\n",
        text.size() / 1e6, j.size(), parse, refuse,
        why.empty() ? "accepted?" : why.substr(why.find(": ") + 2).c_str());
  }

  const std::string base = read_text_file(data_dir() / "models/stories260K/tokenizer.json");
  // (b)
  {
    std::vector<std::string> extra;
    extra.reserve(size_t(n_added));
    for (long i = 0; i < n_added; ++i) extra.push_back("<extra_" + std::to_string(i) + ">");
    const std::string text = tokenizer_with_added(base, extra, 512);
    const fs::path file = dir / "tokenizer.json";
    write(file, text);
    auto t0 = Clock::now();
    HfTokenizer tok(file);
    const double load = seconds_since(t0);
    std::string sample;
    for (int i = 0; i < 2000; ++i)
      sample += "Once upon a time <extra_" + std::to_string(i * 397) + "> there was a cat. ";
    t0 = Clock::now();
    const auto ids = tok.encode(sample, true);
    const double enc = seconds_since(t0);
    std::printf(
        "(b) tokenizer.json with %ld added tokens (%.1f MB): loaded in %.2f s "
        "(vocabulary %d); %zu bytes with 2000 of them encoded in %.3f s (%zu ids)\n",
        n_added, text.size() / 1e6, load, tok.vocab_size(), sample.size(), enc, ids.size());
  }
  // (c)
  {
    const std::string long_token(100000, 'a');
    const fs::path file = dir / "matching.json";
    write(file, tokenizer_with_added(base, {long_token}, 512));
    HfTokenizer tok(file);
    auto time_encode = [&](const std::string& text) {
      auto t0 = Clock::now();
      const auto ids = tok.encode(text, false);
      return std::make_pair(seconds_since(t0), ids.size());
    };
    auto [miss, n_miss] = time_encode(std::string(99999, 'a'));
    auto [hit, n_hit] = time_encode(long_token);
    write(file, tokenizer_with_added(base, {"a", long_token + "b"}, 512));
    HfTokenizer pair(file);
    auto t0 = Clock::now();
    const auto ids = pair.encode(std::string(100000, 'a'), false);
    const double dense = seconds_since(t0);
    std::printf(
        "(c) one 100,000-character added token: a 99,999-character text without it "
        "encoded in %.3f s (%zu ids), the token itself in %.3f s (%zu id); tokens \"a\" + "
        "\"a\"*100000+\"b\" on 100,000 \"a\"s: %.3f s (%zu ids)\n",
        miss, n_miss, hit, n_hit, dense, ids.size());
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}
