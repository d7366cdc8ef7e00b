// The run report: everything a quantization run measured, as one JSON document. `gptqw
// quantize/compare --report` writes it and the workbench window reads it (a run made on a
// server opens on a laptop exactly as if it had run there). The schema is documented in
// README.md ("Report JSON"); `schema_version` changes when a field changes meaning.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/environment.h"
#include "io/gptq_export.h"
#include "pipeline/calibration.h"
#include "pipeline/advice.h"
#include "pipeline/calibration_matrix.h"
#include "pipeline/generations.h"
#include "pipeline/perplexity.h"
#include "pipeline/quality.h"
#include "pipeline/quantize.h"

namespace gptqw {

// Version 2 added the evaluation's quality statistics, the perplexities' standard errors and
// the generations; version-1 reports still open (without them).
constexpr int kReportSchemaVersion = 2;

struct ModelSummary {
  std::string path, format, model_type, architecture, dtype;
  int num_layers = 0, hidden_size = 0, intermediate_size = 0, num_heads = 0, num_kv_heads = 0,
      vocab_size = 0;
  int64_t parameters = 0;
  uint64_t bytes_on_disk = 0;
  // Added later (absent from older reports, which read as these defaults): the attention
  // details that tell Llama 3.x and Qwen3 apart.
  int head_dim = 0;
  std::string rope;  // describe_rope(): "theta 500000, llama3 scaling (...)"
  bool qk_norm = false;
  bool tie_word_embeddings = false;
  std::vector<std::string> unrecognized_config_keys;
};
ModelSummary summarize(const WeightSource& w, const std::string& path);

// Weight memory of the whole model: fp16 everywhere vs quantized linears + fp16 rest.
struct MemorySummary {
  int64_t parameters = 0;
  int64_t quantized_parameters = 0;
  uint64_t fp16_bytes = 0;
  uint64_t quantized_bytes = 0;
  double bits_per_weight = 0;  // of the quantized linears alone
  double saving_percent = 0;
};
MemorySummary memory_summary(const ModelConfig& c, const std::vector<LayerReport>& layers);

struct PerplexitySummary {
  std::string text;
  int seqlen = 0, windows = 0;
  int64_t tokens = 0;
  std::optional<double> original, rtn, gptq;
  // Their standard errors (llama.cpp's ±); absent in reports made before they were recorded.
  std::optional<double> original_se, rtn_se, gptq_se;
  double seconds = 0;

  // How much worse a quantized model is than the original: in percent of the original's
  // perplexity, nullopt when either is missing.
  std::optional<double> percent_over_original(const std::optional<double>& quantized) const;
  // The share of RTN's loss that GPTQ recovers, in log-perplexity (mean NLL, where the losses
  // add): (ln rtn - ln gptq) / (ln rtn - ln original). 1: GPTQ as good as the original, 0: no
  // better than RTN, negative: worse. nullopt when a value is missing or RTN lost nothing.
  std::optional<double> gptq_recovered_share() const;
};

struct Report {
  std::string tool_version;
  std::string created;  // ISO 8601, UTC
  std::string backend;
  int threads = 0;
  Environment environment;  // CPU, build, kernels (empty fields in older reports)
  ModelSummary model;
  QuantizeOptions options;
  // Calibration: file, windows and where they start in the tokenized text.
  std::string calib_file;
  uint64_t calib_file_bytes = 0;  // 0 and "" in reports made before they were recorded
  std::string calib_sha256;
  int nsamples = 0, seqlen = 0;
  uint64_t seed = 0;
  int64_t calib_text_tokens = 0;
  std::vector<int64_t> calib_offsets;
  // How the calibration source was read (calibration_corpus.h); older reports: one text file.
  std::string calib_format = "text", calib_field;
  int64_t calib_documents = 1;
  std::vector<std::string> calib_files;
  // Modules left in fp16 because GPTQ loaders cannot load them quantized (they are also in
  // options.skip), unless the run was asked to quantize them anyway (pad_unloadable).
  std::vector<UnloadableModule> kept_for_loaders;
  bool pad_unloadable = false;
  std::vector<LayerReport> layers;
  MemorySummary memory;
  // The first evaluation text's perplexities (the chart's bars), and every text's whole
  // comparison of the quantized models with the original (report version 2).
  std::optional<PerplexitySummary> perplexity;
  std::vector<TextQuality> quality;
  // Side-by-side continuations of the run's prompts (version 2; empty without prompts).
  std::vector<PromptGenerations> generations;
  // `gptqw calibration-matrix`: the same settings with each corpus, on each text (version 2).
  std::optional<CalibrationMatrix> calibration_matrix;
  // gptqw advise: each module's sensitivity, the plans, and the curve (pipeline/advice.h).
  std::optional<Advice> advice;
  // The perplexity passes were cancelled after the quantization had finished (the window keeps
  // it: RunSpec::keep_quantization_on_cancel); perplexity is then empty. Not saved.
  bool evaluation_cancelled = false;
  QuantizeResult timing;  // its layers are left empty; they live in `layers`
  uint64_t peak_rss_bytes = 0;  // the process's peak resident memory when the report was made
};

// What the report records of its calibration windows, to rerun on exactly them.
CalibrationRecord calibration_record(const Report& r);

// The process's peak resident set size so far (getrusage), in bytes.
uint64_t peak_rss_bytes();

// The report of a finished run (without perplexity, which the caller adds when it evaluates):
// model summary, settings, calibration windows, per-layer results, memory, timing, backend.
Report make_report(const Model& model, const CalibrationSet& calibration,
                   const QuantizeOptions& options, QuantizeResult result, int threads);

nlohmann::json to_json(const Report& r);
// Throws FormatError naming the file and field for anything malformed.
Report report_from_json(const nlohmann::json& j, const std::filesystem::path& file);

// Written as every output is (common/output_file.h: destination checked, a uniquely named
// temporary beside it renamed into place); IoError / ConfigError name the file. Read with the
// report size limit (common/input_file.h).
void save_report(const Report& r, const std::filesystem::path& file);
Report load_report(const std::filesystem::path& file);

std::string utc_now_iso8601();

}  // namespace gptqw
