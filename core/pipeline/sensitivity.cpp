#include "pipeline/sensitivity.h"

#include <omp.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <map>

#include "common/error.h"
#include "common/matrix_pool.h"
#include "io/gptq_export.h"
#include "model/llama.h"
#include "model/rope_scaling.h"
#include "pipeline/precision_plan.h"
#include "pipeline/window_walk.h"
#include "quant/hessian.h"
#include "quant/packing.h"

namespace gptqw {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// log-softmax of a row of logits in float64.
void log_softmax(const float* row, int64_t V, std::vector<double>& out) {
  const double lse = log_sum_exp(row, V);
  out.resize(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) out[static_cast<size_t>(i)] = double(row[i]) - lse;
}

}  // namespace

HeldOutReference::HeldOutReference(const WeightSource& model, const CalibrationSet& held_out)
    : m_model(model),
      m_seqlen(held_out.seqlen),
      m_rope(make_rope(model.config(), held_out.seqlen)),
      m_tokens(held_out.tokens) {
  const ModelConfig& c = model.config();
  if (held_out.nsamples() == 0) throw ConfigError("sensitivity: no held-out windows");
  for (int b = 0; b < c.num_layers; ++b) m_blocks.push_back(model.block(b));
  m_final_norm = model.final_norm();
  m_lm_head = model.lm_head();
  Matrix x = embed(model.embedding(), m_tokens);
  for (int b = 0; b < c.num_layers; ++b) {
    m_inputs.push_back(x);
    block_forward(c, m_blocks[size_t(b)], m_rope, x, m_seqlen);
  }
  m_inputs.push_back(std::move(x));
  // The original's distributions at every position that has a next token in its window.
  Matrix h, logits;
  rms_norm(m_inputs.back(), m_final_norm, c.rms_norm_eps, h);
  m_logp.resize(static_cast<size_t>(positions()));
  size_t p = 0;
  for (int w = 0; w < held_out.nsamples(); ++w) {
    logit_rows(h, m_lm_head, Eigen::Index(w) * m_seqlen, m_seqlen - 1, logits);
#pragma omp parallel for schedule(static)
    for (Eigen::Index t = 0; t < logits.rows(); ++t)
      log_softmax(logits.row(t).data(), logits.cols(), m_logp[p + size_t(t)]);
    p += size_t(logits.rows());
  }
}

int64_t HeldOutReference::positions() const {
  return int64_t(m_tokens.size() / size_t(m_seqlen)) * (m_seqlen - 1);
}

double HeldOutReference::kld(const std::map<int, BlockWeights>& replaced) const {
  const ModelConfig& c = m_model.config();
  if (replaced.empty()) return 0;
  const int first = replaced.begin()->first;
  Matrix x = m_inputs[size_t(first)];
  for (int b = first; b < c.num_layers; ++b) {
    auto it = replaced.find(b);
    block_forward(c, it != replaced.end() ? it->second : m_blocks[size_t(b)], m_rope, x, m_seqlen);
  }
  Matrix h, logits;
  rms_norm(x, m_final_norm, c.rms_norm_eps, h);
  const int windows = int(m_tokens.size() / size_t(m_seqlen));
  std::vector<double> per_position(static_cast<size_t>(positions()));
  size_t p = 0;
  for (int w = 0; w < windows; ++w) {
    logit_rows(h, m_lm_head, Eigen::Index(w) * m_seqlen, m_seqlen - 1, logits);
#pragma omp parallel for schedule(static)
    for (Eigen::Index t = 0; t < logits.rows(); ++t) {
      thread_local std::vector<double> logq;
      log_softmax(logits.row(t).data(), logits.cols(), logq);
      const std::vector<double>& logp = m_logp[p + size_t(t)];
      double s = 0;
      for (size_t i = 0; i < logq.size(); ++i) s += std::exp(logp[i]) * (logp[i] - logq[i]);
      per_position[p + size_t(t)] = s;
    }
    p += size_t(logits.rows());
  }
  double sum = 0;  // in position order: the same sum whatever the threads
  for (double v : per_position) sum += v;
  const double mean = sum / double(per_position.size());
  if (!std::isfinite(mean))
    throw Error("sensitivity: the model with block " + std::to_string(first) +
                " replaced gives non-finite outputs on the held-out windows");
  return mean;
}

