// gptqw tokenize: encodes a text file with a tokenizer and prints the ids, either
// space-separated on one line (summary on stderr) or as one JSON object (--json).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "args.h"
#include "commands.h"
#include "common/text_file.h"
#include "model/tokenizer.h"
#include "model/unicode.h"

namespace gptqw::cli {

int cmd_tokenize(const std::vector<std::string>& words) {
  Args args(words, {"--no-special", "--json"}, {"--tokenizer", "--text", "--max-chars"});
  const std::string tok_path = args.require("--tokenizer");
  const std::string text_path = args.require("--text");
  const long max_chars = args.get_int("--max-chars", 0, 1, kMaxChars);
  const bool add_special = !args.flag("--no-special");

  auto tokenizer = load_tokenizer(tok_path);
  // A code point is at most 4 bytes: read no more than the requested prefix can need.
  size_t max_bytes = max_chars > 0 && size_t(max_chars) < SIZE_MAX / 4 ? size_t(max_chars) * 4 : 0;
  std::string text = read_text_file(text_path, max_bytes);
  std::string_view view = text;
  if (max_chars > 0) view = unicode::prefix_cps(view, size_t(max_chars));
  const size_t chars = unicode::count_cps(view);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<int32_t> ids = tokenizer->encode(view, add_special);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (args.flag("--json")) {
    nlohmann::json out;
    out["tokenizer"] = tok_path;
    out["kind"] = tokenizer->kind();
    out["text"] = text_path;
    out["chars"] = chars;
    out["bytes"] = view.size();
    out["add_special"] = add_special;
    out["seconds"] = seconds;
    out["n_ids"] = ids.size();
    out["ids"] = ids;
    std::string s = out.dump() + "\n";
    std::fwrite(s.data(), 1, s.size(), stdout);
  } else {
    std::string line;
    line.reserve(ids.size() * 6 + 1);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) line += ' ';
      line += std::to_string(ids[i]);
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fprintf(stderr, "%zu ids, %zu chars, %.3f s (%s)\n", ids.size(), chars, seconds,
                 tokenizer->kind().c_str());
  }
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace gptqw::cli
