// The exact reconstruction errors of pipeline/layer_metrics.h.
#include "pipeline/layer_metrics.h"

#include <vector>

#include "common/error.h"
#include "linalg/factor.h"
#include "linalg/reduce.h"

namespace gptqw {

using Eigen::Index;

double weighted_square(const Eigen::Ref<const Matrix>& W, const Matrix* Q, const HessianFactor& f,
                       MatrixPool& pool) {
  if (f.failed || f.inverted || W.cols() != f.K ||
      (Q && (Q->rows() != W.rows() || Q->cols() != W.cols())))
    throw Error("weighted_square: needs the Cholesky factor of a [" + std::to_string(f.K) + ", " +
                std::to_string(f.K) + "] Hessian, and W " + shape_str({W.rows(), W.cols()}) +
                (Q ? " and Q " + shape_str({Q->rows(), Q->cols()}) : std::string()));
  const Index N = W.rows(), K = f.K;
  // Y = D' P J: column j of Y is column perm[K-1-j] of D (zero for a dead input).
  Matrix Y = pool.take(N, K);
#pragma omp parallel for schedule(static) if (N * K > (1 << 16))
  for (Index r = 0; r < N; ++r)
    for (Index j = 0; j < K; ++j) {
      const Index c = f.perm.empty() ? K - 1 - j : f.perm[K - 1 - j];
      Y(r, j) = f.dead[c] ? 0.0f : Q ? W(r, c) - (*Q)(r, c) : W(r, c);
    }
  const double norm = linalg::dot_f64(Y.data(), Y.data(), Y.size());  // ||D'||^2
  linalg::trmm_right_lower(Y, f.M);  // Y L
  const double result = linalg::dot_f64(Y.data(), Y.data(), Y.size()) - double(f.damp_abs) * norm;
  pool.give(std::move(Y));
  return result;
}

double weighted_square_direct(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& H,
                              Backend& backend) {
  Matrix DH(D.rows(), H.rows());
  backend.gemm_xwt(D, H, DH);  // D H^T = D H, H symmetric
  return linalg::dot_f64(DH.data(), D.data(), D.size());
}

double gptq_weighted_square(const GptqResult& g, const Eigen::Ref<const Matrix>& W,
                            const HessianFactor& f) {
  const Matrix& Q = g.weights.Q;
  // ||E'||^2 over the live inputs (a dead input's weight is zeroed, and quantizes to 0), row
  // by row and then in row order, so that the sum does not depend on the thread count.
  std::vector<double> rows(W.rows());
#pragma omp parallel for schedule(static) if (W.size() > (1 << 16))
  for (Index r = 0; r < W.rows(); ++r) {
    double row = 0;
    for (Index c = 0; c < W.cols(); ++c)
      if (!f.dead[c]) {
        const double e = double(W(r, c)) - double(Q(r, c));
        row += e * e;
      }
    rows[r] = row;
  }
  double norm = 0;
  for (double v : rows) norm += v;
  return 2 * g.loss - double(f.damp_abs) * norm;
}

}  // namespace gptqw
