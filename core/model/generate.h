// Greedy decoding, as a sanity check that a model loads and runs correctly ("Once upon a
// time..." for stories260K). Recomputes the whole prefix each step: simple, and fast enough for
// the short continuations it is used for.
#pragma once

#include <cstdint>
#include <vector>

#include "common/progress.h"
#include "model/weights.h"

namespace gptqw {

// Appends up to n_new tokens to ids (which must not be empty: start with BOS), stopping early
// at a stop id (EOS, or BOS as llama2.c's models use it between stories) or at the model's
// context (max_position_embeddings). RoPE tables are made for the positions this run reaches,
// the prompt plus n_new, not for the whole context the config declares.
std::vector<int32_t> generate_greedy(const WeightSource& weights, std::vector<int32_t> ids,
                                     int n_new, const std::vector<int32_t>& stop_ids,
                                     const ProgressFn& progress = {});

}  // namespace gptqw
