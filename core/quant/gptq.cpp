// fasterquant (IST-DASLab gptq.py) in C++: dead inputs, static groups, act-order, damping,
// Hinv = chol(H^-1) upper (one factor per Hessian, shareable between modules), then blocks of
// columns with in-block updates and the lazy batch update.
// Names follow Algorithm 1 and gptq.py (H, Hinv, W, Q, Err1, i1, i2, count) so the two read
// side by side; the heavy steps are the backend's.
#include "quant/gptq.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "linalg/factor.h"
#include "quant/rtn.h"

namespace gptqw {

using Eigen::Index;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string layer_prefix(const GptqOptions& o) {
  return "layer '" + (o.layer.empty() ? std::string("?") : o.layer) + "': ";
}

void put_grid(const Grid& grid, Index g, Matrix& scales, Matrix& zeros) {
  scales.row(g) = grid.scale.transpose();
  zeros.row(g) = grid.zero.transpose();
}

// RTN on a given per-row grid (the fallback when the options fix the grid).
QuantizedWeights quantize_fixed_grid(const Eigen::Ref<const Matrix>& W, const Grid& grid) {
  QuantizedWeights out;
  out.Q.resize(W.rows(), W.cols());
  out.codes.resize(W.rows(), W.cols());
  quantize_on_grid(W, grid, out.Q, out.codes);
  out.scales = grid.scale.transpose();
  out.zeros = grid.zero.transpose().cast<int32_t>();
  out.g_idx.assign(W.cols(), 0);
  return out;
}

}  // namespace

void GptqOptions::validate() const {
  quant.validate();
  if (blocksize < 1)
    throw ConfigError("gptq: blocksize must be >= 1, got " + std::to_string(blocksize));
  if (!(damp_fraction >= 0) || !std::isfinite(damp_fraction))
    throw ConfigError("gptq: damp_fraction must be >= 0, got " + std::to_string(damp_fraction));
  if (!(damp_step >= 0) || !(damp_max > 0))
    throw ConfigError("gptq: damping step must be >= 0 and its bound > 0");
  if (fixed_grid && quant.group_size != -1)
    throw ConfigError("gptq: a fixed grid needs group_size -1 (one grid per row)");
}

std::vector<int32_t> act_order_permutation(const Vector& diag) {
  std::vector<int32_t> perm(diag.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(),
                   [&](int32_t a, int32_t b) { return diag[a] > diag[b]; });
  return perm;
}

std::vector<int32_t> make_g_idx(int64_t K, int group_size, const std::vector<int32_t>& perm,
                                bool static_groups) {
  const int64_t gs = group_size > 0 ? group_size : K;
  std::vector<int32_t> g_idx(K);
  for (int64_t k = 0; k < K; ++k) g_idx[k] = static_cast<int32_t>(k / gs);
  if (!perm.empty() && !static_groups)  // the group of the position channel perm[j] held
    for (int64_t j = 0; j < K; ++j) g_idx[perm[j]] = static_cast<int32_t>(j / gs);
  return g_idx;
}

HessianFactor factor_hessian(const Eigen::Ref<const Matrix>& H, const GptqOptions& options,
                             Matrix storage) {
  const double t_start = now_seconds();
  options.validate();
  const Index K = H.rows();
  const std::string where = layer_prefix(options);
  if (H.cols() != K)
    throw Error(where + "Hessian is " + shape_str({H.rows(), H.cols()}) + ", not square");
  if (!all_finite(H))
    throw Error(where + "non-finite value (NaN or Inf) in the Hessian " + shape_str({K, K}) +
                " (calibration activations overflowed?)");
  HessianFactor f;
  f.K = K;
  f.M = std::move(storage);

  // 1. Dead inputs (their weights are zeroed by gptq_quantize): H' is H with their diagonal
  //    set to 1. H itself is never copied: M below reads H' straight from it.
  f.dead.assign(K, 0);
  Vector diag(K);
  for (Index i = 0; i < K; ++i) {
    diag[i] = H(i, i) == 0 ? 1.0f : H(i, i);
    if (H(i, i) == 0) {
      f.dead[i] = 1;
      ++f.dead_columns;
    }
  }

  // 3. Act-order: the columns with the largest H[i,i] (most input energy) go first, while the
  //    most columns remain to absorb their error. Position a of the quantization order is
  //    input channel p[a] (the identity without act-order).
  std::vector<int32_t> p(K);
  std::iota(p.begin(), p.end(), 0);
  if (options.act_order) {
    f.perm = act_order_permutation(diag);
    p = f.perm;
  }

  // 4-5. Damping and the Cholesky factor. The damping keeps H invertible when calibration did
  //      not span every input direction; when even so the fp32 Cholesky fails, raise it step by
  //      step as GPTQModel does, and as a last resort fall back to RTN. One factorization can
  //      fail here where the reference's has two (its second Cholesky, of H^-1, can fail on
  //      rounding alone), so a layer never needs more damping than there.
  double mean = 0;  // in double, in quantization order
  for (Index a = 0; a < K; ++a) mean += diag[p[a]];
  const float mean_diag = static_cast<float>(mean / double(K));
  double fraction = options.damp_fraction;
  for (;;) {
    // torch: percdamp (a Python float) * mean (an fp32 tensor) is computed in fp32.
    const float damp = static_cast<float>(fraction) * mean_diag;
    // M = J (P^T H' P + damp I) J: M[i, j] = H'[p[K-1-i], p[K-1-j]], plus damp on the diagonal.
    f.M.resize(K, K);
#pragma omp parallel for schedule(static) if (K > 512)
    for (Index i = 0; i < K; ++i) {
      const Index pi = p[K - 1 - i];
      const float* h = H.row(pi).data();
      float* m = f.M.row(i).data();
      if (options.act_order)
        for (Index j = 0; j < K; ++j) m[j] = h[p[K - 1 - j]];
      else
        for (Index j = 0; j < K; ++j) m[j] = h[K - 1 - j];
      m[i] = diag[pi] + damp;
    }
    if (linalg::cholesky_lower(f.M)) {
      f.damp_abs = damp;
      break;
    }
    if (options.damp_step <= 0 || !(fraction + options.damp_step < options.damp_max)) {
      f.failed = true;
      f.M = Matrix();
      break;
    }
    fraction += options.damp_step;
    ++f.damp_raises;
  }
  f.damp_fraction = fraction;
  std::ostringstream note;
  if (f.failed) {
    note << where << "Cholesky factorisation failed for every damp_fraction from "
         << options.damp_fraction << " to " << fraction << " (mean diag(H) " << mean_diag << ")";
  } else if (f.damp_raises > 0) {
    note << where << "Cholesky failed at damp_fraction " << options.damp_fraction << "; raised "
         << f.damp_raises << " time(s) to " << fraction;
  }
  f.note = note.str();
  f.seconds = now_seconds() - t_start;
  return f;
}

