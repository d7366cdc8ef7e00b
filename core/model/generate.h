// Text continuation: greedy decoding, and seeded sampling whose draws are the same on every
// machine (a fixed generator, the probabilities in float64 from logits that linalg makes
// bit-identical everywhere), so that two models given the same seed differ only where their
// distributions do. Recomputes the whole prefix each step: simple, and fast enough for the
// short continuations it is used for (a quick check, side-by-side comparisons).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/progress.h"
#include "model/weights.h"

namespace gptqw {

struct SamplingOptions {
  double temperature = 0;  // 0: greedy (the most probable token, the lowest id on ties)
  int top_k = 0;           // 0: no limit
  double top_p = 1;        // nucleus: the smallest set of most probable tokens holding top_p
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0; }
  // "greedy", "sampled: temperature 0.8, top-k 0, top-p 0.95, seed 1".
  std::string describe() const;
};

// Appends up to n_new tokens to ids (which must not be empty: start with BOS), stopping early
// at a stop id (EOS, or BOS as llama2.c's models use it between stories) or at the model's
// context (max_position_embeddings). RoPE tables are made for the positions this run reaches,
// the prompt plus n_new, not for the whole context the config declares.
std::vector<int32_t> generate(const WeightSource& weights, std::vector<int32_t> ids, int n_new,
                              const std::vector<int32_t>& stop_ids,
                              const SamplingOptions& sampling = {},
                              const ProgressFn& progress = {});

// The token drawn from one row of logits: the argmax when greedy, else a draw with `u` in
// [0, 1) from the tempered, top-k and top-p filtered distribution (tokens in decreasing
// probability, lower id first on ties; the first whose cumulative probability exceeds u).
int32_t pick_token(const float* logits, int64_t vocab, const SamplingOptions& sampling, double u);

}  // namespace gptqw
