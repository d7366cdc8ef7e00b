// The quantization pipeline's flop model: runs the sequential driver (GPTQ and RTN, as
// `gptqw compare` does, without the perplexity passes) on a model and prints, for each phase,
// the floating-point operations it implies, the time it took and the rate, against the fp32
// GEMM peak measured here first on the same threads (core/linalg's gemm, and Eigen's for
// comparison).
//
//   bench_pipeline --model DIR --calib FILE [--nsamples 16] [--seqlen 512] [--bits 4]
//                  [--group-size 128] [--act-order] [--threads 2] [--gemm 2048]
//
// Flops counted (multiply-add = 2), per block; T tokens, h hidden, I intermediate, q = heads x
// head_dim, kv = kv heads x head_dim, B = GPTQ block size, N x K each linear's shape:
//   linears      2 T (h q + 2 h kv + q h + 3 h I)             one whole block forward
//   attention    4 T s q / 2 (causal QK^T and PV, s = seqlen)  (the masked half not counted)
//   calibration  the forwards that produce each true-sequential group's inputs: staged, each
//                part of the block once (q/k/v, attention, o, gate/up); else the partial
//                forwards of every group (attention + q/k/v for [o], + o for [gate, up], ...)
//   hessian      T K^2 per distinct input (a symmetric rank-T update)
//   factor       2/3 K^3 per distinct Hessian (Cholesky + triangular inverse)
//   columns      N K B per module (the in-block updates, about B/2 columns each)
//   lazy         sum over blocks of 2 N B (K - i2) per module
//   metrics      N K^2 per triangular product: the reference and RTN's error per module
//   forward      the block re-run with the quantized weights (linears + attention); staged,
//                only the down projection
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "common/threads.h"
#include "linalg/cpu_kernels.h"
#include "linalg/gemm.h"
#include "model/model.h"
#include "pipeline/quantize.h"
#include "pipeline/run.h"
#include "bench_timing.h"
#include "test_matrices.h"

using namespace gptqw;

namespace {

using bench::now;

// Best of three n x n x n products, GFLOP/s.
template <class F>
double gemm_rate(int64_t n, F&& product) {
  return 2.0 * double(n) * double(n) * double(n) / bench::best_of(3, product) / 1e9;
}

struct Phase {
  const char* name;
  double flops, seconds;
};

}  // namespace

