// The CUDA backend (cuda_backend.h) and cuda_backend_or_null(), which the core calls to find
// it (core/backend/backend.cpp).
#include "cuda_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/error.h"
#include "cuda_kernels.cuh"

namespace gptqw {

using Eigen::Index;

namespace {

// "[4096, 11008]", like shape_str() in the core (not linked from here: gptqw_core links us).
std::string shape(Index rows, Index cols) {
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive, bug 105651) about
  // "[" + std::to_string(...).
  std::string s(1, '[');
  s += std::to_string(rows);
  s += ", ";
  s += std::to_string(cols);
  s += ']';
  return s;
}

const char* cusolver_status_string(cusolverStatus_t s) {
  switch (s) {
    case CUSOLVER_STATUS_SUCCESS:
      return "success";
    case CUSOLVER_STATUS_NOT_INITIALIZED:
      return "cuSOLVER not initialized";
    case CUSOLVER_STATUS_ALLOC_FAILED:
      return "cuSOLVER could not allocate memory";
    case CUSOLVER_STATUS_INVALID_VALUE:
      return "invalid value";
    case CUSOLVER_STATUS_ARCH_MISMATCH:
      return "architecture mismatch";
    case CUSOLVER_STATUS_EXECUTION_FAILED:
      return "execution failed";
    case CUSOLVER_STATUS_INTERNAL_ERROR:
      return "internal error";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
      return "matrix type not supported";
    case CUSOLVER_STATUS_NOT_SUPPORTED:
      return "not supported";
    default:
      return "cuSOLVER error";
  }
}

// What a failed call says: "CUDA backend: gptq_block: cudaMemcpy2DAsync failed: out of memory
// (W1 [4096, 128], ...)". `call` is the call's source text; only its name is kept.
[[noreturn]] void fail(const char* op, const char* call, const std::string& err,
                       const std::string& shapes) {
  std::string c(call);
  if (const auto p = c.find('('); p != std::string::npos) c.resize(p);
  throw Error(std::string("CUDA backend: ") + op + ": " + c + " failed: " + err + " (" + shapes +
              ")");
}

struct Ctx {
  const char* op;
  std::string shapes;
};

void check(cudaError_t e, const char* call, const Ctx& ctx) {
  if (e != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so that the next call starts clean
    fail(ctx.op, call, cudaGetErrorString(e), ctx.shapes);
  }
}
void check(cublasStatus_t s, const char* call, const Ctx& ctx) {
  if (s != CUBLAS_STATUS_SUCCESS) fail(ctx.op, call, cublasGetStatusString(s), ctx.shapes);
}
void check(cusolverStatus_t s, const char* call, const Ctx& ctx) {
  if (s != CUSOLVER_STATUS_SUCCESS) fail(ctx.op, call, cusolver_status_string(s), ctx.shapes);
}
#define GPTQW_CHECK(ctx, call) check((call), #call, ctx)

// Offsets of the pieces of one operation in the arena, each aligned to 256 bytes.
class Layout {
 public:
  template <class T>
  std::size_t add(Index count) {
    const std::size_t at = end_;
    end_ = (end_ + std::size_t(count) * sizeof(T) + 255) / 256 * 256;
    return at;
  }
  std::size_t bytes() const { return end_; }

