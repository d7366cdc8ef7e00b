// gptqw: the headless face of GPTQ Workbench. Every command prints a clear one-line error
// (naming the file and the problem) and exits non-zero on bad input; nothing crashes.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "cli_common.h"
#include "commands.h"
#include "common/error.h"

namespace {

struct Command {
  const char* name;
  int (*run)(const std::vector<std::string>&);
  const char* usage;
};

const Command kCommands[] = {
    {"inspect", gptqw::cli::cmd_inspect,
     "--model DIR|FILE.bin [--tokenizer FILE] [--json]   model summary and tensor listing"},
    {"tokenize", gptqw::cli::cmd_tokenize,
     "--tokenizer PATH --text FILE [--max-chars N] [--no-special] [--json]"},
    {"eval", gptqw::cli::cmd_eval,
     "--model DIR|FILE.bin [--tokenizer FILE] --text FILE [--seqlen N] [--max-windows N] "
     "[--against ORIGINAL [--eval-precision P] [--precision-of ln-ppl-ratio|kld]] "
     "[--threads N] [--json] [--quiet]   perplexity; with --against, KL divergence and the "
     "other statistics against the original"},
    {"quantize", gptqw::cli::cmd_quantize,
     "--model M (--calib FILE [--nsamples 128] [--seqlen 2048] [--seed 0] | --calib-from "
     "REPORT.json [--calib FILE]) [--method gptq|rtn] [--bits 4] [--group-size 128] [--act-order] "
     "[--sym|--asym] [--static-groups] [--mse] [--exact-ties] [--damp 0.01] [--block-size 128] "
     "[--no-true-sequential] [--skip-modules M[,M]] [--pad-unloadable] [--calib-field NAME] "
     "[--eval FILE]... [--eval-seqlen N] [--eval-max-windows N] [--eval-precision P] "
     "[--prompt TEXT]... [--prompts FILE] [--gen-tokens N] [--report FILE.json] "
     "[--out DIR [--force] [--shard-size GB]] [--plan ADVICE.json [--budget BPW]] "
     "[--device auto|cpu|cuda] [--threads N] [--json] [--quiet]"},
    {"compare", gptqw::cli::cmd_compare,
     "(the options of quantize but --method)   GPTQ and RTN side by side; --out exports GPTQ"},
    {"calibration-matrix", gptqw::cli::cmd_calibration_matrix,
     "--model M --calib FILE --calib FILE... --eval FILE... (the options of compare but --out)   "
     "GPTQ and RTN with each corpus, evaluated on each text: perplexity and KL divergence"},
    {"advise", gptqw::cli::cmd_advise,
     "--model M --calib FILE --budget BPW... [--try-bits 2,3,4,8] [--try-groups 32,64,128,-1] "
     "[--held-out 8] [--measure kld|scaled] [--anchor 3:128] [--keep MODULE=BITS:GROUP|fp16]... "
     "[--check] [--curve --eval FILE] (and the GPTQ options of quantize)   each module's "
     "sensitivity and a mixed-precision plan per budget; export one with quantize --plan "
     "REPORT [--budget BPW]"},
    {"generate", gptqw::cli::cmd_generate,
     "--model DIR|FILE.bin [--tokenizer FILE] [--prompt TEXT]... [--prompts FILE] [--tokens N] "
     "[--temperature T] [--top-k K] [--top-p P] [--seed S] [--with CKPT]... [--json]   "
     "continuations, side by side with --with"},
};

void print_usage(FILE* out) {
  std::fprintf(out, "gptqw %s: GPTQ Workbench command-line tool\n\nusage:\n", GPTQW_VERSION);
  for (const auto& c : kCommands) std::fprintf(out, "  gptqw %s %s\n", c.name, c.usage);
  std::fprintf(out, "  gptqw --version\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("gptqw %s\n", GPTQW_VERSION);
    return 0;
  }
  for (const auto& c : kCommands) {
    if (std::strcmp(argv[1], c.name)) continue;
    std::vector<std::string> words(argv + 2, argv + argc);
    gptqw::cli::install_interrupt_handler();
    try {
      return c.run(words);
    } catch (const gptqw::cli::UsageError& e) {
      std::fprintf(stderr, "gptqw %s: %s\nusage: gptqw %s %s\n", c.name, e.what(), c.name,
                   c.usage);
      return 2;
    } catch (const gptqw::Cancelled&) {
      std::fprintf(stderr, "gptqw %s: cancelled\n", c.name);
      return 130;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gptqw %s: error: %s\n", c.name, e.what());
      return 1;
    }
  }
  std::fprintf(stderr, "gptqw: unknown command '%s'\n", argv[1]);
  print_usage(stderr);
  return 2;
}
