// The rotary-embedding frequencies of a config: plain RoPE (theta^(-2i/head_dim)) and the scaled
// variants of config.json's rope_scaling, computed as transformers' modeling_rope_utils defines
// them (_compute_linear_scaling_rope_parameters, _compute_dynamic_ntk_parameters,
// _compute_llama3_parameters, _compute_yarn_parameters), in double precision:
//   linear   inv_freq / factor;
//   dynamic  theta' = theta * (factor * L / max_pos - (factor - 1))^(d / (d - 2)) with L the
//            length of the sequence being run when it exceeds max_position_embeddings (else
//            plain RoPE): transformers recomputes the frequencies for the longest position it
//            sees, so a window's result depends on the window length, and ours does too;
//   llama3   wavelengths above original / low_freq_factor divided by factor, below
//            original / high_freq_factor kept, a linear blend in between;
//   yarn     the ramp between interpolated and extrapolated frequencies over the dimensions
//            whose rotation counts lie between beta_slow and beta_fast, and cos / sin
//            multiplied by the attention factor (0.1 ln(factor) + 1 unless given).
#pragma once

#include <vector>

#include "model/config.h"
#include "model/llama.h"

namespace gptqw {

struct RopeFrequencies {
  std::vector<double> inv_freq;   // head_dim / 2 entries
  double attention_scaling = 1.0;  // cos and sin are multiplied by it (yarn)
};

// The frequencies for sequences of seqlen tokens (only dynamic NTK depends on it).
RopeFrequencies rope_frequencies(const ModelConfig& c, int seqlen);

// The cos / sin tables for sequences of seqlen tokens (positions [0, seqlen)).
Rope make_rope(const ModelConfig& c, int seqlen);

}  // namespace gptqw
