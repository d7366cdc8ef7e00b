// The sequential driver (spec section 4): walks a Llama-family model block by block, collects
// each linear layer's calibration inputs into its Hessian, quantizes it with GPTQ and RTN from
// the same inputs, measures both, and re-runs the block with its GPTQ weights so that the next
// block sees the inputs the quantized model will produce. Only the current block's weights,
// its Hessians and the calibration activations are resident at any time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/progress.h"
#include "io/gptq_checkpoint.h"
#include "model/weights.h"
#include "pipeline/calibration.h"
#include "pipeline/layer_measurement.h"
#include "quant/gptq.h"

namespace gptqw {

enum class Method { gptq, rtn };
std::string_view method_name(Method m);

// A run's options. Their defaults are both front ends' (pipeline/run.h: RunSpec).
struct QuantizeOptions {
  // Quantizer config, blocksize, damping, act-order, groups: GptqOptions' defaults, which are
  // the reference's, except groups of 128 columns, the default of AutoGPTQ and GPTQModel (the
  // reference's is one group per row).
  GptqOptions gptq = [] {
    GptqOptions o;
    o.quant.group_size = 128;
    return o;
  }();
  bool true_sequential = true;   // groups [q,k,v], [o], [gate,up], [down] (the reference's -ts)
  bool run_gptq = true;
  bool run_rtn = true;           // the baseline, from the same calibration inputs
  // Modules left in full precision in every block (for example mlp.down_proj when its width
  // does not suit the checkpoint format); they keep their weights and get no report row.
  std::set<LinearKind> skip;
  // Single modules quantized with their own bits and group size, or kept in fp16 (a
  // mixed-precision plan, pipeline/precision_plan.h); the rest take gptq.quant. Exported as
  // GPTQModel's per-module "dynamic" rules.
  std::map<LayerId, PrecisionChoice> per_module;
  // The quantizer config of one module (gptq.quant with its per-module bits and group size),
  // and whether it is quantized at all.
  QuantConfig quant_of(LayerId id) const;
  bool quantizes(LayerId id) const;
  // The driver runs each part of a block once, keeping the activations between the parts,
  // when they take at most this many bytes (about 4 T (2 hidden + 2 intermediate + heads x
  // head_dim) for T calibration tokens); else every group re-runs the block from its start,
  // in chunks of about 8192 tokens. The same bits either way; the first costs about half the
  // flops (LLaMA-7B, 16 x 512 tokens: 1.1 GB).
  uint64_t staged_budget_bytes = uint64_t(2) << 30;
  // Where the Hessians, factorizations and GPTQ's column loops run (backend_for): auto takes
  // the GPU when one answers. Asking for cuda where none answers is a ConfigError with the
  // reason, before anything runs.
  Device device = Device::auto_;
};

// The checkpoint settings that describe a run with these options (bits, groups, act-order,
// damping, skipped modules), for export.
GptqSettings checkpoint_settings(const QuantizeOptions& options);

// Everything measured on one linear layer (pipeline/layer_measurement.h): what the workbench
// plots.
struct LayerReport {
  int block = 0;
  LinearKind kind = LinearKind::q;
  std::string name;  // "model.layers.3.mlp.down_proj"
  int64_t out_features = 0, in_features = 0;
  int bits = 4, group_size = -1;  // the module's own (QuantizeOptions::quant_of)
  // ||W X - Q X||_F^2 / ||W X||_F^2 on the calibration inputs, for each method (same inputs).
  double gptq_rel_error = -1, rtn_rel_error = -1;
  double gptq_loss = -1;  // the reference's printed error (sum of losses / 2), see GptqResult
  double damp_fraction = 0;
  float damp_abs = 0;
  int damp_raises = 0;
  bool fell_back_to_rtn = false;
  std::string note;
  double gptq_seconds = 0, rtn_seconds = 0;
  std::vector<float> hessian_diag;  // H[i,i] before damping, input channel order
  DiagStats hessian;
  std::vector<int32_t> perm;  // act-order permutation, empty without
  uint64_t bytes_fp16 = 0;       // N * K * 2 (+ bias)
  uint64_t bytes_quantized = 0;  // packed codes + F16 scales + packed zeros + g_idx (+ bias)
  double bits_per_weight = 0;    // bytes_quantized * 8 / (N * K)
};

// Receives each quantized layer as it is produced (to keep for evaluation, or to export).
using LayerSink = std::function<void(Method, int block, LinearKind, QuantizedWeights&&)>;

struct QuantizeResult {
  std::vector<LayerReport> layers;
  double seconds = 0;
  // Where the time went, summed over layers and blocks:
  //   calibration  the partial block runs that produce each group's inputs
  //   hessian      accumulating the Hessians from those inputs
  //   factor       damping, Cholesky and triangular inverse, once per distinct Hessian
  //   gptq         GPTQ of each module on the shared factor: columns + lazy + the rest
  //   columns      GPTQ's in-block column loops; lazy: its lazy batch updates
  //   rtn, metrics RTN; the reconstruction errors (pipeline/layer_metrics.h)
  //   forward      re-running each quantized block for the next block's inputs (staged: only
  //                its last part, the down projection and residual)
  double seconds_forward = 0, seconds_calibration = 0, seconds_hessian = 0, seconds_factor = 0,
         seconds_gptq = 0, seconds_columns = 0, seconds_lazy = 0, seconds_rtn = 0,
         seconds_metrics = 0;
  std::string backend;  // the backend that ran it: "cpu", or the CUDA device's description
  // Whether each block ran part by part, once (QuantizeOptions::staged_budget_bytes), or
  // every group re-ran it from its start.
  bool staged = false;
};

// Runs the driver. on_layer (optional) sees each layer's report as soon as it is measured, so
// that a window can stream results; progress may cancel between modules (throws Cancelled).
QuantizeResult quantize_model(const WeightSource& source, const CalibrationSet& calibration,
                              const QuantizeOptions& options, const LayerSink& sink,
                              const ProgressFn& progress = {},
                              const std::function<void(const LayerReport&)>& on_layer = {});

// A model whose linear layers are replaced by quantized ones (dequantized to fp32), for
// evaluation. Holds the layers it is given; everything else comes from the base source.
class QuantizedModel : public WeightSource {
 public:
  explicit QuantizedModel(std::shared_ptr<const WeightSource> base) : m_base(std::move(base)) {}
  // A layer as fp32 weights.
  void set(int block, LinearKind kind, Matrix Q) {
    m_coded.erase({block, kind});
    m_layers[{block, kind}] = std::move(Q);
  }
  // A layer as codes, grids and g_idx (its Q is not kept), dequantized as stored
  // (dequantize_as_stored) when its block is read: one byte per weight instead of four, which
  // is what lets a whole model's GPTQ and RTN versions wait for their evaluation (Qwen3-0.6B:
  // 0.44 GB each instead of 1.76 GB).
  void set(int block, LinearKind kind, const QuantizedWeights& w);
  size_t size() const { return m_layers.size() + m_coded.size(); }

  const ModelConfig& config() const override { return m_base->config(); }
  BlockWeights block(int index) const override;
  Matrix embedding() const override { return m_base->embedding(); }
  Vector final_norm() const override { return m_base->final_norm(); }
  Matrix lm_head() const override { return m_base->lm_head(); }
  std::vector<TensorInfo> tensors() const override { return m_base->tensors(); }
  uint64_t bytes_on_disk() const override { return m_base->bytes_on_disk(); }
  std::string format() const override { return m_base->format() + " (quantized in memory)"; }
  std::string dtype() const override { return m_base->dtype(); }

 private:
  std::shared_ptr<const WeightSource> m_base;
  std::map<LayerId, Matrix> m_layers;
  std::map<LayerId, QuantizedWeights> m_coded;
};

}  // namespace gptqw