 private:
  std::size_t end_ = 0;
};

// Host <-> device copies of a row-major matrix whose host rows are `ld` elements apart; the
// device copy is packed (row stride = cols).
template <class T>
void copy_matrix(T* dst, Index dst_ld, const T* src, Index src_ld, Index rows, Index cols,
                 cudaMemcpyKind kind, cudaStream_t stream, const Ctx& ctx) {
  if (rows == 0 || cols == 0) return;
  if (rows == 1 || (dst_ld == cols && src_ld == cols))
    GPTQW_CHECK(ctx, cudaMemcpyAsync(dst, src, std::size_t(rows * cols) * sizeof(T), kind, stream));
  else
    GPTQW_CHECK(ctx, cudaMemcpy2DAsync(dst, std::size_t(dst_ld) * sizeof(T), src,
                                       std::size_t(src_ld) * sizeof(T), std::size_t(cols) * sizeof(T),
                                       std::size_t(rows), kind, stream));
}
template <class T>
void upload(T* dev, const T* host, Index rows, Index cols, Index ld, cudaStream_t stream,
            const Ctx& ctx) {
  copy_matrix(dev, cols, host, ld, rows, cols, cudaMemcpyHostToDevice, stream, ctx);
}
template <class T>
void download(T* host, Index ld, const T* dev, Index rows, Index cols, cudaStream_t stream,
              const Ctx& ctx) {
  copy_matrix(host, ld, dev, cols, rows, cols, cudaMemcpyDeviceToHost, stream, ctx);
}

// The version numbers CUDA reports (13000) as "13.0".
std::string cuda_version(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

}  // namespace

CudaBackend::CudaBackend(int device) : device_(device) {
  const Ctx ctx{"setup", "device " + std::to_string(device)};
  GPTQW_CHECK(ctx, cudaSetDevice(device));
  cudaDeviceProp p{};
  GPTQW_CHECK(ctx, cudaGetDeviceProperties(&p, device));
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  name_ = "cuda:" + std::to_string(device) + " (" + p.name + ")";
  char mem[32];
  std::snprintf(mem, sizeof mem, "%.1f GiB", double(p.totalGlobalMem) / (1024.0 * 1024 * 1024));
  status_ = name_ + ", compute capability " + std::to_string(p.major) + "." +
            std::to_string(p.minor) + ", " + mem + ", driver CUDA " + cuda_version(driver) +
            ", runtime CUDA " + cuda_version(runtime);

  GPTQW_CHECK(ctx, cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  GPTQW_CHECK(ctx, cublasCreate(&blas_));
  GPTQW_CHECK(ctx, cublasSetStream(blas_, stream_));
  // fp32 arithmetic in every phase: CUBLAS_DEFAULT_MATH never trades fp32 for TF32 (only
  // CUBLAS_TF32_TENSOR_OP_MATH would); the CPU backend is plain fp32 and so is the reference.
  GPTQW_CHECK(ctx, cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
  GPTQW_CHECK(ctx, cublasSetPointerMode(blas_, CUBLAS_POINTER_MODE_HOST));
  GPTQW_CHECK(ctx, cusolverDnCreate(&solver_));
  GPTQW_CHECK(ctx, cusolverDnSetStream(solver_, stream_));
}

CudaBackend::~CudaBackend() {
  // Nothing to report from a destructor: errors are ignored.
  cudaSetDevice(device_);
  if (arena_) cudaFree(arena_);
  if (solver_) cusolverDnDestroy(solver_);
  if (blas_) cublasDestroy(blas_);
  if (stream_) cudaStreamDestroy(stream_);
}

char* CudaBackend::arena(std::size_t bytes, const std::string& what) {
  if (bytes <= arena_bytes_) return arena_;
  if (arena_) {
    cudaStreamSynchronize(stream_);
    cudaFree(arena_);
    arena_ = nullptr;
    arena_bytes_ = 0;
  }
  // Round up to 64 MiB so that a sequence of slightly growing calls reallocates rarely.
  const std::size_t round = std::size_t(64) << 20;
  const std::size_t want = (bytes + round - 1) / round * round;
  void* p = nullptr;
  std::size_t got = want;
  cudaError_t e = cudaMalloc(&p, want);
  if (e != cudaSuccess) {  // the rounding may be what does not fit
    cudaGetLastError();
    got = bytes;
    e = cudaMalloc(&p, bytes);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw Error("CUDA backend: " + what + ": cannot allocate " + std::to_string(bytes >> 20) +
                " MiB of device memory on " + name_ + ": " + cudaGetErrorString(e));
  }
  arena_ = static_cast<char*>(p);
  arena_bytes_ = got;
  return arena_;
}

void CudaBackend::accumulate_hessian(Eigen::Ref<Matrix> H, const Eigen::Ref<const Matrix>& X,
                                     float s) {
  std::lock_guard lock(mutex_);
  const Index K = H.rows(), T = X.rows();
  const Ctx ctx{"accumulate_hessian",
                "H " + shape(H.rows(), H.cols()) + ", X " + shape(X.rows(), X.cols())};
  if (H.cols() != K || X.cols() != K)
    throw Error("CUDA backend: accumulate_hessian: shapes do not match (" + ctx.shapes + ")");
  if (K == 0 || T == 0) return;
  GPTQW_CHECK(ctx, cudaSetDevice(device_));
  Layout L;
  const std::size_t oH = L.add<float>(K * K), oX = L.add<float>(T * K);
  char* base = arena(L.bytes(), ctx.op);
  float* dH = reinterpret_cast<float*>(base + oH);
  float* dX = reinterpret_cast<float*>(base + oX);
  upload(dH, H.data(), K, K, H.outerStride(), stream_, ctx);
  upload(dX, X.data(), T, K, X.outerStride(), stream_, ctx);
  // Scale the inputs first, as the CPU backend and the reference do (same rounding: one
  // multiply per element). Then H += Xs^T Xs: the packed row-major Xs [T, K] is the
  // column-major [K, T] matrix A = Xs^T, and SYRK computes A A^T. It updates the column-major
  // upper triangle, which is the row-major lower one, the triangle the CPU backend updates;
  // the mirror copies it onto the other.
  GPTQW_CHECK(ctx, cublasSscal_64(blas_, T * K, &s, dX, 1));
  const float one = 1.0f;
  GPTQW_CHECK(ctx, cublasSsyrk_64(blas_, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, K, T, &one, dX, K,
                                  &one, dH, K));
  GPTQW_CHECK(ctx, cuda::mirror_lower_to_upper(dH, K, stream_));
  download(H.data(), H.outerStride(), dH, K, K, stream_, ctx);
  GPTQW_CHECK(ctx, cudaStreamSynchronize(stream_));
}

bool CudaBackend::cholesky_inverse_upper(const Eigen::Ref<const Matrix>& H, Matrix& Hinv) {
  std::lock_guard lock(mutex_);
  const Index K = H.rows();
  const Ctx ctx{"cholesky_inverse_upper", "H " + shape(H.rows(), H.cols())};
  if (H.cols() != K)
    throw Error("CUDA backend: cholesky_inverse_upper: H is not square (" + ctx.shapes + ")");
  if (K > INT32_MAX)
    throw Error("CUDA backend: cholesky_inverse_upper: too large (" + ctx.shapes + ")");
  if (K == 0) {
    Hinv.resize(0, 0);
    return true;
  }
  GPTQW_CHECK(ctx, cudaSetDevice(device_));
  const int n = int(K);
  // Row-major against column-major: the CPU backend reads H's row-major lower triangle. That
  // triangle is copied onto the upper one first, so that the column-major LOWER triangle that
  // cuSOLVER reads (the row-major upper one) holds it too. Then, all in the column-major
  // lower triangle:
  //   POTRF: H = L L^T;  POTRI: H^-1 from L;  POTRF: H^-1 = L2 L2^T.
  // The upper factor the interface wants is U = L2^T; the column-major L2 read row-major is
  // L2^T, so the buffer is U row-major once its other triangle (row-major strictly lower:
  // leftovers of H) is cleared.
  int lwork_f = 0, lwork_i = 0;
  {
    Layout probe;
    probe.add<float>(K * K);
    float* dA = reinterpret_cast<float*>(arena(probe.bytes(), ctx.op));
    GPTQW_CHECK(ctx,
                cusolverDnSpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, n, dA, n, &lwork_f));
    GPTQW_CHECK(ctx,
                cusolverDnSpotri_bufferSize(solver_, CUBLAS_FILL_MODE_LOWER, n, dA, n, &lwork_i));
  }
  const Index lwork = std::max(lwork_f, lwork_i);
  Layout L;
  const std::size_t oA = L.add<float>(K * K), oW = L.add<float>(lwork), oI = L.add<int>(1);
  char* base = arena(L.bytes(), ctx.op);
  float* dA = reinterpret_cast<float*>(base + oA);
  float* dW = reinterpret_cast<float*>(base + oW);
  int* dInfo = reinterpret_cast<int*>(base + oI);
  upload(dA, H.data(), K, K, H.outerStride(), stream_, ctx);
  GPTQW_CHECK(ctx, cuda::mirror_lower_to_upper(dA, K, stream_));

  // devInfo > 0: a leading minor is not positive definite (POTRF) or the factor is singular
  // (POTRI): the caller raises the damping. devInfo < 0 is a bad argument: a bug.
  const auto ok = [&](const char* step) {
    int info = 0;
    GPTQW_CHECK(ctx, cudaMemcpyAsync(&info, dInfo, sizeof(int), cudaMemcpyDeviceToHost, stream_));
    GPTQW_CHECK(ctx, cudaStreamSynchronize(stream_));
    if (info < 0)
      fail(ctx.op, step, "argument " + std::to_string(-info) + " is invalid", ctx.shapes);
    return info == 0;
  };
  GPTQW_CHECK(ctx, cusolverDnSpotrf(solver_, CUBLAS_FILL_MODE_LOWER, n, dA, n, dW, lwork_f, dInfo));
  if (!ok("cusolverDnSpotrf")) return false;
  GPTQW_CHECK(ctx, cusolverDnSpotri(solver_, CUBLAS_FILL_MODE_LOWER, n, dA, n, dW, lwork_i, dInfo));
  if (!ok("cusolverDnSpotri")) return false;
  GPTQW_CHECK(ctx, cusolverDnSpotrf(solver_, CUBLAS_FILL_MODE_LOWER, n, dA, n, dW, lwork_f, dInfo));
  if (!ok("cusolverDnSpotrf")) return false;
  GPTQW_CHECK(ctx, cuda::zero_strictly_lower(dA, K, stream_));
  Hinv.resize(K, K);  // only now: H may be a view of Hinv
  download(Hinv.data(), K, dA, K, K, stream_, ctx);
  GPTQW_CHECK(ctx, cudaStreamSynchronize(stream_));
  // POTRF lets a NaN pivot through (no comparison with a NaN fails): like the CPU backend,
  // a non-finite factor is a failure.
  const float* h = Hinv.data();
  bool finite = true;
  for (Index i = 0; i < K * K; ++i) finite &= std::isfinite(h[i]);
  return finite;
}

double CudaBackend::gptq_block(Eigen::Ref<Matrix> W1, const Eigen::Ref<const Matrix>& Hinv1,
                               const Eigen::Ref<const Matrix>& scales,
                               const Eigen::Ref<const Matrix>& zeros,
                               std::span<const int32_t> col_group, int maxq, bool exact_ties,
                               Eigen::Ref<Matrix> Q1, Eigen::Ref<Matrix> Err1,
                               Eigen::Ref<Codes> codes1) {
  std::lock_guard lock(mutex_);
  const Index N = W1.rows(), B = W1.cols(), G = scales.rows();
  const Ctx ctx{"gptq_block", "W1 " + shape(N, B) + ", Hinv1 " + shape(Hinv1.rows(), Hinv1.cols()) +
                                  ", scales " + shape(scales.rows(), scales.cols()) + ", zeros " +
                                  shape(zeros.rows(), zeros.cols()) + ", col_group [" +
                                  std::to_string(col_group.size()) + "]"};
  // A bad index would be an illegal address on the device, which ends the CUDA context for
  // the whole process: check here what the CPU backend trusts.
  const bool shapes_ok = Hinv1.rows() == B && Hinv1.cols() == B && scales.cols() == N &&
                         zeros.rows() == G && zeros.cols() == N && Index(col_group.size()) == B &&
                         Q1.rows() == N && Q1.cols() == B && Err1.rows() == N && Err1.cols() == B &&
                         codes1.rows() == N && codes1.cols() == B && maxq >= 1 && maxq <= 255;
  if (!shapes_ok)
    throw Error("CUDA backend: gptq_block: shapes do not match (" + ctx.shapes + ", maxq " +
                std::to_string(maxq) + ")");
  if (N == 0 || B == 0) return 0.0;
  int32_t gmin = col_group[0], gmax = col_group[0];
  for (const int32_t g : col_group) {
    gmin = std::min(gmin, g);
    gmax = std::max(gmax, g);
  }
  if (gmin < 0 || gmax >= G)
    throw Error("CUDA backend: gptq_block: col_group names group " +
                std::to_string(gmin < 0 ? gmin : gmax) + " of " + std::to_string(G) + " (" +
                ctx.shapes + ")");
  GPTQW_CHECK(ctx, cudaSetDevice(device_));
  // Only the grid rows the block uses travel; col_group is rebased on the first of them.
  const Index Gb = Index(gmax) - gmin + 1;
  std::vector<int32_t> groups(col_group.begin(), col_group.end());
  for (int32_t& g : groups) g -= gmin;
  const Index scratch = cuda::gptq_block_scratch_floats(N, B, device_);

  Layout L;
  const std::size_t oW = L.add<float>(N * B), oH = L.add<float>(B * B), oS = L.add<float>(Gb * N),
                    oZ = L.add<float>(Gb * N), oG = L.add<int32_t>(B), oQ = L.add<float>(N * B),
                    oE = L.add<float>(N * B), oC = L.add<uint8_t>(N * B), oL = L.add<double>(N),
                    oT = L.add<float>(scratch);
  char* base = arena(L.bytes(), ctx.op);
  float* dW = reinterpret_cast<float*>(base + oW);
  float* dH = reinterpret_cast<float*>(base + oH);
  float* dS = reinterpret_cast<float*>(base + oS);
  float* dZ = reinterpret_cast<float*>(base + oZ);
  int32_t* dG = reinterpret_cast<int32_t*>(base + oG);
  float* dQ = reinterpret_cast<float*>(base + oQ);
  float* dE = reinterpret_cast<float*>(base + oE);
  uint8_t* dC = reinterpret_cast<uint8_t*>(base + oC);
  double* dL = reinterpret_cast<double*>(base + oL);
  float* dT = scratch > 0 ? reinterpret_cast<float*>(base + oT) : nullptr;

  upload(dW, W1.data(), N, B, W1.outerStride(), stream_, ctx);
  upload(dH, Hinv1.data(), B, B, Hinv1.outerStride(), stream_, ctx);
  upload(dS, scales.data() + Index(gmin) * scales.outerStride(), Gb, N, scales.outerStride(),
         stream_, ctx);
  upload(dZ, zeros.data() + Index(gmin) * zeros.outerStride(), Gb, N, zeros.outerStride(), stream_,
         ctx);
  upload(dG, groups.data(), 1, B, B, stream_, ctx);
  GPTQW_CHECK(ctx, cuda::gptq_block(dW, dH, dS, dZ, dG, N, B, static_cast<float>(maxq), exact_ties,
                                    dQ, dE, dC, dL, dT, device_, stream_));
  download(Q1.data(), Q1.outerStride(), dQ, N, B, stream_, ctx);
  download(Err1.data(), Err1.outerStride(), dE, N, B, stream_, ctx);
  download(codes1.data(), codes1.outerStride(), dC, N, B, stream_, ctx);
  std::vector<double> row_loss(std::size_t(N), 0.0);
  download(row_loss.data(), N, dL, 1, N, stream_, ctx);
  GPTQW_CHECK(ctx, cudaStreamSynchronize(stream_));
  double loss = 0;
  for (const double l : row_loss) loss += l;
  return loss;
}

void CudaBackend::lazy_batch_update(Eigen::Ref<Matrix> W_rest, const Eigen::Ref<const Matrix>& Err1,
                                    const Eigen::Ref<const Matrix>& Hinv_rows) {
  std::lock_guard lock(mutex_);
  const Index N = W_rest.rows(), M = W_rest.cols(), B = Err1.cols();
  const Ctx ctx{"lazy_batch_update", "W_rest " + shape(N, M) + ", Err1 " + shape(Err1.rows(), B) +
                                         ", Hinv_rows " +
                                         shape(Hinv_rows.rows(), Hinv_rows.cols())};
  if (Err1.rows() != N || Hinv_rows.rows() != B || Hinv_rows.cols() != M)
    throw Error("CUDA backend: lazy_batch_update: shapes do not match (" + ctx.shapes + ")");
  if (N == 0 || M == 0 || B == 0) return;
  GPTQW_CHECK(ctx, cudaSetDevice(device_));
  Layout L;
  const std::size_t oW = L.add<float>(N * M), oE = L.add<float>(N * B), oH = L.add<float>(B * M);
  char* base = arena(L.bytes(), ctx.op);
  float* dW = reinterpret_cast<float*>(base + oW);
  float* dE = reinterpret_cast<float*>(base + oE);
  float* dH = reinterpret_cast<float*>(base + oH);
  upload(dW, W_rest.data(), N, M, W_rest.outerStride(), stream_, ctx);
  upload(dE, Err1.data(), N, B, Err1.outerStride(), stream_, ctx);
  upload(dH, Hinv_rows.data(), B, M, Hinv_rows.outerStride(), stream_, ctx);
  // Column-major: W^T [M, N] -= Hinv_rows^T [M, B] * Err1^T [B, N], which is
  // W -= Err1 Hinv_rows transposed.
  const float minus_one = -1.0f, one = 1.0f;
  GPTQW_CHECK(ctx, cublasSgemm_64(blas_, CUBLAS_OP_N, CUBLAS_OP_N, M, N, B, &minus_one, dH, M, dE,
                                  B, &one, dW, M));
  download(W_rest.data(), W_rest.outerStride(), dW, N, M, stream_, ctx);
  GPTQW_CHECK(ctx, cudaStreamSynchronize(stream_));
}

void CudaBackend::gemm_xwt(const Eigen::Ref<const Matrix>& X, const Eigen::Ref<const Matrix>& W,
                           Eigen::Ref<Matrix> Y) {
  std::lock_guard lock(mutex_);
  const Index T = X.rows(), K = X.cols(), N = W.rows();
  const Ctx ctx{"gemm_xwt", "X " + shape(T, K) + ", W " + shape(N, W.cols()) + ", Y " +
                                shape(Y.rows(), Y.cols())};
  if (W.cols() != K || Y.rows() != T || Y.cols() != N)
    throw Error("CUDA backend: gemm_xwt: shapes do not match (" + ctx.shapes + ")");
  if (T == 0 || N == 0) return;
  if (K == 0) {
    Y.setZero();
    return;
  }
  GPTQW_CHECK(ctx, cudaSetDevice(device_));
  Layout L;
  const std::size_t oX = L.add<float>(T * K), oW = L.add<float>(N * K), oY = L.add<float>(T * N);
  char* base = arena(L.bytes(), ctx.op);
  float* dX = reinterpret_cast<float*>(base + oX);
  float* dW = reinterpret_cast<float*>(base + oW);
  float* dY = reinterpret_cast<float*>(base + oY);
  upload(dX, X.data(), T, K, X.outerStride(), stream_, ctx);
  upload(dW, W.data(), N, K, W.outerStride(), stream_, ctx);
  // Column-major: Y^T [N, T] = W [N, K] (the packed row-major W read column-major is W^T
  // [K, N], transposed back by OP_T) * X^T [K, T] (the packed row-major X read column-major).
  const float one = 1.0f, zero = 0.0f;
  GPTQW_CHECK(ctx, cublasSgemm_64(blas_, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &one, dW, K, dX, K,
                                  &zero, dY, N));
  download(Y.data(), Y.outerStride(), dY, T, N, stream_, ctx);
  GPTQW_CHECK(ctx, cudaStreamSynchronize(stream_));
}

namespace {

struct Probed {
  Backend* backend = nullptr;
  std::string status;
};

// Device 0 (CUDA_VISIBLE_DEVICES picks which GPU that is), once per process.
Probed probe_device() {
  Probed r;
  const std::string no = "no CUDA device answers: ";
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    r.status = no + cudaGetErrorString(e);
    if (e == cudaErrorInsufficientDriver) {
      int driver = 0, runtime = 0;
      cudaDriverGetVersion(&driver);
      cudaRuntimeGetVersion(&runtime);
      r.status += driver == 0 ? std::string(" (no NVIDIA driver is loaded)")
                              : " (the driver supports CUDA " + cuda_version(driver) +
                                    ", this build needs CUDA " + cuda_version(runtime) + ")";
    }
    return r;
  }
  if (count <= 0) {
    r.status = no + "no CUDA device found";
    return r;
  }
  cudaDeviceProp p{};
  if (const cudaError_t pe = cudaGetDeviceProperties(&p, 0); pe != cudaSuccess) {
    cudaGetLastError();
    r.status = no + "device 0: " + cudaGetErrorString(pe);
    return r;
  }
  const std::string dev = std::string("device 0 (") + p.name + ")";
  if (p.major < 8) {
    r.status = no + dev + " has compute capability " + std::to_string(p.major) + "." +
               std::to_string(p.minor) + "; this build's kernels need 8.0 or later";
    return r;
  }
  if (const cudaError_t pe = cuda::probe(0); pe != cudaSuccess) {
    cudaGetLastError();
    r.status = no + dev + ": " + cudaGetErrorString(pe);
    return r;
  }
  try {
    // Never deleted: the CUDA runtime may be torn down before static destructors run.
    auto* b = new CudaBackend(0);
    r.backend = b;
    r.status = b->status();
  } catch (const std::exception& ex) {
    r.status = no + ex.what();
  }
  return r;
}

}  // namespace

Backend* cuda_backend_or_null(std::string* why) {
  static const Probed probed = probe_device();
  if (why) *why = probed.status;
  return probed.backend;
}

}  // namespace gptqw
