#include "pipeline/run.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "common/error.h"
#include "common/text_file.h"
#include "model/llama.h"
#include "model/rope_scaling.h"
#include "quant/packing.h"

namespace gptqw {

QuantizeOptions effective_options(const RunSpec& spec, const ModelConfig& config,
                                  std::vector<UnloadableModule>* kept) {
  QuantizeOptions o = spec.options;
  if (kept) kept->clear();
  if (spec.pad_unloadable) return o;
  std::vector<UnloadableModule> added;
  for (const UnloadableModule& m : unloadable_modules(config, o.gptq.quant)) {
    if (o.skip.count(m.kind)) continue;  // the user keeps it in fp16 already
    if (!o.per_module.empty()) {
      // A plan: only the modules that take the global setting are kept, each on its own (the
      // plan's own settings were checked against the loaders when it was made).
      for (int b = 0; b < config.num_layers; ++b)
        if (!o.per_module.count({b, m.kind})) o.per_module[{b, m.kind}] = {16, -1, true};
      added.push_back(m);
      continue;
    }
    o.skip.insert(m.kind);
    added.push_back(m);
  }
  if (o.skip.size() == size_t(kNumLinears)) {
    std::string why;
    for (const UnloadableModule& m : added)
      why += "\n  " + std::string(linear_name(m.kind)) + " [" + std::to_string(m.out_features) +
             ", " + std::to_string(m.in_features) + "]: " + m.reason;
    throw NothingLoadable("no linear module of this model can be quantized in a form GPTQ "
                          "loaders (GPTQModel, AutoGPTQ, vLLM) read with " +
                              o.gptq.quant.describe() + ":" + why,
                          added);
  }
  if (kept) *kept = std::move(added);
  return o;
}

namespace {

// The weights of one block's seven linear layers: 2 P flops per token through the block.
double block_linear_weights(const ModelConfig& c) {
  double P = 0;
  for (LinearKind k : kAllLinears) {
    const auto [N, K] = linear_shape(c, k);
    P += double(N) * double(K);
  }
  return P;
}

}  // namespace

RunCosts run_stage_costs(const ModelConfig& c, const QuantizeOptions& o, int64_t calib_tokens,
                         int64_t eval_tokens) {
  RunCosts r;
  const double P = block_linear_weights(c);
  const int methods = int(o.run_gptq) + int(o.run_rtn);
  double per_block = 0;
  for (LinearKind k : kAllLinears) {
    const auto [N, K] = linear_shape(c, k);
    if (!o.skip.count(k)) per_block += double(N) * double(K) * double(K) * (methods + 1);
  }
  const double h = c.hidden_size, q = double(c.num_heads) * c.head_dim, m = c.intermediate_size;
  per_block += 2.0 / 3.0 * (h * h * h + q * q * q + h * h * h + m * m * m);
  r.quantize = c.num_layers * (6.0 * P * double(calib_tokens) + per_block);
  r.eval_pass = 2.0 * (c.num_layers * P + double(c.vocab_size) * h) * double(eval_tokens);
  r.eval_passes = eval_tokens > 0 ? 1 + methods : 0;
  return r;
}

double measure_forward_rate(const Model& model, int seqlen) {
  const ModelConfig& c = model.config();
  if (c.num_layers == 0) return 0;
  const int S = std::clamp(seqlen, 2, std::max(2, c.max_position_embeddings));
  const int T = std::max(1, 4096 / S) * S;
  const BlockWeights block = model.weights->block(0);
  const Rope rope = make_rope(c, S);
  const double P = block_linear_weights(c);
  double best = 0;
  for (int rep = 0; rep < 2; ++rep) {
    Matrix x = Matrix::Constant(T, c.hidden_size, 0.01f);
    const auto t0 = std::chrono::steady_clock::now();
    block_forward(c, block, rope, x, S);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, 2.0 * P * T / s);
  }
  return best;
}

RunInputs prepare_run(const Model& model, const RunSpec& spec) {
  if (!model.tokenizer) throw ConfigError(file_msg(model.path, "was opened without a tokenizer"));
  RunInputs in;
  in.options = effective_options(spec, model.config(), &in.kept_for_loaders);
  if (spec.replay) {
    // The report's windows, from its corpus read as that run read it.
    CalibrationOptions read_as = spec.calib_options;
    if (!spec.replay->field.empty()) read_as.jsonl_field = spec.replay->field;
    in.calib = calibration_replay(*model.tokenizer, spec.calib_file, *spec.replay, read_as);
  } else {
    in.calib = sample_calibration(*model.tokenizer, spec.calib_file, spec.nsamples, spec.seqlen,
                                  spec.seed, spec.calib_options);
  }
  in.eval_ids = read_eval_texts(model, spec);
  return in;
}

std::vector<std::vector<int32_t>> read_eval_texts(const Model& model, const RunSpec& spec) {
  std::vector<std::vector<int32_t>> texts;
  for (const std::filesystem::path& file : spec.eval_files) {
    std::vector<int32_t>& ids = texts.emplace_back(model.tokenizer->encode(read_text_file(file), true));
    if (int64_t(ids.size()) < spec.eval.seqlen)
      throw ConfigError(file_msg(file, "has " + std::to_string(ids.size()) +
                                           " tokens, fewer than one window of seqlen " +
                                           std::to_string(spec.eval.seqlen)));
  }
  return texts;
}

