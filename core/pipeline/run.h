// One quantization run as both front ends perform it (`gptqw quantize|compare` and the
// workbench's Run): read and check the inputs, run the sequential driver, evaluate the original,
// RTN and GPTQ models on the evaluation text, and assemble the report. Keeping it here means the
// window shows exactly what the CLI prints for the same settings.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "common/error.h"
#include "io/gptq_export.h"
#include "model/model.h"
#include "pipeline/calibration.h"
#include "pipeline/generations.h"
#include "pipeline/perplexity.h"
#include "pipeline/quantize.h"
#include "pipeline/report.h"

namespace gptqw {

// One run's settings. Default-constructed, they are the defaults of both front ends (the
// command line's flags and the window's settings form), with QuantizeOptions' and
// PerplexityOptions'.
struct RunSpec {
  QuantizeOptions options;
  std::filesystem::path calib_file;
  int nsamples = 128, seqlen = 2048;
  uint64_t seed = 0;
  // Rerun on an earlier run's windows (a report's): calib_file must then be the recorded text
  // (checked by size and SHA-256), and nsamples, seqlen and seed are the record's.
  std::optional<CalibrationRecord> replay;
  // The evaluation texts (none: no evaluation). On each, the original, RTN and GPTQ models run
  // in lockstep: their perplexities with standard errors and each quantized model's KL
  // divergence and agreement with the original (report.quality, one entry per text).
  std::vector<std::filesystem::path> eval_files;
  PerplexityOptions eval;
  // Stop evaluating a text once the 95% interval of ln(PPL_q / PPL_original) is narrower than
  // this share of its value for every quantized model (--eval-precision).
  std::optional<double> eval_precision;
  // Prompts the original, RTN and GPTQ models continue side by side after the evaluation
  // (report.generations); none without prompts.
  GenerationSpec generation;
  int threads = 0;  // recorded in the report; the caller has applied it
  CalibrationOptions calib_options;  // JSONL field; how a folder or JSONL file is read
  // Loader compatibility (see unloadable_modules in io/gptq_export.h): by default, modules that
  // GPTQModel, AutoGPTQ and vLLM cannot load quantized with these settings are left in fp16
  // (added to options.skip, listed in the report and in the export's modules_not_quantized).
  // true quantizes them anyway; an export then writes them zero-padded (GPTQModel's layout,
  // which no mainstream loader reads back).
  bool pad_unloadable = false;
  // A cancel that arrives during the perplexity passes keeps the finished quantization (the
  // report without perplexity, Report::evaluation_cancelled set) instead of discarding it: the
  // window's choice. The command line stops outright.
  bool keep_quantization_on_cancel = false;
};

// effective_options() found no module that GPTQ loaders could load quantized with these
// settings. The message states the problem and the modules; the ways out (another group size,
// or quantizing them anyway, padded) are for each front end to word with its own controls.
class NothingLoadable : public ConfigError {
 public:
  NothingLoadable(const std::string& message, std::vector<UnloadableModule> modules)
      : ConfigError(message), modules(std::move(modules)) {}
  std::vector<UnloadableModule> modules;
};

// The options a run really uses: spec.options plus, unless spec.pad_unloadable, the modules
// kept in fp16 for the loaders (returned in `kept`, with the reasons). Throws NothingLoadable
// when that leaves nothing to quantize.
QuantizeOptions effective_options(const RunSpec& spec, const ModelConfig& config,
                                  std::vector<UnloadableModule>* kept = nullptr);

// What the run reads, tokenized and checked before the long part starts, so that bad input
// (a short corpus, too many samples, a short evaluation text) fails in seconds.
struct RunInputs {
  CalibrationSet calib;
  std::vector<std::vector<int32_t>> eval_ids;  // one per evaluation text
  QuantizeOptions options;        // effective_options(): what the driver runs with
  std::vector<UnloadableModule> kept_for_loaders;
};
RunInputs prepare_run(const Model& model, const RunSpec& spec);

// spec.eval_files tokenized as the perplexity protocol reads them (BOS first where the tokenizer
// adds one); ConfigError naming a file shorter than one evaluation window.
std::vector<std::vector<int32_t>> read_eval_texts(const Model& model, const RunSpec& spec);

// Runs the driver and the evaluation. `sink` (optional) also receives every quantized layer,
// for export. The evaluation of each text reports progress as "evaluate <file name>"; every
// report carries Progress::run_fraction, the whole run's share done (stages weighted by
// run_stage_costs()). Throws Cancelled when progress asks to stop; nothing is kept then
// (unless spec.keep_quantization_on_cancel and the quantization had finished).
Report run_quantization(const Model& model, const RunSpec& spec, const RunInputs& inputs,
                        const LayerSink& sink = {}, const ProgressFn& progress = {},
                        const std::function<void(const LayerReport&)>& on_layer = {});

// Estimated floating-point work of a run's stages, to weigh them in one progress fraction and
// to say before a run what evaluation costs: quantization about 6 P T (the calibration
// forward, the Hessians, the GPTQ updates and the error metrics, each about a forward pass of
// 2 P T for the blocks' P linear weights and T calibration tokens) plus each block's
// factorizations (2/3 K^3 per distinct input) and metric products (N K^2 per module and
// method); each perplexity pass 2 (P + V H) T_eval with the output head.
struct RunCosts {
  double quantize = 0;
  double eval_pass = 0;  // one model's perplexity pass
  int eval_passes = 0;   // original, RTN, GPTQ (those that run)
  double total() const { return quantize + eval_pass * eval_passes; }
};
RunCosts run_stage_costs(const ModelConfig& config, const QuantizeOptions& options,
                         int64_t calib_tokens, int64_t eval_tokens);

// This model's forward speed on this machine, in flop/s of its linear layers (2 P T per block):
// the best of two runs of block 0 on 4096 tokens (sequences of seqlen, as the perplexity pass
// batches them) of constant activations. With run_stage_costs() it says before a run what the
// evaluation will take.
double measure_forward_rate(const Model& model, int seqlen);

// Calibration sensitivity: `base` (its settings, window counts and evaluation options;
// base.eval_files are the texts) run once per corpus. Progress: "calibration i/n: <stage>", each
// corpus an equal share. `first` (optional) receives the first corpus's whole report (layers,
// memory, timing).
CalibrationMatrix calibration_matrix(const Model& model, const RunSpec& base,
                                     const std::vector<std::filesystem::path>& calibs,
                                     const ProgressFn& progress = {}, Report* first = nullptr);

}  // namespace gptqw