Sensitivity measure_sensitivity(const WeightSource& model, const CalibrationSet& calib,
                                const CalibrationSet& held_out, const SensitivityOptions& opt,
                                const ProgressFn& progress) {
  const auto t_start = Clock::now();
  if (opt.candidates.empty()) throw ConfigError("sensitivity: no candidate settings");
  opt.gptq.validate();
  for (const PrecisionChoice& ch : opt.candidates) {
    if (ch.fp16) throw ConfigError("sensitivity: fp16 is always a candidate; list quantized settings only");
    ch.applied_to(opt.gptq.quant).validate();
  }
  if (calib.nsamples() == 0) throw ConfigError("sensitivity: no calibration windows");
  const ModelConfig& c = model.config();
  Backend& backend = backend_for(opt.device);

  Sensitivity s;
  s.backend = backend.name();
  s.measure = opt.measure;
  s.sym = opt.gptq.quant.sym;
  s.candidates = opt.candidates;
  s.candidates.push_back({16, -1, true});
  const size_t C = s.candidates.size();
  const size_t fp16 = C - 1;
  s.held_out_offsets = held_out.offsets;
  s.held_out_seqlen = held_out.seqlen;
  const bool scaled = opt.measure == SensitivityOptions::Measure::scaled;
  size_t anchor = 0;
  if (scaled) {
    auto it = std::find(opt.candidates.begin(), opt.candidates.end(), opt.anchor);
    if (it == opt.candidates.end())
      throw ConfigError("sensitivity: the anchor " + opt.anchor.describe() + " is not a candidate");
    anchor = size_t(it - opt.candidates.begin());
  }

  // Which candidates loaders take for each module kind (every block has the same shapes).
  std::vector<std::map<LinearKind, std::string>> refused(C);
  for (size_t ci = 0; ci < fp16; ++ci)
    for (const UnloadableModule& u : unloadable_modules(c, s.candidates[ci].applied_to(opt.gptq.quant)))
      refused[ci][u.kind] = u.reason;

  auto t_ref = Clock::now();
  report_progress(progress, {"held-out", 0, c.num_layers, "", 0});
  const HeldOutReference reference(model, held_out);
  s.held_out_positions = reference.positions();
  s.seconds_kld += since(t_ref);

  const double total_steps = double(c.num_layers) * 4;
  const Rope rope = make_rope(c, calib.seqlen);
  Matrix x = embed(model.embedding(), calib.tokens);
  MatrixPool pool(size_t(192) << 20);
  for (int b = 0; b < c.num_layers; ++b) {
    const BlockWeights& W = reference.block(b);
    // The Hessians of the block's four inputs from the original model's activations.
    auto th = Clock::now();
    report_progress(progress, {"calibration", b, c.num_layers, "", b * 4 / total_steps});
    std::map<int, HessianAccumulator> acc;
    for (LinearKind k : kAllLinears)
      if (!acc.count(linear_input(k))) {
        const int64_t K = linear_shape(c, k).second;
        acc.try_emplace(linear_input(k), K, linear_module(b, k), backend, pool.take(K, K));
      }
    std::set<int> seen;
    block_forward(c, W, rope, x, calib.seqlen, [&](LinearKind k, const Matrix& X) {
      // q/k/v (and gate/up) see the same X: added once per chunk, for the first of them.
      if (k == LinearKind::k || k == LinearKind::v || k == LinearKind::up) return;
      acc.at(linear_input(k)).add_batch(X, X.rows() / calib.seqlen);
    });
    s.seconds_hessian += since(th);

    for (const std::vector<LinearKind>& kinds : sequential_groups(true)) {
      std::vector<LayerId> modules;
      for (LinearKind k : kinds) modules.push_back({b, k});
      UnitSensitivity& u = s.units.emplace_back();
      u.modules = modules;
      u.bits.assign(C, 0);
      u.kld.assign(C, std::numeric_limits<double>::infinity());
      u.measured.assign(C, false);
      u.loss.assign(C, 0);
      u.unloadable.assign(C, "");
      const bool kept = opt.keep.count(modules.front().kind) > 0;
      for (const LayerId& id : modules) {
        const Linear& lin = W[id.kind];
        u.shapes.push_back({lin.W.rows(), lin.W.cols()});
        u.weights += lin.W.size();
        for (size_t ci = 0; ci < C; ++ci) {
          u.bits[ci] += stored_bits(lin.W.rows(), lin.W.cols(), lin.b.size() > 0, s.candidates[ci]);
          if (ci == fp16) continue;
          if (kept)
            u.unloadable[ci] = "kept in fp16";
          else if (auto r = refused[ci].find(id.kind); r != refused[ci].end() && u.unloadable[ci].empty())
            u.unloadable[ci] = std::string(linear_name(id.kind)) + ": " + r->second;
        }
      }
      u.kld[fp16] = 0;
      u.measured[fp16] = true;
      const std::string unit_name = modules.front().module();
      report_progress(progress, {"gptq", b, c.num_layers, std::string(linear_name(modules.front().kind)),
                                 double(s.units.size() - 1) / total_steps});

      // One factorisation of the unit's Hessian, shared by every candidate.
      auto tg = Clock::now();
      const Matrix& H = acc.at(linear_input(modules.front().kind)).H();
      GptqOptions go = opt.gptq;
      go.layer = unit_name;
      HessianFactor factor = factor_hessian(H, go, pool.take(H.rows(), H.cols()));
      factor.invert();
      s.seconds_gptq += since(tg);

      // Scaled: the unit's anchor is the options' when loaders take it, else its first
      // setting they take.
      size_t unit_anchor = anchor;
      for (size_t ci = 0; scaled && !u.unloadable[anchor].empty() && ci < fp16; ++ci)
        if (u.unloadable[ci].empty()) {
          unit_anchor = ci;
          break;
        }
      // Each candidate's GPTQ weights of the unit's modules, then (kld, or the anchor) the
      // model's divergence with them.
      for (size_t ci = 0; ci < fp16; ++ci) {
        if (!u.unloadable[ci].empty()) continue;
        BlockWeights bw = W;
        auto tq = Clock::now();
        for (const LayerId& id : modules) {
          go.quant = s.candidates[ci].applied_to(opt.gptq.quant);
          go.layer = id.module();
          GptqResult g = gptq_quantize(W[id.kind].W, factor, go, backend);
          u.loss[ci] += g.loss;
          bw[id.kind].W = dequantize_as_stored(g.weights);
          ++s.gptq_runs;
        }
        s.seconds_gptq += since(tq);
        if (scaled && ci != unit_anchor) continue;
        auto tk = Clock::now();
        u.kld[ci] = reference.kld({{b, std::move(bw)}});
        u.measured[ci] = true;
        ++s.kld_passes;
        s.seconds_kld += since(tk);
        report_progress(progress, {"sensitivity", b, c.num_layers, s.candidates[ci].describe(),
                                   double(s.units.size() - 1) / total_steps});
      }
      pool.give(std::move(factor.M));
      if (scaled && u.unloadable[unit_anchor].empty()) {
        const double a_kld = u.kld[unit_anchor], a_loss = u.loss[unit_anchor];
        for (size_t ci = 0; ci < fp16; ++ci)
          if (ci != unit_anchor && u.unloadable[ci].empty())
            u.kld[ci] = a_loss > 0 ? a_kld * u.loss[ci] / a_loss : a_kld;
      }
    }
    for (auto& [input, a] : acc) pool.give(a.release());
  }
  s.seconds = since(t_start);
  report_progress(progress, {"done", c.num_layers, c.num_layers, "", 1.0});
  return s;
}

}  // namespace gptqw
