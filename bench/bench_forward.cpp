// Forward-pass throughput (tokens per second), CPU fp32:
//  (a) the sample model stories260K, whole model with lm_head and NLL, windows of 512 tokens
//      of the TinyStories sample (the perplexity path);
//  (b) one decoder block with LLaMA-7B shapes (hidden 4096, 32 heads, intermediate 11008),
//      2048 tokens, seeded random weights.
// Compare with tools/reference/bench_forward_torch.py on the same machine and threads.
//   bench_forward [--threads N] [--windows N] [--repeats N] [--skip-7b]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/text_file.h"
#include "common/threads.h"
#include "model/llama.h"
#include "model/rope_scaling.h"
#include "model/model.h"
#include "pipeline/perplexity.h"

using namespace gptqw;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Matrix random_matrix(std::mt19937& rng, int64_t rows, int64_t cols, float stddev) {
  std::normal_distribution<float> d(0.f, stddev);
  Matrix m(rows, cols);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = d(rng);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, windows = 64, repeats = 3;
  bool skip_7b = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--windows" && i + 1 < argc) windows = std::atoi(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (a == "--skip-7b") skip_7b = true;
    else {
      std::fprintf(stderr, "usage: bench_forward [--threads N] [--windows N] [--repeats N] [--skip-7b]\n");
      return 2;
    }
  }
  threads = set_threads(threads);
  std::printf("threads %d\n", threads);

  // (a) sample model
  Model m = load_model(data_dir() / "models/stories260K");
  std::vector<int32_t> ids = m.tokenizer->encode(read_text_file(data_dir() / "text/tinystories-sample.txt"), true);
  PerplexityOptions opt;
  opt.seqlen = 512;
  opt.max_windows = windows;
  std::vector<double> times;
  PerplexityResult r;
  for (int k = 0; k < repeats; ++k) {
    auto t0 = Clock::now();
    r = perplexity(*m.weights, ids, opt);
    times.push_back(seconds_since(t0));
  }
  double t = median(times);
  std::printf("stories260K  %d windows x 512 tokens: %.3f s median, %.0f tokens/s (ppl %.4f)\n",
              r.windows, t, r.windows * 512.0 / t, r.ppl);

  if (skip_7b) return 0;
  // (b) one LLaMA-7B-shaped block
  ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = 4096;
  c.num_heads = c.num_kv_heads = 32;
  c.head_dim = 128;
  c.intermediate_size = 11008;
  c.num_layers = 1;
  c.rms_norm_eps = 1e-5f;
  std::mt19937 rng(0);
  BlockWeights w;
  w.attn_norm = Vector::Ones(c.hidden_size);
  w.mlp_norm = Vector::Ones(c.hidden_size);
  for (LinearKind k : kAllLinears) {
    auto [out, in] = linear_shape(c, k);
    w[k].W = random_matrix(rng, out, in, 0.02f);
  }
  const int T = 2048;
  Rope rope = make_rope(c, T);
  Matrix x0 = random_matrix(rng, T, c.hidden_size, 1.0f);
  times.clear();
  for (int k = 0; k < repeats + 1; ++k) {
    Matrix x = x0;
    auto t0 = Clock::now();
    block_forward(c, w, rope, x, T);
    if (k) times.push_back(seconds_since(t0));  // the first run warms up
  }
  t = median(times);
  double flops = 2.0 * T * (4.0 * 4096 * 4096 + 3.0 * 4096 * 11008) + 4.0 * T * T * 4096;
  std::printf("LLaMA-7B block, %d tokens: %.3f s median, %.0f tokens/s, %.1f GFLOP/s\n", T, t,
              T / t, flops / t / 1e9);
  return 0;
}
