#include "model/rope_scaling.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace gptqw {

namespace {

// theta^(-2i/d), i < d/2: the unscaled frequencies (transformers' default RoPE).
std::vector<double> plain_inv_freq(int d, double theta) {
  std::vector<double> inv(d / 2);
  for (int i = 0; i < d / 2; ++i) inv[i] = std::pow(theta, -2.0 * i / d);
  return inv;
}

}  // namespace

RopeFrequencies rope_frequencies(const ModelConfig& c, int seqlen) {
  const int d = c.head_dim;
  const double theta = c.rope_theta;
  const RopeScaling& s = c.rope_scaling;
  RopeFrequencies out;
  if (s.type == "default") {
    out.inv_freq = plain_inv_freq(d, theta);
  } else if (s.type == "linear") {
    out.inv_freq = plain_inv_freq(d, theta);
    for (double& f : out.inv_freq) f /= s.factor;
  } else if (s.type == "dynamic") {
    // The base grows only once the sequence is longer than the trained context.
    const double max_pos = c.max_position_embeddings;
    const double len = std::max<double>(seqlen, max_pos);
    const double base = theta * std::pow(s.factor * len / max_pos - (s.factor - 1), double(d) / (d - 2));
    out.inv_freq = plain_inv_freq(d, base);
  } else if (s.type == "llama3") {
    out.inv_freq = plain_inv_freq(d, theta);
    const double old_len = s.original_max_position_embeddings;
    const double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    for (double& f : out.inv_freq) {
      const double wavelen = 2 * M_PI / f;
      if (wavelen > low_wavelen) {
        f /= s.factor;  // low frequencies: interpolated
      } else if (!(wavelen < high_wavelen)) {
        // Medium frequencies: a blend that is 0 at low_wavelen and 1 at high_wavelen.
        const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }  // high frequencies: unchanged
    }
  } else if (s.type == "yarn") {
    const double max_pos = c.max_position_embeddings;
    // The dimension at which a frequency makes num_rotations turns over max_pos tokens.
    auto correction_dim = [&](double num_rotations) {
      return d * std::log(max_pos / (num_rotations * 2 * M_PI)) / (2 * std::log(theta));
    };
    double low = std::max(std::floor(correction_dim(s.beta_fast)), 0.0);
    double high = std::min(std::ceil(correction_dim(s.beta_slow)), double(d - 1));
    if (low == high) high += 0.001;  // as transformers does, against a division by zero
    out.inv_freq.resize(d / 2);
    for (int i = 0; i < d / 2; ++i) {
      const double pos_freq = std::pow(theta, 2.0 * i / d);
      const double extrapolation = 1.0 / pos_freq, interpolation = 1.0 / (s.factor * pos_freq);
      const double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
      const double keep = 1.0 - ramp;  // share of the extrapolated (unscaled) frequency
      out.inv_freq[i] = interpolation * (1 - keep) + extrapolation * keep;
    }
    out.attention_scaling = s.attention_factor ? *s.attention_factor : 0.1 * std::log(s.factor) + 1.0;
  } else {
    throw ConfigError("rope_scaling: rope_type \"" + s.type + "\" is not supported");
  }
  return out;
}

Rope make_rope(const ModelConfig& c, int seqlen) {
  const RopeFrequencies f = rope_frequencies(c, seqlen);
  return Rope(f.inv_freq, f.attention_scaling, seqlen);
}

}  // namespace gptqw