void HessianFactor::invert() {
  if (failed || inverted) return;
  const double t = now_seconds();
  linalg::triangular_inverse_lower(M);
  // Hinv = J L^-1 J: element (i, j) of the result is element (K-1-i, K-1-j) of M, i.e. M's
  // storage read backwards: rows i and K-1-i trade places, each read backwards. The strict
  // upper triangle of M was scratch; it becomes the strict lower triangle of Hinv, which must
  // be zero.
  bool finite = true;
#pragma omp parallel for schedule(dynamic, 64) reduction(&& : finite) if (K > 512)
  for (Index i = 0; i < (K + 1) / 2; ++i) {
    float* a = M.row(i).data();
    float* b = M.row(K - 1 - i).data();
    if (a == b) {
      std::reverse(a, a + K);
    } else {
      for (Index j = 0; j < K; ++j) std::swap(a[j], b[K - 1 - j]);
    }
    std::fill(a, a + i, 0.0f);
    std::fill(b, b + (K - 1 - i), 0.0f);
    bool ok = true;
    for (Index j = i; j < K; ++j) ok = ok && std::isfinite(a[j]);
    for (Index j = K - 1 - i; j < K; ++j) ok = ok && std::isfinite(b[j]);
    finite = finite && ok;
  }
  inverted = true;
  if (!finite) {  // a pivot too small for fp32: as if the Cholesky had failed
    failed = true;
    M = Matrix();
    note = note.empty() ? "the inverse Hessian is not finite in fp32" : note;
  }
  seconds += now_seconds() - t;
}

GptqResult gptq_quantize(const Eigen::Ref<const Matrix>& W, const Eigen::Ref<const Matrix>& H,
                         const GptqOptions& options, Backend& backend) {
  const double t_start = now_seconds();
  if (H.rows() != W.cols() || H.cols() != W.cols())
    throw Error(layer_prefix(options) + "Hessian is " + shape_str({H.rows(), H.cols()}) +
                " but the weight " + shape_str({W.rows(), W.cols()}) + " needs [" +
                std::to_string(W.cols()) + ", " + std::to_string(W.cols()) + "]");
  HessianFactor f = factor_hessian(H, options);
  f.invert();
  GptqResult res = gptq_quantize(W, f, options, backend);
  res.seconds_hinv = f.seconds;
  res.seconds = now_seconds() - t_start;
  return res;
}

