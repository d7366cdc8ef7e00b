// What the quality statistics cost: the original and two quantized versions of a model
// evaluated on the same windows, (a) as three plain perplexity passes, (b) in lockstep with
// every prediction compared over the whole vocabulary (compare_models: KLD, Δp, top-K, by
// position). The quantized versions are RTN at 4 and 3 bits (groups of 128): the statistics'
// cost does not depend on how the weights were quantized. Prints both times, the overhead of
// (b) over (a), and the forward passes' flop rate (2 (P L + V H) tokens per model).
//   bench_quality --model DIR --text FILE [--seqlen 512] [--windows 4] [--threads 2] [--repeats 2]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_timing.h"
#include "common/text_file.h"
#include "common/threads.h"
#include "model/model.h"
#include "pipeline/divergence.h"
#include "pipeline/perplexity.h"
#include "pipeline/quantize.h"
#include "quant/rtn.h"

using namespace gptqw;

int main(int argc, char** argv) {
  std::string model_dir, text;
  int seqlen = 512, windows = 4, threads = 2, repeats = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--model") model_dir = next();
    else if (a == "--text") text = next();
    else if (a == "--seqlen") seqlen = std::atoi(next().c_str());
    else if (a == "--windows") windows = std::atoi(next().c_str());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--repeats") repeats = std::atoi(next().c_str());
    else model_dir.clear(), i = argc;
  }
  if (model_dir.empty() || text.empty()) {
    std::fprintf(stderr, "usage: bench_quality --model DIR --text FILE [--seqlen 512] [--windows 4] "
                         "[--threads 2] [--repeats 2]\n");
    return 2;
  }
  threads = set_threads(threads);
  const Model model = load_model(model_dir);
  const ModelConfig& c = model.config();
  const std::vector<int32_t> ids = model.tokenizer->encode(read_text_file(text), true);

  // Two quantized versions, kept as codes as a run keeps them.
  std::vector<QuantizedModel> quantized(2, QuantizedModel(model.weights));
  for (int b = 0; b < c.num_layers; ++b) {
    const BlockWeights block = model.weights->block(b);
    for (LinearKind k : kAllLinears)
      for (int v = 0; v < 2; ++v) {
        QuantConfig q;
        q.bits = v == 0 ? 4 : 3;
        q.group_size = 128;
        quantized[size_t(v)].set(b, k, rtn_quantize(block[k].W, q));
      }
  }
  PerplexityOptions p;
  p.seqlen = seqlen;
  p.max_windows = windows;
  DivergenceOptions d;
  d.eval = p;
  const std::vector<const WeightSource*> q = {&quantized[0], &quantized[1]};

  std::vector<double> plain_ppl;
  const double plain = bench::best_of(repeats, [&] {
    plain_ppl = {perplexity(*model.weights, ids, p).ppl, perplexity(quantized[0], ids, p).ppl,
                 perplexity(quantized[1], ids, p).ppl};
  });
  DivergenceResult r;
  const double lockstep = bench::best_of(repeats, [&] { r = compare_models(*model.weights, q, ids, d); });

  double P = 0;
  for (LinearKind k : kAllLinears) {
    const auto [N, K] = linear_shape(c, k);
    P += double(N) * double(K);
  }
  const double tokens = double(r.windows) * seqlen;
  const double flops = 3 * 2 * (P * c.num_layers + double(c.vocab_size) * c.hidden_size) * tokens;
  std::printf("model %s: %d layers, hidden %d, vocabulary %d; %d windows of %d tokens; %d threads\n",
              model_dir.c_str(), c.num_layers, c.hidden_size, c.vocab_size, r.windows, seqlen, threads);
  std::printf("three perplexity passes: %.2f s (%.1f GFLOP/s)  ppl %.4f %.4f %.4f\n", plain, flops / plain / 1e9,
              plain_ppl[0], plain_ppl[1], plain_ppl[2]);
  std::printf("lockstep with statistics: %.2f s (%.1f GFLOP/s of forward)  ppl %.4f %.4f %.4f; KLD %.5f %.5f\n",
              lockstep, flops / lockstep / 1e9, r.original.ppl, r.quantized[0].perplexity.ppl,
              r.quantized[1].perplexity.ppl, r.quantized[0].summary.kld.value, r.quantized[1].summary.kld.value);
  std::printf("statistics overhead: %+.1f%% (%.0f positions x 2 models compared over %d entries)\n",
              100 * (lockstep / plain - 1), tokens - r.windows, c.vocab_size);
  const bool same = plain_ppl[0] == r.original.ppl && plain_ppl[1] == r.quantized[0].perplexity.ppl &&
                    plain_ppl[2] == r.quantized[1].perplexity.ppl;
  std::printf("perplexities %s\n", same ? "identical (same bits)" : "DIFFER");
  return same ? 0 : 1;
}
