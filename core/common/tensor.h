// The memory layout, stated once: safetensors and PyTorch store matrices row-major, so the
// engine's matrices are row-major too and map file data without transposing. A linear layer's
// weight W is [out_features, in_features]; activations X are [tokens, features]; Y = X W^T.
#pragma once

#include <Eigen/Core>

namespace gptqw {

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::VectorXf;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;

}  // namespace gptqw
