// The vocabulary of a decoder block's linear layers, defined once: the seven kinds, their
// Hugging Face names ("self_attn.q_proj"), a layer as (block, kind), the parsers of names, and
// GPTQ's true-sequential groups. Every reader of module names (the CLI, the window, the
// report, the GPTQ checkpoint) goes through here, so they accept and refuse the same names.
#pragma once

#include <array>
#include <compare>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gptqw {

// The seven linear layers of a decoder block, in the order of the true-sequential groups
// [q, k, v], [o], [gate, up], [down].
enum class LinearKind : int { q, k, v, o, gate, up, down };
constexpr int kNumLinears = 7;
constexpr std::array<LinearKind, kNumLinears> kAllLinears = {
    LinearKind::q, LinearKind::k, LinearKind::v, LinearKind::o,
    LinearKind::gate, LinearKind::up, LinearKind::down};

// "self_attn.q_proj", "mlp.down_proj", ...: the Hugging Face module name inside a block.
std::string_view linear_name(LinearKind kind);
// "q_proj", "down_proj": the name without its sub-module (tables, charts).
std::string_view linear_short_name(LinearKind kind);
// "self_attn.q_proj, self_attn.k_proj, ..." for messages.
std::string linear_names_list();

// "model.layers.3.": the Hugging Face prefix of block 3's tensors.
std::string layer_prefix(int block);
// "model.layers.3.mlp.down_proj": a linear's full module name.
std::string linear_module(int block, LinearKind kind);

// One linear layer of the model: the key of every per-layer map.
struct LayerId {
  int block = 0;
  LinearKind kind = LinearKind::q;
  auto operator<=>(const LayerId&) const = default;
  std::string module() const { return linear_module(block, kind); }
};

// The inverse of LayerId::module(): "model.layers.3.mlp.down_proj" (or "...3.down_proj") as a
// layer. Throws ConfigError naming the text for anything else.
LayerId parse_layer_module(const std::string& name);

// The kind named exactly ("self_attn.q_proj"); nullopt for anything else.
std::optional<LinearKind> linear_kind_of(std::string_view name);
// The kind named in full or by its short name ("mlp.down_proj" or "down_proj"), as users type
// it; ConfigError listing the valid names otherwise.
LinearKind parse_linear_name(const std::string& name);

// GPTQ's order of work in a block: with true_sequential the groups [q, k, v], [o], [gate, up],
// [down], each calibrated on the outputs of the groups before it already quantized (the
// reference's -ts); without, one group of all seven, calibrated on the unquantized block.
std::vector<std::vector<LinearKind>> sequential_groups(bool true_sequential);

// Which of the block's four linear inputs a module reads: q, k and v the same normed hidden
// state (0), o the attention output (1), gate and up the same normed state (2), down the MLP's
// hidden state (3). Modules that read one input share its Hessian; they are also the sets
// vLLM fuses (qkv_proj, gate_up_proj), each of sequential_groups(true)'s groups.
int linear_input(LinearKind kind);

}  // namespace gptqw
