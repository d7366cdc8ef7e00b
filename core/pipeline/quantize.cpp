#include "pipeline/quantize.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "common/error.h"
#include "model/llama.h"
#include "model/rope_scaling.h"
#include "quant/hessian.h"
#include "quant/packing.h"
#include "quant/rtn.h"

namespace gptqw {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

std::string_view method_name(Method m) { return m == Method::gptq ? "gptq" : "rtn"; }

GptqSettings checkpoint_settings(const QuantizeOptions& o) {
  GptqSettings s;
  s.quant = o.gptq.quant;
  s.desc_act = o.gptq.act_order;
  s.static_groups = o.gptq.static_groups;
  s.true_sequential = o.true_sequential;
  s.damp_percent = o.gptq.damp_fraction;
  for (LinearKind k : o.skip) s.modules_not_quantized.emplace_back(linear_name(k));
  s.per_module = o.per_module;
  return s;
}

QuantConfig QuantizeOptions::quant_of(LayerId id) const { return module_quant(per_module, id, gptq.quant); }

bool QuantizeOptions::quantizes(LayerId id) const {
  return !skip.count(id.kind) && !kept_in_fp16(per_module, id);
}

void QuantizedModel::set(int block, LinearKind kind, const QuantizedWeights& w) {
  QuantizedWeights c;
  c.codes = w.codes;
  c.scales = w.scales;
  c.zeros = w.zeros;
  c.g_idx = w.g_idx;
  m_layers.erase({block, kind});
  m_coded[{block, kind}] = std::move(c);
}

BlockWeights QuantizedModel::block(int index) const {
  BlockWeights b = m_base->block(index);
  for (LinearKind k : kAllLinears) {
    auto it = m_layers.find({index, k});
    if (it != m_layers.end()) b[k].W = it->second;
    auto ic = m_coded.find({index, k});
    if (ic != m_coded.end()) b[k].W = dequantize_as_stored(ic->second);
  }
  return b;
}

QuantizeResult quantize_model(const WeightSource& source, const CalibrationSet& calib,
                              const QuantizeOptions& opt, const LayerSink& sink,
                              const ProgressFn& progress,
                              const std::function<void(const LayerReport&)>& on_layer) {
  opt.gptq.validate();
  for (const auto& [id, choice] : opt.per_module)
    if (!choice.fp16) {
      try {
        opt.quant_of(id).validate();
      } catch (const ConfigError& e) {
        throw ConfigError(id.module() + ": " + e.what());
      }
    }
  if (!opt.run_gptq && !opt.run_rtn) throw ConfigError("nothing to do: neither GPTQ nor RTN selected");
  if (calib.nsamples() == 0) throw ConfigError("no calibration windows");
  const ModelConfig& c = source.config();
  Backend& backend = backend_for(opt.device);
  const auto t_start = Clock::now();
  QuantizeResult result;
  result.backend = backend.name();
  // A group's modules of block b that are quantized (not skipped by --skip-modules, kept for
  // loaders or kept in fp16 by a plan).
  auto quantized_of = [&](int b, std::vector<LinearKind> group) {
    std::erase_if(group, [&](LinearKind k) { return !opt.quantizes({b, k}); });
    return group;
  };
  double steps = 0;
  for (int b = 0; b < c.num_layers; ++b)
    for (LinearKind k : kAllLinears) steps += opt.quantizes({b, k}) ? 1 : 0;
  if (steps == 0) throw ConfigError("every module is skipped or kept in fp16: nothing to quantize");
  int done = 0;

  // The calibration windows' hidden states, entering block 0.
  Matrix inps = embed(source.embedding(), calib.tokens);
  // Part by part (block_attention ... block_output: each part of the block runs once) when its
  // intermediate activations fit the budget; else each group re-runs the block from its start,
  // in chunks. Both give the same bits.
  const double T = double(inps.rows());
  const double staged_bytes = 4.0 * T * (2.0 * c.hidden_size + 2.0 * c.intermediate_size +
                                          double(c.num_heads) * c.head_dim);
  const bool staged = opt.true_sequential && staged_bytes <= double(opt.staged_budget_bytes);
  result.staged = staged;
  const Rope rope = make_rope(c, calib.seqlen);
  // Buffers that serve one layer after another: Hessians, factors and the metrics' operands,
  // whose sizes repeat in every block. Reused, they cost no fresh pages. Whatever the pool holds
  // idle adds to the peak memory, so its budget is small: enough for the metrics' operand and
  // the attention-sized Hessians and factors; the largest (a 7B down_proj's 11008^2 Hessian
  // and factor, 485 MB each) are freed as before. Measured on the 7B-shaped model: 17% fewer
  // page faults for 0.2 GB more peak; a 384 MiB budget gave 25% for 0.37 GB.
  MatrixPool pool(size_t(192) << 20);
  // The block's activations. x1 and g (staged) and x (the recompute path's copy of the inputs)
  // keep their storage from block to block; h and a are released as soon as they are done, so
  // that they do not add to the MLP's peak.
  Matrix h, a, x1, g, x;

  for (int b = 0; b < c.num_layers; ++b) {
    report_progress(progress, {"load", b, c.num_layers, "", done / steps});
    // The block's weights. Each linear is replaced by its quantized version (GPTQ's when GPTQ
    // runs, else RTN's) as soon as it is done, so later groups collect their Hessians through
    // the quantized earlier groups, and the block never needs to be held twice.
    BlockWeights stream = source.block(b);

    // Hessian accumulators for the inputs of a group's modules (q/k/v and gate/up share one).
    auto accumulators = [&](const std::vector<LinearKind>& group) {
      std::map<int, HessianAccumulator> acc;
      for (LinearKind k : group)
        if (!acc.count(linear_input(k))) {
          const int64_t K = linear_shape(c, k).second;
          acc.try_emplace(linear_input(k), K, linear_module(b, k), backend, pool.take(K, K));
        }
      return acc;
    };
    // Quantizes a group's modules from their accumulated Hessians: one factorization per
    // distinct input, RTN and the errors that need the Cholesky factor, then GPTQ on its
    // inverse. Each module's weights in `stream` are replaced by the quantized ones.
    auto quantize_group = [&](std::map<int, HessianAccumulator>& acc,
                              const std::vector<LinearKind>& group) {
      // Modules that read the same input share its Hessian and one factorization of it.
      for (const auto& [input, H_acc] : acc) {
        std::vector<LinearKind> modules;
        for (LinearKind k : group)
          if (linear_input(k) == input) modules.push_back(k);
        const Matrix& H = H_acc.H();
        GptqOptions go = opt.gptq;
        go.layer = linear_module(b, modules.front());
        auto tf = Clock::now();
        HessianFactor factor = factor_hessian(H, go, pool.take(H.rows(), H.cols()));
        result.seconds_factor += since(tf);

        // RTN, and the measurements that need the Cholesky factor, then GPTQ on its inverse.
        LayerMeasurement measure(H, factor, pool, backend, result);
        struct Module {
          Matrix W;
          LayerReport r;
          double reference = 0;  // tr(W H W^T)
          std::optional<QuantizedWeights> rtn_w;
        };
        std::vector<Module> mods;
        for (LinearKind k : modules) {
          Module& m = mods.emplace_back();
          m.W = std::move(stream[k].W);
          const QuantConfig quant = opt.quant_of({b, k});
          m.r = describe_layer({b, k}, m.W, stream[k].b.size() > 0, H, quant);
          m.reference = measure.reference(m.W);
          if (opt.run_rtn) {
            auto tr = Clock::now();
            m.rtn_w = rtn_quantize(m.W, quant);
            measure.rtn(m.r, m.W, m.reference, *m.rtn_w, since(tr));
          }
        }
        auto ti = Clock::now();
        factor.invert();
        result.seconds_factor += since(ti);

        for (Module& m : mods) {
          LayerReport& r = m.r;
          const LinearKind k = r.kind;
          std::optional<QuantizedWeights> gptq_w;
          if (opt.run_gptq) {
            report_progress(progress, {"gptq", b, c.num_layers, std::string(linear_name(k)), done / steps});
            go.layer = r.name;
            go.quant = opt.quant_of({b, k});
            auto tg = Clock::now();
            GptqResult g = gptq_quantize(m.W, factor, go, backend);
            measure.gptq(r, m.W, m.reference, g, since(tg));
            gptq_w = std::move(g.weights);
          }
          stream[k].W = gptq_w ? gptq_w->Q : m.rtn_w->Q;  // before the sink takes the results
          if (sink && gptq_w) sink(Method::gptq, b, k, std::move(*gptq_w));
          if (sink && m.rtn_w) sink(Method::rtn, b, k, std::move(*m.rtn_w));
          if (on_layer) on_layer(r);
          result.layers.push_back(std::move(r));
          ++done;
        }
        pool.give(std::move(factor.M));
      }
      for (auto& [input, H_acc] : acc) pool.give(H_acc.release());
    };

    if (staged) {
      // The block part by part, each part once: the input of each group is computed from the
      // previous part's output with the earlier groups already quantized, exactly what a run
      // of the block from its start would compute (linalg's results do not depend on how rows
      // are batched), and the Hessians get the same batches as block_forward's chunks.
      auto calibrate = [&](const std::vector<LinearKind>& all, const Matrix& X) {
        const std::vector<LinearKind> group = quantized_of(b, all);
        if (group.empty()) return;
        std::map<int, HessianAccumulator> acc = accumulators(group);
        auto ta = Clock::now();
        const int64_t chunk = forward_chunk_rows(calib.seqlen);
        for (int64_t r0 = 0; r0 < X.rows(); r0 += chunk) {
          const int64_t n = std::min(chunk, X.rows() - r0);
          for (auto& [input, a] : acc) a.add_batch(X.middleRows(r0, n), n / calib.seqlen);
        }
        result.seconds_hessian += since(ta);
        quantize_group(acc, group);
      };
      using K = LinearKind;
      auto stage = [&](LinearKind next, auto&& f) {
        report_progress(progress, {"calibration", b, c.num_layers, std::string(linear_name(next)),
                                   done / steps});
        auto t = Clock::now();
        f();
        result.seconds_calibration += since(t);
      };
      // The true-sequential groups [q, k, v], [o], [gate, up], [down], each on its part's output.
      const auto ts = sequential_groups(true);
      stage(K::q, [&] { block_attention_input(c, stream, inps, h); });
      calibrate(ts[0], h);
      stage(K::o, [&] { block_attention(c, stream, rope, h, calib.seqlen, a); });
      h = Matrix();
      calibrate(ts[1], a);
      stage(K::gate, [&] { block_mlp_input(c, stream, inps, a, x1, h); });
      a = Matrix();
      calibrate(ts[2], h);
      stage(K::down, [&] { block_mlp_hidden(stream, h, g); });
      h = Matrix();
      calibrate(ts[3], g);
      report_progress(progress, {"forward", b, c.num_layers, "", done / steps});
      auto tf = Clock::now();
      block_output(stream, x1, g, inps);
      result.seconds_forward += since(tf);
      continue;
    }

    for (const auto& all : sequential_groups(opt.true_sequential)) {
      const std::vector<LinearKind> group = quantized_of(b, all);
      if (group.empty()) continue;
      // Hessians of this group's inputs, from a run of the block with the earlier groups
      // already quantized.
      std::map<int, HessianAccumulator> acc = accumulators(group);
      report_progress(progress, {"calibration", b, c.num_layers,
                                 std::string(linear_name(group.front())), done / steps});
      auto t0 = Clock::now();
      double accumulate = 0;
      x = inps;
      // Only the part of the block up to this group's last input is run (kAllLinears is in
      // execution order).
      const LinearKind last = *std::max_element(group.begin(), group.end());
      block_forward(c, stream, rope, x, calib.seqlen, [&](LinearKind k, const Matrix& X) {
        auto it = acc.find(linear_input(k));
        // q/k/v (and gate/up) see the same X: add it once, for the first of them in the group.
        if (it != acc.end() && k == *std::find_if(group.begin(), group.end(), [&](LinearKind g) {
              return linear_input(g) == linear_input(k);
            })) {
          auto ta = Clock::now();
          it->second.add_batch(X, X.rows() / calib.seqlen);
          accumulate += since(ta);
        }
      }, last);
      result.seconds_hessian += accumulate;
      result.seconds_calibration += since(t0) - accumulate;

      quantize_group(acc, group);
    }
    // The quantized block's outputs are the next block's inputs.
    report_progress(progress, {"forward", b, c.num_layers, "", done / steps});
    auto tf = Clock::now();
    block_forward(c, stream, rope, inps, calib.seqlen);
    result.seconds_forward += since(tf);
  }
  result.seconds = since(t_start);
  report_progress(progress, {"done", c.num_layers, c.num_layers, "", 1.0});
  return result;
}

}  // namespace gptqw
