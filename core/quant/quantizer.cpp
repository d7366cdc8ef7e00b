// The GPTQ quantizer: grid search per row (min/max and the optional MSE search), quantize and
// dequantize, written to give the same fp32 results as IST-DASLab gptq's Quantizer.find_params
// and quantize() (spec section 1).
#include "quant/quantizer.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <limits>

#include "common/error.h"
#include "linalg/reduce.h"

namespace gptqw {

void QuantConfig::validate() const {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw ConfigError("quantization: bits must be 2, 3, 4 or 8, got " + std::to_string(bits));
  if (group_size == 0 || group_size < -1)
    throw ConfigError("quantization: group size must be -1 (one grid per row) or >= 1, got " +
                      std::to_string(group_size));
  if (mse) {
    if (!(mse_norm > 0))
      throw ConfigError("quantization: MSE norm must be > 0, got " + std::to_string(mse_norm));
    if (mse_grid < 1)
      throw ConfigError("quantization: MSE grid must be >= 1, got " + std::to_string(mse_grid));
    if (!(mse_maxshrink > 0 && mse_maxshrink <= 1))
      throw ConfigError("quantization: MSE maxshrink must be in (0, 1], got " +
                        std::to_string(mse_maxshrink));
  }
}

std::string QuantConfig::describe() const {
  std::string s = std::to_string(bits);
  s += sym ? "-bit sym " : "-bit asym ";
  if (group_size > 0) {
    s += 'g';
    s += std::to_string(group_size);
  } else {
    s += "per-row";
  }
  if (mse) s += " mse";
  if (exact_ties) s += " exact-ties";
  return s;
}

bool all_finite(const Eigen::Ref<const Matrix>& m) {
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) if (m.size() > 1000000)
  for (Eigen::Index r = 0; r < m.rows(); ++r) {
    const float* p = m.row(r).data();
    uint32_t bad = 0;
    for (Eigen::Index c = 0; c < m.cols(); ++c) {
      uint32_t bits;
      std::memcpy(&bits, p + c, sizeof bits);
      bad |= (bits & 0x7f800000u) == 0x7f800000u;  // exponent all ones: Inf or NaN
    }
    ok = ok && bad == 0;
  }
  return ok;
}

int64_t group_count(int64_t in_features, int group_size) {
  if (group_size <= 0) return 1;
  return (in_features + group_size - 1) / group_size;
}

namespace {

// sum |dequant(quant(x)) - x|^norm over one row, on the grid (scale, zero). The reference sums
// in fp32 in torch's reduction order, which cannot be reproduced exactly; double keeps the
// comparison between candidates free of our own rounding, so only true near-ties can differ.
double row_error(const float* x, Eigen::Index n, float scale, float zero, float maxq, float norm,
                 bool exact_ties, Eigen::ArrayXf& buf) {
  // std::pow per element rather than Eigen's vectorised pow, whose results depend on the
  // vector width; summed in linalg's fixed order. The MSE search compares these sums, so they
  // must not depend on the machine.
  for (Eigen::Index c = 0; c < n; ++c)
    buf[c] = std::pow(
        std::fabs(dequant(quant_code(x[c], scale, zero, maxq, exact_ties), scale, zero) - x[c]),
        norm);
  return linalg::sum_f64(buf.data(), n);
}

}  // namespace

Grid find_grid(const Eigen::Ref<const Matrix>& x, const QuantConfig& config) {
  config.validate();
  const Eigen::Index rows = x.rows(), cols = x.cols();
  if (cols < 1) throw ConfigError("quantization: cannot find a grid over 0 columns");
  const float maxq = static_cast<float>(config.maxq());
  // The reference computes (maxq + 1) / 2 with maxq an integer tensor: 2, 4, 8 or 128.
  const float sym_zero = (maxq + 1.0f) / 2.0f;
  const int n_candidates = static_cast<int>(config.mse_maxshrink * config.mse_grid);
  const float norm = static_cast<float>(config.mse_norm);

  Grid grid;
  grid.scale.resize(rows);
  grid.zero.resize(rows);
  grid.maxq = config.maxq();
  grid.exact_ties = config.exact_ties;
  const double work = double(rows) * double(cols) * (config.mse ? n_candidates : 1);
#pragma omp parallel if (work > 1e5)
  {
    Eigen::ArrayXf buf(config.mse ? cols : 0);
#pragma omp for schedule(static)
    for (Eigen::Index r = 0; r < rows; ++r) {
      const float* row = x.row(r).data();
      // The range always contains 0, so that 0 is (nearly) representable.
      float xmin = std::min(x.row(r).minCoeff(), 0.0f);
      float xmax = std::max(x.row(r).maxCoeff(), 0.0f);
      if (config.sym) {
        xmax = std::max(std::fabs(xmin), xmax);
        if (xmin < 0) xmin = -xmax;
      }
      if (xmin == 0 && xmax == 0) {  // an all-zero row: any grid will do, avoid scale 0
        xmin = -1;
        xmax = +1;
      }
      float scale = (xmax - xmin) / maxq;
      float zero = config.sym ? sym_zero : round_code(-xmin / scale, config.exact_ties);

      if (config.mse) {
        // Shrink the range by p = 1 - i/grid and keep the candidate with the smallest error;
        // strict < keeps the earliest (widest) candidate on ties, as the reference does.
        double best = std::numeric_limits<double>::infinity();
        for (int i = 0; i < n_candidates; ++i) {
          // Python computes p in double; torch multiplies the fp32 tensor by it as fp32.
          const float p = static_cast<float>(1.0 - double(i) / config.mse_grid);
          const float xmin1 = p * xmin, xmax1 = p * xmax;
          const float scale1 = (xmax1 - xmin1) / maxq;
          // Asymmetric grids re-centre their zero; symmetric ones keep (maxq + 1) / 2.
          const float zero1 = config.sym ? zero : round_code(-xmin1 / scale1, config.exact_ties);
          const double err = row_error(row, cols, scale1, zero1, maxq, norm, config.exact_ties, buf);
          if (err < best) {
            best = err;
            scale = scale1;
            zero = zero1;
          }
        }
      }
      grid.scale[r] = scale;
      grid.zero[r] = zero;
    }
  }
  return grid;
}

void quantize_on_grid(const Eigen::Ref<const Matrix>& x, const Grid& grid, Eigen::Ref<Matrix> q,
                      Eigen::Ref<Codes> codes) {
  const float maxq = static_cast<float>(grid.maxq);
#pragma omp parallel for schedule(static) if (x.size() > 100000)
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const float s = grid.scale[r], z = grid.zero[r];
    for (Eigen::Index c = 0; c < x.cols(); ++c) {
      const float code = quant_code(x(r, c), s, z, maxq, grid.exact_ties);
      q(r, c) = dequant(code, s, z);
      codes(r, c) = static_cast<uint8_t>(code);
    }
  }
}

Eigen::VectorXd grid_error(const Eigen::Ref<const Matrix>& x, const Grid& grid, float norm) {
  Eigen::VectorXd err(x.rows());
  Eigen::ArrayXf buf(x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    err[r] = row_error(x.row(r).data(), x.cols(), grid.scale[r], grid.zero[r],
                       static_cast<float>(grid.maxq), norm, grid.exact_ties, buf);
  return err;
}

std::string PrecisionChoice::describe() const {
  if (fp16) return "fp16";
  return std::to_string(bits) + "-bit " + (group_size > 0 ? "g" + std::to_string(group_size) : "per-row");
}

}  // namespace gptqw
