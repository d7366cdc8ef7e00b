// What the sequential driver measures of each linear layer (LayerReport's fields), apart from
// the algorithm that quantizes it: what the layer is (its shape, its Hessian's diagonal and
// their statistics, its bytes in fp16 and in a GPTQ checkpoint) and how well each method
// reproduces its outputs on the calibration inputs (the exact traces of
// pipeline/layer_metrics.h), with the time each method took.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "common/matrix_pool.h"
#include "model/layers.h"
#include "quant/gptq.h"

namespace gptqw {

struct LayerReport;     // pipeline/quantize.h
struct QuantizeResult;  // pipeline/quantize.h

// Summary statistics of a layer's Hessian diagonal (which input channels matter).
struct DiagStats {
  float min = 0, median = 0, max = 0, mean = 0;
  double dead_fraction = 0;  // H[i,i] == 0: inputs that never fired
};
DiagStats diag_stats(const std::vector<float>& diag);

// Bytes of one layer in the GPTQ checkpoint format (spec section 6), with packed dimensions
// rounded up to whole 32-bit words as the exporter writes them.
uint64_t quantized_layer_bytes(int64_t out_features, int64_t in_features, const QuantConfig& q,
                               bool bias);

// A layer's report before it is quantized: its name and shape, its Hessian's diagonal (before
// damping, in input channel order) with the statistics, its bytes in fp16 and in the
// checkpoint with `quant`'s settings, and its bits per weight.
LayerReport describe_layer(LayerId id, const Eigen::Ref<const Matrix>& W, bool bias,
                           const Eigen::Ref<const Matrix>& H, const QuantConfig& quant);

// Measures the layers that share one Hessian H and its factor: each one's reference trace
// tr(W H W^T) and RTN's error while the factor is still a Cholesky factor (before invert()),
// GPTQ's once GPTQ has run on the inverted factor. Where the factorization failed, the traces
// are the direct products with H. The time it spends goes to totals.seconds_metrics, the
// methods' times it is handed to their sums in totals.
class LayerMeasurement {
 public:
  LayerMeasurement(const Matrix& H, const HessianFactor& factor, MatrixPool& pool,
                   Backend& backend, QuantizeResult& totals);

  // tr(W H W^T): what a layer's relative errors are relative to.
  double reference(const Eigen::Ref<const Matrix>& W);
  // RTN's weights q of W, made in `seconds`: r's RTN error and time.
  void rtn(LayerReport& r, const Eigen::Ref<const Matrix>& W, double reference,
           const QuantizedWeights& q, double seconds);
  // GPTQ's result g on W, made in `seconds`: r's GPTQ error, loss, damping, note, permutation
  // and time.
  void gptq(LayerReport& r, const Eigen::Ref<const Matrix>& W, double reference,
            const GptqResult& g, double seconds);

 private:
  // tr(D H D^T) for D = W - Q (W when Q is null), the cheapest exact way the factor allows.
  double trace(const Eigen::Ref<const Matrix>& W, const Matrix* Q);

  const Matrix& m_H;
  const HessianFactor& m_factor;
  MatrixPool& m_pool;
  Backend& m_backend;
  QuantizeResult& m_totals;
};

}  // namespace gptqw
