#include "pipeline/run.h"

#include "common/error.h"
#include "common/text_file.h"
#include "quant/packing.h"

namespace gptqw {

QuantizeOptions effective_options(const RunSpec& spec, const ModelConfig& config,
                                  std::vector<UnloadableModule>* kept) {
  QuantizeOptions o = spec.options;
  if (kept) kept->clear();
  if (spec.pad_unloadable) return o;
  std::string why;
  std::vector<UnloadableModule> added;
  for (const UnloadableModule& m : unloadable_modules(config, o.gptq.quant)) {
    if (o.skip.count(m.kind)) continue;  // the user keeps it in fp16 already
    o.skip.insert(m.kind);
    added.push_back(m);
    why += "\n  " + std::string(linear_name(m.kind)) + " [" + std::to_string(m.out_features) +
           ", " + std::to_string(m.in_features) + "]: " + m.reason;
  }
  if (o.skip.size() == size_t(kNumLinears))
    throw NothingLoadable("no linear module of this model can be quantized in a form GPTQ "
                          "loaders (GPTQModel, AutoGPTQ, vLLM) read with " +
                              o.gptq.quant.describe() + ":" + why,
                          added);
  if (kept) *kept = std::move(added);
  return o;
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
  if (spec.eval_file) {
    in.eval_ids = model.tokenizer->encode(read_text_file(*spec.eval_file), true);
    if (int64_t(in.eval_ids.size()) < spec.eval.seqlen)
      throw ConfigError(file_msg(*spec.eval_file, "has " + std::to_string(in.eval_ids.size()) +
                                                      " tokens, fewer than one window of seqlen " +
                                                      std::to_string(spec.eval.seqlen)));
  }
  return in;
}

Report run_quantization(const Model& model, const RunSpec& spec, const RunInputs& inputs,
                        const LayerSink& sink, const ProgressFn& progress,
                        const std::function<void(const LayerReport&)>& on_layer) {
  const bool evaluate = spec.eval_file.has_value();
  QuantizedModel gptq_model(model.weights), rtn_model(model.weights);
  LayerSink keep = [&](Method m, int block, LinearKind kind, QuantizedWeights&& w) {
    // Evaluated as exported: F16 scales, so that the exported checkpoint gives the same number.
    // Kept as codes (a byte per weight), dequantized block by block when evaluated.
    if (evaluate) (m == Method::gptq ? gptq_model : rtn_model).set(block, kind, w);
    if (sink) sink(m, block, kind, std::move(w));
  };
  QuantizeResult result = quantize_model(*model.weights, inputs.calib, inputs.options, keep,
                                         progress, on_layer);
  Report report = make_report(model, inputs.calib, inputs.options, std::move(result), spec.threads);
  report.kept_for_loaders = inputs.kept_for_loaders;
  report.pad_unloadable = spec.pad_unloadable;

  if (evaluate) {
    PerplexitySummary ps;
    ps.text = spec.eval_file->string();
    auto eval = [&](const WeightSource& w, const char* stage) {
      PerplexityResult r = perplexity(w, inputs.eval_ids, spec.eval, [&](const Progress& p) {
        Progress q = p;
        q.stage = stage;
        return !progress || progress(q);
      });
      ps.seqlen = r.seqlen;
      ps.windows = r.windows;
      ps.tokens = r.tokens;
      ps.seconds += r.seconds;
      return r.ppl;
    };
    ps.original = eval(*model.weights, "ppl original");
    if (inputs.options.run_rtn) ps.rtn = eval(rtn_model, "ppl rtn");
    rtn_model = QuantizedModel(model.weights);  // its memory back before GPTQ's evaluation
    if (inputs.options.run_gptq) ps.gptq = eval(gptq_model, "ppl gptq");
    report.perplexity = ps;
  }
  report.peak_rss_bytes = peak_rss_bytes();
  return report;
}

}  // namespace gptqw
