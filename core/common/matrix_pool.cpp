#include "common/matrix_pool.h"

#include <algorithm>

namespace gptqw {

Matrix MatrixPool::take(Eigen::Index rows, Eigen::Index cols) {
  const auto it = std::find_if(free_.begin(), free_.end(),
                               [&](const Matrix& m) { return m.size() == rows * cols; });
  if (it == free_.end()) return Matrix(rows, cols);
  Matrix m = std::move(*it);
  free_.erase(it);
  m.resize(rows, cols);  // the same number of elements: Eigen keeps the storage
  return m;
}

void MatrixPool::give(Matrix&& m) {
  if (m.size() > 0 && bytes() + size_t(m.size()) * sizeof(float) <= max_idle_)
    free_.push_back(std::move(m));
  m = Matrix();  // freed here when not kept
}

size_t MatrixPool::bytes() const {
  size_t n = 0;
  for (const Matrix& m : free_) n += size_t(m.size()) * sizeof(float);
  return n;
}

}  // namespace gptqw
