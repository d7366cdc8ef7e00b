// One quantization run as both front ends perform it (`gptqw quantize|compare` and the
// workbench's Run): read and check the inputs, run the sequential driver, evaluate the original,
// RTN and GPTQ models on the evaluation text, and assemble the report. Keeping it here means the
// window shows exactly what the CLI prints for the same settings.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "model/model.h"
#include "pipeline/calibration.h"
#include "pipeline/perplexity.h"
#include "pipeline/quantize.h"
#include "pipeline/report.h"

namespace gptqw {

struct RunSpec {
  QuantizeOptions options;
  std::filesystem::path calib_file;
  int nsamples = 128, seqlen = 2048;
  uint64_t seed = 0;
  // Rerun on an earlier run's windows (a report's): calib_file must then be the recorded text
  // (checked by size and SHA-256), and nsamples, seqlen and seed are the record's.
  std::optional<CalibrationRecord> replay;
  std::optional<std::filesystem::path> eval_file;  // no perplexity without one
  PerplexityOptions eval;
  int threads = 0;  // recorded in the report; the caller has applied it
};

// What the run reads, tokenized and checked before the long part starts, so that bad input
// (a short corpus, too many samples, a short evaluation text) fails in seconds.
struct RunInputs {
  CalibrationSet calib;
  std::vector<int32_t> eval_ids;  // empty without an evaluation text
};
RunInputs prepare_run(const Model& model, const RunSpec& spec);

// Runs the driver and the evaluation. `sink` (optional) also receives every quantized layer,
// for export. Perplexity stages report progress as "ppl original", "ppl rtn", "ppl gptq".
// Throws Cancelled when progress asks to stop; nothing is kept then.
Report run_quantization(const Model& model, const RunSpec& spec, const RunInputs& inputs,
                        const LayerSink& sink = {}, const ProgressFn& progress = {},
                        const std::function<void(const LayerReport&)>& on_layer = {});

}  // namespace gptqw
