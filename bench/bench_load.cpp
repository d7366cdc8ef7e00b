// bench_load: what opening a model costs before any block runs, phase by phase: the tokenizer
// (tokenizer.json parsed into the BPE tables), the weights (config.json, safetensors headers
// checked), the embedding and the lm_head converted to fp32 (for a tied head the embedding a
// second time, as perplexity and generation read it), and tokenizing a text. For large
// vocabularies (Qwen's 151,936 tokens, Llama 3's 128,256) these are the parts that do not shrink
// with the number of blocks.
//
//   bench_load --model DIR [--text FILE] [--reps 3]
#include <cstdio>
#include <string>

#include "bench_timing.h"
#include "common/text_file.h"
#include "model/model.h"
#include "model/tokenizer.h"

using namespace gptqw;

using bench::best_of;

int main(int argc, char** argv) {
  std::string model, text;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model" && i + 1 < argc) model = argv[++i];
    else if (a == "--text" && i + 1 < argc) text = argv[++i];
    else if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_load --model DIR [--text FILE] [--reps 3]\n");
      return 2;
    }
  }
  if (model.empty()) {
    std::fprintf(stderr, "usage: bench_load --model DIR [--text FILE] [--reps 3]\n");
    return 2;
  }
  try {
    std::shared_ptr<const Tokenizer> tok;
    const double t_tok = best_of(reps, [&] { tok = load_tokenizer(model); });
    std::shared_ptr<const WeightSource> w;
    const double t_open = best_of(reps, [&] { w = open_weights(model); });
    const ModelConfig& c = w->config();
    const double t_embed = best_of(reps, [&] { Matrix e = w->embedding(); });
    const double t_head = best_of(reps, [&] { Matrix h = w->lm_head(); });
    std::printf("model %s: vocabulary %d x hidden %d, %s head, tokenizer %d tokens\n", model.c_str(),
                c.vocab_size, c.hidden_size, c.tie_word_embeddings ? "tied" : "separate",
                tok->vocab_size());
    std::printf("tokenizer.json loaded          %8.3f s\n", t_tok);
    std::printf("weights opened (headers)       %8.3f s\n", t_open);
    std::printf("embedding to fp32              %8.3f s  (%.0f MB)\n", t_embed,
                double(c.vocab_size) * c.hidden_size * 4 / 1e6);
    std::printf("lm_head to fp32%s %8.3f s\n", c.tie_word_embeddings ? " (tied: again) " : "               ",
                t_head);
    if (!text.empty()) {
      const std::string s = read_text_file(text);
      size_t n = 0;
      const double t_enc = best_of(reps, [&] { n = tok->encode(s, true).size(); });
      std::printf("tokenize %zu bytes -> %zu ids %8.3f s\n", s.size(), n, t_enc);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_load: %s\n", e.what());
    return 1;
  }
  return 0;
}
