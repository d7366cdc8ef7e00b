// bench_gptq: timings of the GPTQ core on LLaMA-7B shapes, next to this machine's fp32 GEMM
// throughput (Eigen, same threads), so that each phase can be read as a fraction of what the
// machine can do. tools/reference/bench_gptq_torch.py runs the same steps in PyTorch.
//
//   bench_gptq [--threads 2] [--reps 2] [--tokens 2048] [--shapes 4096x4096,11008x4096]
//              [--gemm 4096] [--bits 4] [--group 128] [--act-order]
//
// Shapes are W's, out x in. Each figure is the best of --reps runs (others may share the
// machine; the best run is the least disturbed). FLOP counts: GEMM 2mnk; Hessian 2·T·K² (the
// X^T X product; the symmetric update does half of that work); Hinv 2/3·K³ (the work done: one
// Cholesky factorisation and one triangular inverse, linalg/factor.h); in-block loops
// N·K·B (B = 128); lazy batch 2·N·B·(K - i2) summed over blocks.
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu_backend.h"
#include "common/threads.h"
#include "quant/gptq.h"
#include "quant/hessian.h"
#include "test_matrices.h"
#include "bench_timing.h"

using namespace gptqw;
using Eigen::Index;

using bench::best_of;

int main(int argc, char** argv) try {
  int threads = 2, reps = 2, bits = 4, group = 128;
  Index tokens = 2048, gemm_n = 4096;
  bool act_order = false;
  std::vector<std::pair<Index, Index>> shapes = {{4096, 4096}, {11008, 4096}};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--threads")
      threads = std::stoi(next());
    else if (a == "--reps")
      reps = std::max(1, std::stoi(next()));
    else if (a == "--tokens")
      tokens = std::stol(next());
    else if (a == "--gemm")
      gemm_n = std::stol(next());
    else if (a == "--bits")
      bits = std::stoi(next());
    else if (a == "--group")
      group = std::stoi(next());
    else if (a == "--act-order")
      act_order = true;
    else if (a == "--shapes") {
      shapes.clear();
      std::string s = next();
      size_t p = 0;
      while (p < s.size()) {
        size_t q = s.find(',', p);
        if (q == std::string::npos) q = s.size();
        const std::string one = s.substr(p, q - p);
        const size_t x = one.find('x');
        shapes.emplace_back(std::stol(one.substr(0, x)), std::stol(one.substr(x + 1)));
        p = q + 1;
      }
    } else {
      throw std::invalid_argument("unknown option " + a);
    }
  }
  set_threads(threads);
  std::printf("bench_gptq: %d thread(s) (Eigen %d, OpenMP %d), best of %d\n", threads,
              Eigen::nbThreads(), omp_get_max_threads(), reps);

  // 1. The machine's fp32 GEMM throughput with Eigen, square and at the lazy batch's shape.
  {
    const Matrix A = test::random_matrix(gemm_n, gemm_n, 1), B = test::random_matrix(gemm_n, gemm_n, 2);
    Matrix C(gemm_n, gemm_n);
    const double t = best_of(reps, [&] { C.noalias() = A * B; });
    std::printf("GEMM %ldx%ldx%ld (Eigen)              %8.3f s  %7.1f GFLOP/s\n", long(gemm_n),
                long(gemm_n), long(gemm_n), t, 2.0 * gemm_n * gemm_n * gemm_n / t / 1e9);
    const Matrix E = test::random_matrix(gemm_n, 128, 3), Hb = test::random_matrix(128, gemm_n, 4);
    const double t2 = best_of(reps, [&] { cpu_backend().lazy_batch_update(C, E, Hb); });
    std::printf("GEMM %ldx128x%ld (lazy-batch shape)     %8.3f s  %7.1f GFLOP/s\n", long(gemm_n),
                long(gemm_n), t2, 2.0 * gemm_n * gemm_n * 128 / t2 / 1e9);
  }

  // 2. Hessian accumulation: one batch of `tokens` tokens at the widest K.
  Index Kmax = 0;
  for (auto [n, k] : shapes) Kmax = std::max(Kmax, k);
  {
    const Matrix X = test::random_matrix(tokens, Kmax, 5);
    HessianAccumulator acc(Kmax, "bench");
    const double t = best_of(reps, [&] { acc.add_batch(X, 1); });
    std::printf("Hessian %ld tokens x %ld                %8.3f s  %7.1f GFLOP/s (2*T*K^2)\n",
                long(tokens), long(Kmax), t, 2.0 * tokens * Kmax * Kmax / t / 1e9);
  }

  // 3. GPTQ solve given H. H from correlated inputs so that the solve sees a realistic
  //    spectrum (a few strong directions, a long tail).
  for (auto [N, K] : shapes) {
    Matrix H;
    {
      Matrix X = test::random_matrix(tokens, K, 6);
      const Matrix mix = test::random_matrix(K, 64, 7, 1.0f);
      X += test::random_matrix(tokens, 64, 8) * mix.transpose();
      HessianAccumulator acc(K, "bench");
      acc.add_batch(X, 1);
      H = acc.H();
    }
    const Matrix W = test::random_matrix(N, K, 9, 0.02f);
    GptqOptions o;
    o.quant.bits = bits;
    o.quant.group_size = group;
    o.act_order = act_order;
    o.layer = "bench";
    GptqResult best;
    best.seconds = 1e30;
    for (int r = 0; r < reps; ++r) {
      GptqResult res = gptq_quantize(W, H, o);
      if (res.seconds < best.seconds) best = std::move(res);
    }
    const double f_hinv = 2.0 / 3.0 * double(K) * K * K;
    const double f_blocks = double(N) * K * o.blocksize;
    const double f_total = f_hinv + f_blocks + best.lazy_flops;
    std::printf("GPTQ %ldx%ld %s%s: %.3f s  %.1f GFLOP/s overall\n", long(N), long(K),
                o.quant.describe().c_str(), act_order ? " act-order" : "", best.seconds,
                f_total / best.seconds / 1e9);
    std::printf("  Hinv (damp, chol, triangular inverse) %7.3f s  %7.1f GFLOP/s\n",
                best.seconds_hinv, f_hinv / best.seconds_hinv / 1e9);
    std::printf("  in-block column loops                %8.3f s  %7.1f GFLOP/s\n",
                best.seconds_blocks, f_blocks / best.seconds_blocks / 1e9);
    std::printf("  lazy batch updates                   %8.3f s  %7.1f GFLOP/s\n",
                best.seconds_lazy, best.lazy_flops / best.seconds_lazy / 1e9);
    std::printf("  other (grids, copies, permutation)   %8.3f s\n",
                best.seconds - best.seconds_hinv - best.seconds_blocks - best.seconds_lazy);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_gptq: %s\n", e.what());
  return 2;
}
