// Progress reporting for long work (perplexity, calibration, quantization, export).
// The callback runs on the worker thread; it returns false to ask the work to stop, which the
// work honours at its next safe point (between windows, modules or blocks) by throwing
// gptqw::Cancelled before anything is written.
#pragma once

#include <functional>
#include <string>

namespace gptqw {

struct Progress {
  std::string stage;   // "perplexity", "calibration", "gptq", "rtn", "export", ...
  int block = -1;      // decoder block index, -1 when not applicable
  int n_blocks = 0;    // number of blocks, 0 when not applicable
  std::string module;  // "self_attn.q_proj", ... or empty
  double fraction = 0; // overall fraction of this stage done, 0..1
  // When the stage is one part of a longer run (quantization, then perplexity passes): the
  // fraction of the whole run done, 0..1, for one bar and one time-left estimate; -1 otherwise.
  double run_fraction = -1;
};

using ProgressFn = std::function<bool(const Progress&)>;

// Calls fn if set; throws Cancelled when it asks to stop, or when cancellation was requested
// (common/cancel.h).
void report_progress(const ProgressFn& fn, const Progress& p);

}  // namespace gptqw
