// gptq_dump: writes one random layer (W, calibration inputs X, our Hessian H) and our GPTQ
// results for a set of configurations, for tools/reference/gptq_reference.py to rerun the same
// layer through a PyTorch transcription of the reference and compare, code by code.
// Not a test: the cross-check needs Python and PyTorch, which CTest does not.
//
//   gptq_dump OUT_DIR [--rows 256] [--cols 512] [--tokens 4096] [--seed 1]
//
// Files (raw little-endian, row-major): W.f32 [N,K], X.f32 [T,K], H.f32 [K,K], and per
// configuration NAME: NAME.Q.f32 [N,K], NAME.codes.u8 [N,K], NAME.scales.f32 [G,N],
// NAME.zeros.i32 [G,N], NAME.g_idx.i32 [K], NAME.perm.i32 [K or 0]; manifest.json lists the
// shapes and each configuration's options, loss and damping.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "backend/cpu_backend.h"
#include "common/threads.h"
#include "common/error.h"
#include "common/output_file.h"
#include "quant/gptq.h"
#include "quant/hessian.h"

using namespace gptqw;
namespace fs = std::filesystem;

namespace {

void write_raw(const fs::path& path, const void* data, size_t bytes) {
  AtomicFile f(path);  // as every output is written (common/output_file.h)
  f.write(data, bytes);
  f.commit();
}

template <typename M>
void write_matrix(const fs::path& path, const M& m) {
  write_raw(path, m.data(), sizeof(typename M::Scalar) * size_t(m.size()));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: gptq_dump OUT_DIR [--rows N] [--cols K] [--tokens T] [--seed S]\n");
    return 2;
  }
  const fs::path out = argv[1];
  Eigen::Index N = 256, K = 512, T = 4096;
  unsigned seed = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const long v = std::stol(argv[i + 1]);
    if (a == "--rows")
      N = v;
    else if (a == "--cols")
      K = v;
    else if (a == "--tokens")
      T = v;
    else if (a == "--seed")
      seed = unsigned(v);
  }
  try {
    fs::create_directories(out);
    set_threads(0);
    // Correlated inputs with channels of different energy, like a transformer layer's:
    // X = Z A, A = per-channel scale (log-uniform over 2 decades) plus a dense random mixing.
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    Matrix Z(T, K), A(K, K), W(N, K);
    for (Eigen::Index i = 0; i < Z.size(); ++i) Z.data()[i] = normal(rng);
    for (Eigen::Index i = 0; i < A.size(); ++i) A.data()[i] = 0.15f * normal(rng);
    for (Eigen::Index i = 0; i < K; ++i) A(i, i) += std::pow(10.0f, uni(rng));
    const Matrix X = Z * A;
    for (Eigen::Index i = 0; i < W.size(); ++i) W.data()[i] = 0.02f * normal(rng);
    for (Eigen::Index i = 0; i < N; ++i) W(i, (i * 31) % K) *= 6.0f;  // a few outliers

    // Sequences of 128 tokens, in batches of 4 sequences: n counts sequences.
    HessianAccumulator acc(K, "dump");
    const Eigen::Index seq = 128, per_batch = 4 * seq;
    for (Eigen::Index t0 = 0; t0 < T; t0 += per_batch) {
      const Eigen::Index rows = std::min(per_batch, T - t0);
      acc.add_batch(X.middleRows(t0, rows), (rows + seq - 1) / seq);
    }
    write_matrix(out / "W.f32", W);
    write_matrix(out / "X.f32", X);
    write_matrix(out / "H.f32", acc.H());

    nlohmann::json manifest;
    manifest["rows"] = N;
    manifest["cols"] = K;
    manifest["tokens"] = T;
    manifest["seq_len"] = seq;
    manifest["sequences_per_batch"] = 4;
    manifest["n_samples"] = acc.n_samples();
    struct Case {
      const char* name;
      int bits, gs;
      bool sym, act, stat, mse;
    };
    const Case cases[] = {
        {"b4_g128_sym", 4, 128, true, false, false, false},
        {"b4_g128_asym", 4, 128, false, false, false, false},
        {"b4_g128_sym_act", 4, 128, true, true, false, false},
        {"b4_g128_asym_act", 4, 128, false, true, false, false},
        {"b4_row_sym", 4, -1, true, false, false, false},
        {"b4_row_asym", 4, -1, false, false, false, false},
        {"b4_row_sym_act", 4, -1, true, true, false, false},
        {"b4_row_asym_act", 4, -1, false, true, false, false},
        {"b4_g128_sym_act_static", 4, 128, true, true, true, false},
        {"b4_g32_asym", 4, 32, false, false, false, false},
        {"b3_g128_asym_act", 3, 128, false, true, false, false},
        {"b2_row_asym", 2, -1, false, false, false, false},
        {"b8_row_sym", 8, -1, true, false, false, false},
        {"b4_row_asym_mse", 4, -1, false, false, false, true},
    };
    for (const Case& c : cases) {
      GptqOptions o;
      o.quant.bits = c.bits;
      o.quant.group_size = c.gs;
      o.quant.sym = c.sym;
      o.quant.mse = c.mse;
      o.act_order = c.act;
      o.static_groups = c.stat;
      o.layer = c.name;
      const GptqResult r = gptq_quantize(W, acc.H(), o);
      const std::string n = c.name;
      write_matrix(out / (n + ".Q.f32"), r.weights.Q);
      write_matrix(out / (n + ".codes.u8"), r.weights.codes);
      write_matrix(out / (n + ".scales.f32"), r.weights.scales);
      write_matrix(out / (n + ".zeros.i32"), r.weights.zeros);
      write_raw(out / (n + ".g_idx.i32"), r.weights.g_idx.data(), 4 * r.weights.g_idx.size());
      write_raw(out / (n + ".perm.i32"), r.perm.data(), 4 * r.perm.size());
      manifest["configs"].push_back({{"name", n},
                                     {"bits", c.bits},
                                     {"group_size", c.gs},
                                     {"sym", c.sym},
                                     {"act_order", c.act},
                                     {"static_groups", c.stat},
                                     {"mse", c.mse},
                                     {"blocksize", o.blocksize},
                                     {"damp_fraction", o.damp_fraction},
                                     {"damp_used", r.damp_fraction},
                                     {"fell_back_to_rtn", r.fell_back_to_rtn},
                                     {"loss", r.loss},
                                     {"seconds", r.seconds}});
      std::printf("%-24s loss %.6g  %.3fs\n", c.name, r.loss, r.seconds);
    }
    write_file_atomically(out / "manifest.json", manifest.dump(2) + "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gptq_dump: %s\n", e.what());
    return 1;
  }
  return 0;
}
