#include "pipeline/layer_measurement.h"

#include <algorithm>
#include <chrono>

#include "pipeline/layer_metrics.h"
#include "pipeline/quantize.h"
#include "quant/packing.h"

namespace gptqw {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

DiagStats diag_stats(const std::vector<float>& diag) {
  DiagStats s;
  if (diag.empty()) return s;
  std::vector<float> v = diag;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5f * (v[n / 2 - 1] + v[n / 2]);
  double sum = 0;
  size_t dead = 0;
  for (float x : v) sum += x, dead += x == 0;
  s.mean = static_cast<float>(sum / n);
  s.dead_fraction = double(dead) / n;
  return s;
}

uint64_t quantized_layer_bytes(int64_t N, int64_t K, const QuantConfig& q, bool bias) {
  int64_t G = group_count(K, q.group_size);
  uint64_t qweight = uint64_t(packed_words(K, q.bits)) * N * 4;
  uint64_t qzeros = uint64_t(G) * packed_words(N, q.bits) * 4;
  uint64_t scales = uint64_t(G) * N * 2;
  uint64_t g_idx = uint64_t(K) * 4;
  return qweight + qzeros + scales + g_idx + (bias ? uint64_t(N) * 2 : 0);
}

LayerReport describe_layer(LayerId id, const Eigen::Ref<const Matrix>& W, bool bias,
                           const Eigen::Ref<const Matrix>& H, const QuantConfig& quant) {
  LayerReport r;
  r.block = id.block;
  r.kind = id.kind;
  r.name = id.module();
  r.out_features = W.rows();
  r.in_features = W.cols();
  r.bits = quant.bits;
  r.group_size = quant.group_size;
  // Copied element by element: the diagonal of a matrix is strided, its data() is not a
  // contiguous vector.
  r.hessian_diag.resize(H.rows());
  for (Eigen::Index i = 0; i < H.rows(); ++i) r.hessian_diag[i] = H(i, i);
  r.hessian = diag_stats(r.hessian_diag);
  r.bytes_fp16 = uint64_t(W.size()) * 2 + (bias ? uint64_t(W.rows()) * 2 : 0);
  r.bytes_quantized = quantized_layer_bytes(W.rows(), W.cols(), quant, bias);
  r.bits_per_weight = r.bytes_quantized * 8.0 / double(W.size());
  return r;
}

LayerMeasurement::LayerMeasurement(const Matrix& H, const HessianFactor& factor, MatrixPool& pool,
                                   Backend& backend, QuantizeResult& totals)
    : m_H(H), m_factor(factor), m_pool(pool), m_backend(backend), m_totals(totals) {}

double LayerMeasurement::trace(const Eigen::Ref<const Matrix>& W, const Matrix* Q) {
  const auto t = Clock::now();
  const double v = !m_factor.failed ? weighted_square(W, Q, m_factor, m_pool)
                   : Q              ? weighted_square_direct(W - *Q, m_H, m_backend)
                                    : weighted_square_direct(W, m_H, m_backend);
  m_totals.seconds_metrics += since(t);
  return v;
}

double LayerMeasurement::reference(const Eigen::Ref<const Matrix>& W) { return trace(W, nullptr); }

void LayerMeasurement::rtn(LayerReport& r, const Eigen::Ref<const Matrix>& W, double reference,
                           const QuantizedWeights& q, double seconds) {
  r.rtn_seconds = seconds;
  m_totals.seconds_rtn += seconds;
  r.rtn_rel_error = reference > 0 ? trace(W, &q.Q) / reference : 0.0;
}

void LayerMeasurement::gptq(LayerReport& r, const Eigen::Ref<const Matrix>& W, double reference,
                            const GptqResult& g, double seconds) {
  r.gptq_seconds = seconds;
  m_totals.seconds_gptq += seconds;
  m_totals.seconds_columns += g.seconds_blocks;
  m_totals.seconds_lazy += g.seconds_lazy;
  r.gptq_loss = g.loss;
  r.damp_fraction = g.damp_fraction;
  r.damp_abs = g.damp_abs;
  r.damp_raises = g.damp_raises;
  r.fell_back_to_rtn = g.fell_back_to_rtn;
  r.note = g.note;
  r.perm = g.perm;
  // GPTQ's error from its own loss, unless it fell back to RTN (then there is no factor).
  const auto t = Clock::now();
  const double err = g.fell_back_to_rtn ? weighted_square_direct(W - g.weights.Q, m_H, m_backend)
                                        : gptq_weighted_square(g, W, m_factor);
  m_totals.seconds_metrics += since(t);
  r.gptq_rel_error = reference > 0 ? std::max(err, 0.0) / reference : 0.0;
}

}  // namespace gptqw
