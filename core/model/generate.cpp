#include "model/generate.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "linalg/gemm.h"
#include "model/llama.h"
#include "model/rope_scaling.h"

namespace gptqw {

std::vector<int32_t> generate_greedy(const WeightSource& weights, std::vector<int32_t> ids,
                                     int n_new, const std::vector<int32_t>& stop_ids,
                                     const ProgressFn& progress) {
  const ModelConfig& c = weights.config();
  if (ids.empty()) throw ConfigError("generation needs at least one token (BOS) to start from");
  std::vector<BlockWeights> blocks;
  for (int b = 0; b < c.num_layers; ++b) blocks.push_back(weights.block(b));
  const Matrix embedding = weights.embedding();
  const Vector final_norm = weights.final_norm();
  const OutputHead head(weights, embedding);
  const Matrix& lm_head = head.matrix();
  // The positions this run can reach (the prompt plus the new tokens, never past the model's
  // context), not the context the config claims: max_position_embeddings 2^30 would ask for a
  // 32 GB RoPE table. Sequences stay below max_position_embeddings, so dynamic NTK scaling never
  // grows here (as in transformers, whose generation stays within it).
  const int64_t prompt = static_cast<int64_t>(ids.size());
  const int64_t max_len = std::max<int64_t>(
      prompt, std::min<int64_t>(c.max_position_embeddings, prompt + std::max(n_new, 0)));
  if (max_len > std::numeric_limits<int>::max())
    throw ConfigError("generation of " + std::to_string(max_len) + " positions is too long");
  const Rope rope = make_rope(c, static_cast<int>(max_len));

  for (int step = 0; step < n_new && static_cast<int64_t>(ids.size()) < max_len; ++step) {
    report_progress(progress, {"generate", -1, 0, "", double(step) / n_new});
    Matrix x = embed(embedding, ids);
    for (const auto& b : blocks) block_forward(c, b, rope, x, static_cast<int>(x.rows()));
    Matrix h;
    rms_norm(x.bottomRows(1), final_norm, c.rms_norm_eps, h);
    Matrix logits(1, lm_head.rows());
    linalg::matmul_nt(logits, h, lm_head);
    Eigen::Index next;
    logits.row(0).maxCoeff(&next);
    if (std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) break;
    ids.push_back(static_cast<int32_t>(next));
  }
  return ids;
}

}  // namespace gptqw
