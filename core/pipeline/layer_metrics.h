// Per-layer measurements of the driver: the relative reconstruction error
// ||W X - Q X||^2 / ||W X||^2 on a layer's calibration inputs, exactly, without the inputs:
// with H = (2/n) X^T X, ||D X^T||^2 = (n/2) tr(D H D^T), and n/2 cancels in the ratio. Each
// trace is computed the cheapest exact way available:
//  - from the Hessian's Cholesky factor (HessianFactor before invert()): with Hq = P^T H' P +
//    damp I = J L L^T J, tr(D H D^T) = ||D' P J L||^2 - damp ||D'||^2, where D' is D with the
//    dead inputs' columns zeroed (H is zero there); one triangular product, half a GEMM;
//  - GPTQ's own error needs no product at all: Algorithm 1's updates make W' - Q = Err U with
//    U = Hinv and U Hq U^T = I, so tr(E Hq E^T) = ||Err||^2 = 2 loss (the reference's printed
//    loss, doubled) and tr(E H E^T) = 2 loss - damp ||E'||^2;
//  - without a factor (the Cholesky failed, GPTQ fell back to RTN): the product D H D^T.
// All three are the same quantity in exact arithmetic; in fp32 they agree to rounding
// (tst_quantize_model checks them against the direct product).
#pragma once

#include "backend/backend.h"
#include "common/matrix_pool.h"
#include "quant/gptq.h"

namespace gptqw {

// tr(D H D^T) from the factor's Cholesky factor (f not failed, not yet inverted), for D = W - Q,
// or D = W when Q is null (never formed: read straight into the product's operand). The
// product's [N, K] operand is taken from `pool` and given back.
double weighted_square(const Eigen::Ref<const Matrix>& W, const Matrix* Q, const HessianFactor& f,
                       MatrixPool& pool);

// tr(D H D^T) by the direct product with H.
double weighted_square_direct(const Eigen::Ref<const Matrix>& D, const Eigen::Ref<const Matrix>& H,
                              Backend& backend);

// tr(E H E^T) for GPTQ's result g on W (E = W - g's Q) from the quantities GPTQ accumulated,
// f being the factor g was made with (not failed).
double gptq_weighted_square(const GptqResult& g, const Eigen::Ref<const Matrix>& W,
                            const HessianFactor& f);

}  // namespace gptqw
