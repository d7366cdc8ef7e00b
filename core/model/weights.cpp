#include "model/weights.h"

namespace gptqw {

std::string_view linear_name(LinearKind kind) {
  static constexpr std::string_view names[kNumLinears] = {
      "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
      "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  return names[static_cast<int>(kind)];
}

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

std::string layer_prefix(int block) { return "model.layers." + std::to_string(block) + "."; }

std::string linear_module(int block, LinearKind kind) {
  return layer_prefix(block) + std::string(linear_name(kind));
}

}  // namespace gptqw
