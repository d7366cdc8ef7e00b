// Hessian accumulation with the reference's running mean (IST-DASLab gptq.py, add_batch).
#include "quant/hessian.h"

#include <cmath>

#include "common/error.h"

namespace gptqw {

HessianAccumulator::HessianAccumulator(int64_t in_features, std::string layer, Backend& backend,
                                       Matrix storage)
    : H_(std::move(storage)), layer_(std::move(layer)), backend_(&backend) {
  H_.resize(in_features, in_features);  // keeps the storage when its size is right
  H_.setZero();
}

void HessianAccumulator::add_batch(const Eigen::Ref<const Matrix>& X, int64_t n_sequences) {
  if (X.cols() != H_.rows())
    throw Error("layer '" + layer_ + "': Hessian of " + shape_str({H_.rows(), H_.cols()}) +
                " given inputs of shape " + shape_str({X.rows(), X.cols()}) + ", expected [*, " +
                std::to_string(H_.rows()) + "]");
  if (n_sequences < 1)
    throw Error("layer '" + layer_ + "': a Hessian batch must hold at least one sequence, got " +
                std::to_string(n_sequences));
  if (!all_finite(X))
    throw Error("layer '" + layer_ + "': non-finite value (NaN or Inf) in the calibration inputs " +
                shape_str({X.rows(), X.cols()}));
  // The reference multiplies the fp32 tensor by Python doubles, which torch rounds to fp32.
  H_ *= static_cast<float>(double(n_) / double(n_ + n_sequences));
  n_ += n_sequences;
  backend_->accumulate_hessian(H_, X, static_cast<float>(std::sqrt(2.0 / double(n_))));
}

int64_t HessianAccumulator::dead_columns() const {
  return count_dead_columns(H_);
}

void HessianAccumulator::reset() {
  H_.setZero();
  n_ = 0;
}

int64_t count_dead_columns(const Eigen::Ref<const Matrix>& H) {
  return (H.diagonal().array() == 0.0f).count();
}

}  // namespace gptqw
