// The GPTQ quantizer (spec section 1): one uniform grid per row of a weight matrix, or per row
// and group of columns, exactly as IST-DASLab gptq's quant.py computes it in fp32, with its
// optional MSE grid search. A grid is a scale and an integer zero point per row; a weight x
// becomes the code q = clamp(round(x / scale) + zero, 0, maxq) and is read back as
// scale * (q - zero).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.h"

namespace gptqw {

// Integer codes of a quantized matrix, one byte per weight, [out_features, in_features].
using Codes = Eigen::Matrix<uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
// Integer zero points, [groups, out_features] (the checkpoint's qzeros before packing).
using MatrixI32 = Eigen::Matrix<int32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct QuantConfig {
  int bits = 4;         // 2, 3, 4 or 8
  int group_size = -1;  // -1: one grid per row; > 0: one grid per row and group of columns
                        // (the last group is shorter when in_features % group_size != 0)
  bool sym = true;      // symmetric grid, zero = (maxq + 1) / 2
  bool mse = false;     // MSE grid search (off in the paper and in every tool's default)
  // Round quotients with round_quotient() (near-ties decided as exact arithmetic decides them)
  // instead of torch.round. Off by default: upstream rounds the fp32 quotient as it falls.
  bool exact_ties = false;
  // The reference's `norm`, `grid` and `maxshrink` (Python floats, hence double here): the
  // candidates are p = 1 - i / grid for i < maxshrink * grid, scored by sum |err|^norm.
  double mse_norm = 2.4;
  int mse_grid = 100;
  double mse_maxshrink = 0.8;

  int maxq() const { return (1 << bits) - 1; }
  // Throws ConfigError naming the bad field and the accepted values.
  void validate() const;
  // "4-bit sym g128", "3-bit asym per-row", for reports and error messages.
  std::string describe() const;
};

// One module's setting in a mixed-precision run (a plan, GPTQModel's per-module "dynamic"
// overrides): its bits and group size, or kept in fp16. The other QuantConfig fields (sym, mse,
// ties) are the run's.
struct PrecisionChoice {
  int bits = 4;
  int group_size = 128;  // -1: one grid per row
  bool fp16 = false;     // kept in fp16 (bits and group size unused)
  bool operator==(const PrecisionChoice&) const = default;
  auto operator<=>(const PrecisionChoice&) const = default;
  std::string describe() const;  // "4-bit g128", "3-bit per-row", "fp16"
  // The run's config with this choice's bits and group size.
  QuantConfig applied_to(QuantConfig base) const {
    base.bits = bits;
    base.group_size = group_size;
    return base;
  }
};

// One grid per row of the matrix it was found on.
struct Grid {
  Vector scale;  // [rows]
  Vector zero;   // [rows], integer-valued floats, as the reference keeps them
  int maxq = 15;
  bool exact_ties = false;  // QuantConfig::exact_ties of the config it was found with
};

// torch.round: round half to even. std::nearbyint rounds in the current rounding mode, which
// is round-to-nearest-even unless someone calls fesetround (nothing in this program does); it
// is used rather than roundeven because compilers vectorise it (GCC 12 does not vectorise
// roundevenf). tst_quantizer checks exact ties.
inline float round_half_even(float x) {
  return std::nearbyint(x);
}

// The rounding of a quotient x / scale with QuantConfig::exact_ties: half to even, where a
// quotient within 2^-22 of its magnitude (two to four ulps) of a half-integer counts as that
// half-integer. Why: such a quotient is a tie up to the rounding of its inputs, and which side
// it lands on is decided by their last bits, i.e. by the summation order of whatever computed
// them. The symmetric grid's negative end is always such a point: for x = -max|x| of the
// group, x / fl(2 max|x| / maxq) is -(maxq + 1) / 2 up to one ulp, either side depending on x's
// mantissa, so plain rounding gives code 0 or code 1 (with equal error) by chance. Within one
// implementation that chance is fixed (this engine gives the same bits everywhere), but two
// implementations that sum in different orders (ours and the PyTorch reference) disagree about
// a quarter of the time, after which GPTQ's error feedback makes the rest of the row differ.
// Deciding the tie exactly removes that: with it, the engine and tools/reference agree to 1e-7
// in perplexity. It is off by default because it changes RTN too (RTN's quotients are exact
// functions of the weights, so every tool agrees on them as they are). Quotients at 2^22 or
// beyond are integers already. tst_quantizer checks the rule and the symmetric end.
inline float round_quotient(float v) {
  const float a = std::fabs(v) < 0x1p22f ? v : 0.0f;  // NaN, infinities, large: 0 below
  const float t = static_cast<float>(static_cast<int32_t>(a));
  const float h = (t > a ? t - 1.0f : t) + 0.5f;  // floor(a) + 1/2, exact
  const bool tie = std::fabs(a - h) <= std::fabs(h) * 0x1p-22f && a == v;
  return std::nearbyint(tie ? h : v);
}

inline float round_code(float v, bool exact_ties) {
  return exact_ties ? round_quotient(v) : round_half_even(v);
}

// The integer code of x on the grid (scale, zero): clamp(round(x / scale) + zero, 0, maxq),
// in fp32 in the reference's order (divide, round, add zero, clamp), round being round_code.
// A NaN lands on 0 so that the cast to an integer stays defined (callers reject non-finite
// weights beforehand); the clamp is written with comparisons so that it vectorises.
inline float quant_code(float x, float scale, float zero, float maxq, bool exact_ties) {
  float q = round_code(x / scale, exact_ties) + zero;
  q = 0.0f < q ? q : 0.0f;
  return q < maxq ? q : maxq;
}

inline float dequant(float code, float scale, float zero) {
  return scale * (code - zero);
}

// The grid of each row of x ([rows, cols], the columns one group spans), spec section 1.
Grid find_grid(const Eigen::Ref<const Matrix>& x, const QuantConfig& config);

// Quantizes x ([rows, cols]) on grid (one per row): dequantized values into q, codes into
// codes (both [rows, cols]).
void quantize_on_grid(const Eigen::Ref<const Matrix>& x, const Grid& grid, Eigen::Ref<Matrix> q,
                      Eigen::Ref<Codes> codes);

// The sum over the row of |dequant(quant(x)) - x|^norm: what the MSE search minimises,
// exposed for tests. Accumulated in double.
Eigen::VectorXd grid_error(const Eigen::Ref<const Matrix>& x, const Grid& grid, float norm);

// A quantized weight matrix in the layout the checkpoint writer needs (spec section 6), with
// N = out_features, K = in_features, G = number of groups (1 without groups).
struct QuantizedWeights {
  Matrix Q;                    // [N, K] dequantized weights, original column order
  Codes codes;                 // [N, K] integer codes in [0, maxq]
  Matrix scales;               // [G, N]
  MatrixI32 zeros;             // [G, N] integer zero points in [0, maxq]
  std::vector<int32_t> g_idx;  // [K] group of each input channel
};

// True when no element is NaN or Inf. Reads row by row in storage order and tests the
// exponent bits, so that it vectorises (Eigen's allFinite() on a row-major Ref walks it
// column by column, a cache miss per element on a large matrix).
bool all_finite(const Eigen::Ref<const Matrix>& m);

// Number of groups for in_features columns: ceil(K / gs), or 1 without groups.
int64_t group_count(int64_t in_features, int group_size);

}  // namespace gptqw
