// What several gptqw commands share: opening the model named by --model/--tokenizer, the
// --threads option, and the terminal progress line.
#pragma once

#include <chrono>
#include <string>

#include "args.h"
#include "common/progress.h"
#include "model/model.h"
#include "pipeline/generations.h"

namespace gptqw::cli {

// --model DIR|FILE.bin [--tokenizer PATH]
Model open_model(const Args& args, bool with_tokenizer = true);

// SIGINT / SIGTERM request a clean stop (common/cancel.h): every long loop, loading and
// tokenizing included, and the progress callbacks then throw Cancelled within moments, and
// nothing half-written is left.
void install_interrupt_handler();
bool interrupted();

// --threads N (default: all cores). Returns the count in use.
int apply_threads(const Args& args);

// A one-line progress display on stderr ("eval  block 3/5  42%  0:01 elapsed, ~0:02 left"),
// redrawn in place on a terminal and printed every 10% otherwise. Silent when quiet.
class TerminalProgress {
 public:
  explicit TerminalProgress(bool quiet);
  ProgressFn callback();
  void finish();

 private:
  bool m_quiet;
  bool m_tty;
  int m_last_decile = -1;
  bool m_drawn = false;
  std::chrono::steady_clock::time_point m_start, m_last_draw;
};

std::string format_duration(double seconds);

// --prompt TEXT (repeatable) and the lines of --prompts FILE, in that order.
std::vector<std::string> prompts_of(const Args& args);

// One prompt's continuations side by side: the reference (the first model's) and each other
// model's, marked "|>" where it leaves the reference's.
void print_generations(const PromptGenerations& g);

}  // namespace gptqw::cli
