#include "model/layers.h"

#include "common/error.h"

namespace gptqw {

std::string_view linear_name(LinearKind kind) {
  static constexpr std::string_view names[kNumLinears] = {
      "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
      "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
  return names[static_cast<int>(kind)];
}

std::string_view linear_short_name(LinearKind kind) {
  const std::string_view full = linear_name(kind);
  return full.substr(full.find('.') + 1);
}

std::string linear_names_list() {
  std::string s;
  for (LinearKind k : kAllLinears) s += (s.empty() ? "" : ", ") + std::string(linear_name(k));
  return s;
}

std::string layer_prefix(int block) { return "model.layers." + std::to_string(block) + "."; }

std::string linear_module(int block, LinearKind kind) {
  return layer_prefix(block) + std::string(linear_name(kind));
}

std::optional<LinearKind> linear_kind_of(std::string_view name) {
  for (LinearKind k : kAllLinears)
    if (name == linear_name(k)) return k;
  return std::nullopt;
}

LinearKind parse_linear_name(const std::string& name) {
  for (LinearKind k : kAllLinears)
    if (name == linear_name(k) || name == linear_short_name(k)) return k;
  throw ConfigError("unknown module '" + name + "' (the linear modules are " +
                    linear_names_list() + ")");
}

LayerId parse_layer_module(const std::string& name) {
  const std::string prefix = "model.layers.";
  const size_t dot = name.rfind(prefix, 0) == 0 ? name.find('.', prefix.size()) : std::string::npos;
  const std::string block = dot == std::string::npos ? "" : name.substr(prefix.size(), dot - prefix.size());
  if (block.empty() || block.size() > 9 || block.find_first_not_of("0123456789") != std::string::npos)
    throw ConfigError("'" + name + "' is not model.layers.N.<module>");
  return {std::stoi(block), parse_linear_name(name.substr(dot + 1))};
}

std::vector<std::vector<LinearKind>> sequential_groups(bool true_sequential) {
  using K = LinearKind;
  if (true_sequential) return {{K::q, K::k, K::v}, {K::o}, {K::gate, K::up}, {K::down}};
  return {{K::q, K::k, K::v, K::o, K::gate, K::up, K::down}};
}

int linear_input(LinearKind k) {
  switch (k) {
    case LinearKind::q:
    case LinearKind::k:
    case LinearKind::v: return 0;
    case LinearKind::o: return 1;
    case LinearKind::gate:
    case LinearKind::up: return 2;
    case LinearKind::down: return 3;
  }
  return 0;
}

}  // namespace gptqw
