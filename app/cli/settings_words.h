// The command line's words for what a run's settings meet (pipeline/run_settings.h) and what an
// export meets (io/gptq_export.h): every way out named by the flag that takes it.
#pragma once

#include <string>
#include <vector>

#include "io/gptq_export.h"
#include "pipeline/run_settings.h"

namespace gptqw::cli {

// "warning: mlp.down_proj [64, 172]: <message>. Use --group-size -1 (...), or leave the module
// unquantized with --skip-modules mlp.down_proj (stored as a float weight, listed in
// modules_not_quantized)."
std::string describe(const ExportIssue& issue);

// A problem as the terminal shows it: one entry for a problem that stops the run (its message
// and its ways out), one line per module for the notes on modules kept in fp16, one per issue
// (describe() above) for an export's.
std::vector<std::string> describe(const SettingsProblem& problem);

}  // namespace gptqw::cli
