// Round to nearest: find the grid of each group of columns on W itself and quantize.
#include "quant/rtn.h"

namespace gptqw {

QuantizedWeights rtn_quantize(const Eigen::Ref<const Matrix>& W, const QuantConfig& config) {
  config.validate();
  const Eigen::Index N = W.rows(), K = W.cols();
  const Eigen::Index gs = config.group_size > 0 ? config.group_size : K;
  const Eigen::Index G = group_count(K, config.group_size);

  QuantizedWeights out;
  out.Q.resize(N, K);
  out.codes.resize(N, K);
  out.scales.resize(G, N);
  out.zeros.resize(G, N);
  out.g_idx.resize(K);
  for (Eigen::Index g = 0; g < G; ++g) {
    const Eigen::Index c0 = g * gs, width = std::min(gs, K - c0);  // the last group may be short
    const Grid grid = find_grid(W.middleCols(c0, width), config);
    quantize_on_grid(W.middleCols(c0, width), grid, out.Q.middleCols(c0, width),
                     out.codes.middleCols(c0, width));
    out.scales.row(g) = grid.scale.transpose();
    out.zeros.row(g) = grid.zero.transpose().cast<int32_t>();
    for (Eigen::Index k = c0; k < c0 + width; ++k) out.g_idx[k] = static_cast<int32_t>(g);
  }
  return out;
}

}  // namespace gptqw
