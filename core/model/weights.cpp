#include "model/weights.h"

namespace gptqw {

std::pair<int64_t, int64_t> linear_shape(const ModelConfig& c, LinearKind kind) {
  int64_t h = c.hidden_size, q = int64_t(c.num_heads) * c.head_dim,
          kv = int64_t(c.num_kv_heads) * c.head_dim, m = c.intermediate_size;
  switch (kind) {
    case LinearKind::q: return {q, h};
    case LinearKind::k:
    case LinearKind::v: return {kv, h};
    case LinearKind::o: return {h, q};
    case LinearKind::gate:
    case LinearKind::up: return {m, h};
    case LinearKind::down: return {h, m};
  }
  return {0, 0};
}

bool linear_has_bias(const ModelConfig& c, LinearKind kind) {
  if (kind == LinearKind::q || kind == LinearKind::k || kind == LinearKind::v) return c.qkv_bias;
  if (kind == LinearKind::o) return c.o_bias;
  return c.mlp_bias;
}

}  // namespace gptqw
