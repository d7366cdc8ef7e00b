// gptqw eval: perplexity of a model on a text file (spec section 5).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "commands.h"
#include "pipeline/perplexity.h"

namespace gptqw::cli {

int cmd_eval(const std::vector<std::string>& words) {
  Args args(words, {"--json", "--quiet"},
            {"--model", "--tokenizer", "--text", "--seqlen", "--max-windows", "--threads"});
  std::string text = args.require("--text");
  PerplexityOptions opt;  // the core's defaults for what is not given
  opt.seqlen = static_cast<int>(args.get_int("--seqlen", opt.seqlen, 2, kMaxSeqlen));
  opt.max_windows = static_cast<int>(args.get_int("--max-windows", opt.max_windows, 0, kMaxWindows));
  int threads = apply_threads(args);
  bool json = args.flag("--json");
  Model model = open_model(args);
  TerminalProgress bar(json || args.flag("--quiet"));
  PerplexityResult r = perplexity_of_file(model, text, opt, bar.callback());
  bar.finish();
  if (json) {
    nlohmann::json j = {{"model", model.path.string()}, {"text", text},   {"ppl", r.ppl},
                        {"nll_mean", r.nll_mean},       {"tokens", r.tokens}, {"windows", r.windows},
                        {"seqlen", r.seqlen},           {"seconds", r.seconds}, {"threads", threads}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("perplexity %.4f  (%d windows x %d tokens of %lld, %.2f s, %d threads)\n", r.ppl,
                r.windows, r.seqlen, static_cast<long long>(r.tokens), r.seconds, threads);
  }
  return 0;
}

}  // namespace gptqw::cli