int main(int argc, char** argv) try {
  std::string model_dir, calib;
  int nsamples = 16, seqlen = 512, bits = 4, group = 128, threads = 2;
  int64_t gemm_n = 2048;
  bool act_order = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") model_dir = next();
    else if (a == "--calib") calib = next();
    else if (a == "--nsamples") nsamples = std::stoi(next());
    else if (a == "--seqlen") seqlen = std::stoi(next());
    else if (a == "--bits") bits = std::stoi(next());
    else if (a == "--group-size") group = std::stoi(next());
    else if (a == "--act-order") act_order = true;
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--gemm") gemm_n = std::stoll(next());
    else throw std::invalid_argument("unknown option " + a);
  }
  if (model_dir.empty() || calib.empty()) throw std::invalid_argument("--model and --calib are required");
  set_threads(threads);

  const Matrix A = test::random_matrix(gemm_n, gemm_n, 1), B = test::random_matrix(gemm_n, gemm_n, 2);
  Matrix C(gemm_n, gemm_n);
  const double peak = gemm_rate(gemm_n, [&] { linalg::matmul(C, A, B); });
  const double eigen = gemm_rate(gemm_n, [&] { C.noalias() = A * B; });
  std::printf("fp32 GEMM %lld^3 on %d threads: linalg (%s kernels) %.1f GFLOP/s, Eigen %.1f GFLOP/s\n",
              static_cast<long long>(gemm_n), threads, linalg::cpu_kernels().name, peak, eigen);

  const Model model = load_model(model_dir);
  const ModelConfig& c = model.config();
  RunSpec spec;
  spec.calib_file = calib;
  spec.nsamples = nsamples;
  spec.seqlen = seqlen;
  spec.options.gptq.quant.bits = bits;
  spec.options.gptq.quant.group_size = group;
  spec.options.gptq.act_order = act_order;
  const RunInputs inputs = prepare_run(model, spec);
  const double t0 = now();
  const QuantizeResult r = quantize_model(*model.weights, inputs.calib, spec.options, {});
  const double wall = now() - t0;

  // The flop model (see the header), for the whole model.
  const double T = double(nsamples) * seqlen, L = c.num_layers, h = c.hidden_size,
               I = c.intermediate_size, q = double(c.num_heads) * c.head_dim,
               kv = double(c.num_kv_heads) * c.head_dim, Bk = spec.options.gptq.blocksize;
  const double attention = 4.0 * T * seqlen * q / 2;
  const double qkv = 2 * T * (h * q + 2 * h * kv), o = 2 * T * q * h, gate_up = 4 * T * h * I,
               down = 2 * T * I * h;
  // Staged (r.staged): each part once, and the re-run is only the down projection. Else each
  // group re-runs the block up to its input, and the re-run is the whole block.
  const double calibration = r.staged ? L * (qkv + attention + o + gate_up)
                                      : L * ((qkv + attention) + (qkv + attention + o) +
                                             (qkv + attention + o + gate_up));
  const double hessian = L * T * (h * h + q * q + h * h + I * I);
  const double factor = L * 2.0 / 3.0 * (h * h * h + q * q * q + h * h * h + I * I * I);
  struct Shape { double N, K; };
  const Shape shapes[] = {{q, h}, {kv, h}, {kv, h}, {h, q}, {I, h}, {I, h}, {h, I}};
  double columns = 0, lazy = 0, metrics = 0;
  for (const Shape& s : shapes) {
    columns += s.N * s.K * Bk;
    for (double i2 = Bk; i2 < s.K; i2 += Bk) lazy += 2 * s.N * Bk * (s.K - i2);
    metrics += 2 * s.N * s.K * s.K;
  }
  columns *= L, lazy *= L, metrics *= L;
  const double forward = r.staged ? L * down : L * (qkv + attention + o + gate_up + down);
  const Phase phases[] = {
      {"calibration forward", calibration, r.seconds_calibration},
      {"Hessian accumulation", hessian, r.seconds_hessian},
      {"factorization", factor, r.seconds_factor},
      {"GPTQ column loops", columns, r.seconds_columns},
      {"GPTQ lazy updates", lazy, r.seconds_lazy},
      {"GPTQ rest", 0, r.seconds_gptq - r.seconds_columns - r.seconds_lazy},
      {"RTN", 0, r.seconds_rtn},
      {"error metrics", metrics, r.seconds_metrics},
      {"block re-run", forward, r.seconds_forward},
  };
  std::printf("\n%s: %d blocks, %lld x %lld calibration tokens, %d-bit g%d%s, %s\n",
              model_dir.c_str(), c.num_layers, static_cast<long long>(nsamples),
              static_cast<long long>(seqlen), bits, group, act_order ? " act-order" : "",
              r.staged ? "staged (each part of a block once)" : "groups re-run the block");
  std::printf("%-22s %10s %10s %10s %9s\n", "phase", "GFLOP", "seconds", "GFLOP/s", "of peak");
  double total_flops = 0, total_seconds = 0;
  for (const Phase& p : phases) {
    total_flops += p.flops;
    total_seconds += p.seconds;
    if (p.flops > 0)
      std::printf("%-22s %10.1f %10.2f %10.1f %8.0f%%\n", p.name, p.flops / 1e9, p.seconds,
                  p.flops / 1e9 / p.seconds, 100 * p.flops / 1e9 / p.seconds / peak);
    else
      std::printf("%-22s %10s %10.2f\n", p.name, "-", p.seconds);
  }
  std::printf("%-22s %10.1f %10.2f %10.1f %8.0f%%   (wall %.2f s, %.1f s per block)\n", "total",
              total_flops / 1e9, r.seconds, total_flops / 1e9 / r.seconds,
              100 * total_flops / 1e9 / r.seconds / peak, wall, wall / c.num_layers);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_pipeline: %s\n", e.what());
  return 1;
}