Report run_quantization(const Model& model, const RunSpec& spec, const RunInputs& inputs,
                        const LayerSink& sink, const ProgressFn& progress,
                        const std::function<void(const LayerReport&)>& on_layer) {
  const bool evaluate = !inputs.eval_ids.empty();
  const bool generate = !spec.generation.prompts.empty();
  QuantizedModel gptq_model(model.weights), rtn_model(model.weights);
  LayerSink keep = [&](Method m, int block, LinearKind kind, QuantizedWeights&& w) {
    // Evaluated as exported: F16 scales, so that the exported checkpoint gives the same number.
    // Kept as codes (a byte per weight), dequantized block by block when evaluated.
    if (evaluate || generate) (m == Method::gptq ? gptq_model : rtn_model).set(block, kind, w);
    if (sink) sink(m, block, kind, std::move(w));
  };
  // One fraction for the whole run: each stage's own fraction placed in its share of the
  // estimated work, each text's evaluation in proportion to its evaluated tokens.
  std::vector<int64_t> eval_tokens;
  for (const auto& ids : inputs.eval_ids)
    eval_tokens.push_back(perplexity_windows(int64_t(ids.size()), spec.eval) * spec.eval.seqlen);
  const int64_t all_eval_tokens = std::accumulate(eval_tokens.begin(), eval_tokens.end(), int64_t(0));
  const RunCosts costs = run_stage_costs(model.config(), inputs.options, inputs.calib.tokens.size(),
                                         all_eval_tokens);
  double done_before = 0, stage_share = costs.quantize;
  auto overall = [&](const Progress& p) {
    Progress q = p;
    q.run_fraction = std::clamp((done_before + p.fraction * stage_share) / costs.total(), 0.0, 1.0);
    return !progress || progress(q);
  };
  QuantizeResult result = quantize_model(*model.weights, inputs.calib, inputs.options, keep,
                                         overall, on_layer);
  Report report = make_report(model, inputs.calib, inputs.options, std::move(result), spec.threads);
  report.kept_for_loaders = inputs.kept_for_loaders;
  report.pad_unloadable = spec.pad_unloadable;

  // The quantized models that ran, by name, each compared with the original.
  std::vector<const WeightSource*> quantized;
  std::vector<std::string> names;
  if (inputs.options.run_rtn) quantized.push_back(&rtn_model), names.push_back("rtn");
  if (inputs.options.run_gptq) quantized.push_back(&gptq_model), names.push_back("gptq");
  try {
    done_before = costs.quantize;
    for (size_t t = 0; t < inputs.eval_ids.size(); ++t) {
      const std::filesystem::path& file = spec.eval_files[t];
      stage_share = all_eval_tokens > 0 ? costs.total() - costs.quantize : 0;
      stage_share *= all_eval_tokens > 0 ? double(eval_tokens[t]) / double(all_eval_tokens) : 0;
      DivergenceOptions options;
      options.eval = spec.eval;
      options.precision = spec.eval_precision;
      options.stage = "evaluate " + file.filename().string();
      report.quality.push_back(evaluate_quality(*model.weights, quantized, names, file.string(),
                                                inputs.eval_ids[t], options, overall));
      done_before += stage_share;
    }
    if (!report.quality.empty()) report.perplexity = perplexity_summary(report.quality.front());
    if (generate) {
      std::vector<NamedWeights> models = {{"original", model.weights.get()}};
      for (size_t i = 0; i < quantized.size(); ++i) models.push_back({names[i], quantized[i]});
      stage_share = 0;  // short next to the rest; its progress is there to let it be cancelled
      report.generations = generate_side_by_side(models, *model.tokenizer, spec.generation, overall);
    }
  } catch (const Cancelled&) {
    if (!spec.keep_quantization_on_cancel) throw;
    report.evaluation_cancelled = true;  // the quantization stands; evaluation skipped
    report.quality.clear();
    report.perplexity.reset();
    report.generations.clear();
  }
  report.peak_rss_bytes = peak_rss_bytes();
  return report;
}

CalibrationMatrix calibration_matrix(const Model& model, const RunSpec& base,
                                     const std::vector<std::filesystem::path>& calibs,
                                     const ProgressFn& progress, Report* first) {
  if (calibs.empty()) throw ConfigError("the calibration matrix needs at least one calibration corpus");
  if (base.eval_files.empty()) throw ConfigError("the calibration matrix needs at least one evaluation text");
  const auto t0 = std::chrono::steady_clock::now();
  CalibrationMatrix m;
  for (const auto& t : base.eval_files) m.texts.push_back(t.string());
  for (size_t c = 0; c < calibs.size(); ++c) {
    RunSpec spec = base;
    spec.calib_file = calibs[c];
    spec.generation.prompts.clear();
    const std::string prefix = "calibration " + std::to_string(c + 1) + "/" + std::to_string(calibs.size()) + ": ";
    auto share = [&](const Progress& p) {
      Progress q = p;
      q.stage = prefix + p.stage;
      const double f = p.run_fraction >= 0 ? p.run_fraction : p.fraction;
      q.run_fraction = (double(c) + f) / double(calibs.size());
      return !progress || progress(q);
    };
    const RunInputs inputs = prepare_run(model, spec);
    Report r = run_quantization(model, spec, inputs, {}, share);
    m.calibs.push_back(calibs[c].string());
    m.cells.push_back(r.quality);
    if (c == 0 && first) *first = std::move(r);
  }
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

}  // namespace gptqw