GptqResult gptq_quantize(const Eigen::Ref<const Matrix>& W_in, const HessianFactor& f,
                         const GptqOptions& options, Backend& backend) {
  const double t_start = now_seconds();
  options.validate();
  const QuantConfig& qc = options.quant;
  const Index N = W_in.rows(), K = W_in.cols();
  const std::string where = layer_prefix(options);
  if (f.K != K)
    throw Error(where + "Hessian is " + shape_str({f.K, f.K}) + " but the weight " +
                shape_str({N, K}) + " needs [" + std::to_string(K) + ", " + std::to_string(K) +
                "]");
  if (!f.failed && !f.inverted)
    throw Error(where + "the Hessian's factor must be inverted before GPTQ runs on it");
  if (f.perm.empty() == options.act_order)
    throw Error(where + "the Hessian's factor was made " +
                (options.act_order ? "without" : "with") + " act-order");
  if (options.fixed_grid && options.fixed_grid->scale.size() != N)
    throw ConfigError(where + "fixed grid has " + std::to_string(options.fixed_grid->scale.size()) +
                      " rows, the weight " + shape_str({N, K}));
  if (!all_finite(W_in))
    throw Error(where + "non-finite value (NaN or Inf) in the weight " + shape_str({N, K}));

  GptqResult res;
  res.dead_columns = f.dead_columns;
  res.damp_fraction = f.damp_fraction;
  res.damp_abs = f.damp_abs;
  res.damp_raises = f.damp_raises;
  res.note = f.note;
  if (f.failed) {
    if (!options.fallback_to_rtn) throw Error(f.note);
    res.note += "; quantized with RTN instead";
    res.weights = options.fixed_grid ? quantize_fixed_grid(W_in, *options.fixed_grid)
                                     : rtn_quantize(W_in, qc);
    res.fell_back_to_rtn = true;
    res.seconds = now_seconds() - t_start;
    return res;
  }
  res.perm = f.perm;
  const Matrix& Hinv = f.M;

  Matrix W = W_in;
  const bool groups = qc.group_size > 0;
  const bool static_groups = groups && options.static_groups;
  const Index gs = groups ? qc.group_size : K;
  const Index G = group_count(K, qc.group_size);
  Matrix scales(G, N), zeros(G, N);  // the grid of each group; zeros integer-valued

  // Without groups, the reference finds the row grids on W as given, before dead inputs are
  // zeroed (find_params precedes that step in gptq.py).
  if (!groups)
    put_grid(options.fixed_grid ? *options.fixed_grid : find_grid(W, qc), 0, scales, zeros);

  // 1. Dead inputs: zero weights (H's part is in the factor).
  for (Index i = 0; i < K; ++i)
    if (f.dead[i]) W.col(i).setZero();

  // 2. Static groups: every group's grid from W before any GPTQ update.
  if (static_groups)
    for (Index g = 0; g < G; ++g)
      put_grid(find_grid(W.middleCols(g * gs, std::min(gs, K - g * gs)), qc), g, scales, zeros);

  // 3. Act-order (the permutation is the factor's).
  if (options.act_order) {
    const Eigen::Map<const Eigen::VectorXi> p(res.perm.data(), K);
    W = Matrix(W(Eigen::all, p));
  }

  // The grid row each (permuted) column uses.
  std::vector<int32_t> col_group(K, 0);
  if (groups)
    for (Index j = 0; j < K; ++j)
      col_group[j] =
          static_cast<int32_t>((static_groups && options.act_order ? res.perm[j] : j) / gs);

  // 6. Blocks of columns.
  Matrix Q(N, K);
  Codes codes(N, K);
  double losses = 0;
  for (Index i1 = 0; i1 < K; i1 += options.blocksize) {
    const Index i2 = std::min<Index>(i1 + options.blocksize, K), count = i2 - i1;
    // Groups starting in this block get their grid from the globally updated W: earlier
    // blocks' updates applied, this block's not (the reference's find_params(W[:, i:i+gs])).
    if (groups && !static_groups)
      for (Index j = (i1 + gs - 1) / gs * gs; j < i2; j += gs)
        put_grid(find_grid(W.middleCols(j, std::min(gs, K - j)), qc), j / gs, scales, zeros);

    const double t_block = now_seconds();
    Matrix W1 = W.middleCols(i1, count);
    Matrix Err1(N, count);
    losses += backend.gptq_block(W1, Hinv.block(i1, i1, count, count), scales, zeros,
                                 std::span<const int32_t>(col_group).subspan(i1, count), qc.maxq(),
                                 qc.exact_ties, Q.middleCols(i1, count), Err1,
                                 codes.middleCols(i1, count));
    const double t_lazy = now_seconds();
    res.seconds_blocks += t_lazy - t_block;
    // The lazy batch update: the block's errors reach the remaining columns in one GEMM.
    if (i2 < K) {
      backend.lazy_batch_update(W.rightCols(K - i2), Err1, Hinv.block(i1, i2, count, K - i2));
      res.lazy_flops += 2.0 * double(N) * double(count) * double(K - i2);
    }
    res.seconds_lazy += now_seconds() - t_lazy;
    if (options.keep_going && !options.keep_going(double(i2) / double(K))) throw Cancelled();
  }
  res.loss = losses / 2;

  // 7. Undo the permutation; 8. g_idx.
  QuantizedWeights& out = res.weights;
  if (options.act_order) {
    out.Q.resize(N, K);
    out.codes.resize(N, K);
#pragma omp parallel for schedule(static)
    for (Index r = 0; r < N; ++r)
      for (Index j = 0; j < K; ++j) {
        out.Q(r, res.perm[j]) = Q(r, j);
        out.codes(r, res.perm[j]) = codes(r, j);
      }
  } else {
    out.Q = std::move(Q);
    out.codes = std::move(codes);
  }
  out.scales = std::move(scales);
  out.zeros = zeros.cast<int32_t>();
  out.g_idx = make_g_idx(K, qc.group_size, res.perm, static_groups);
  res.seconds = now_seconds() - t_start;
  return res;
}

}  // namespace gptqw
