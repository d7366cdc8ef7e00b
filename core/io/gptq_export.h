// Export of a quantized model as a GPTQ checkpoint folder (spec section 6), the format
// transformers, vLLM, GPTQModel and AutoGPTQ load:
//   model.safetensors (or model-0000i-of-0000n.safetensors + model.safetensors.index.json)
//     <linear>.qweight I32, .qzeros I32, .scales F16, .g_idx I32, .bias F16 (when present);
//     embeddings, norms and an untied lm_head in F16 (or the source dtype when asked);
//     the linears of settings.modules_not_quantized, and those settings.per_module keeps in
//     fp16, as <linear>.weight (and .bias), taken from the source model in that same float
//     dtype; each quantized linear packed with its own bits and group size
//     (settings.quant_of, written as GPTQModel's "dynamic" rules);
//   config.json with "quantization_config", quantize_config.json;
//   tokenizer / generation files copied from the source folder; the run report if given.
//
// Input. Quantized layers arrive one at a time, in two ways:
//   - GptqWriter (push): the sequential driver hands each layer over as soon as it is quantized
//     (its LayerSink can call add() directly). The layer is packed at once, so the fp32 Q and
//     the byte-per-weight codes are dropped right away, and the packed tensors are flushed to a
//     shard file whenever the shard size is reached: memory stays at one shard plus one layer,
//     whatever the model size.
//   - export_gptq (pull): a callback returns the layer asked for, block by block in the order
//     of kAllLinears; convenient for callers that keep every layer anyway (tests, re-export),
//     and it reports progress and honours cancel between layers.
// A std::vector of all layers was not chosen: for a 7B model the QuantizedWeights (fp32 Q plus
// codes) of every layer would need ~35 GB.
//
// Atomicity. The folder is written as every output is (common/output_file.h: OutputFolder):
// into a hidden temporary folder next to the destination (same parent, hence the same file
// system), renamed into place only when complete. An existing destination is refused unless
// `force`, and even then unless it is empty or an export of this program (why_not_an_export);
// it is replaced only after the new folder is complete (an atomic exchange of the two names
// where the file system supports it), and never through a symbolic link. On any failure,
// including Cancelled from the progress callback, the temporary folder is removed and the
// destination is as it was. The source is never written: a destination inside the source
// folder, or containing it or any file the tensors are read from, is refused. config.json and
// the copied files are taken from inside the source folder only (links leading out of it are
// refused) and must be regular files.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/output_file.h"
#include "common/progress.h"
#include "io/gptq_checkpoint.h"
#include "io/safetensors.h"
#include "model/weights.h"
#include "quant/quantizer.h"

namespace gptqw {

struct GptqExportOptions {
  std::filesystem::path source_dir;  // config.json, tokenizer and generation files to copy
  std::filesystem::path output_dir;  // the folder to create
  GptqSettings settings;             // bits, group size, sym, act-order, ... and the zero format
  // Non-quantized tensors (embeddings, norms, lm_head) in F16, as AutoGPTQ / GPTQModel store
  // them; true keeps the source dtype (F32 / BF16 / F16) instead. Biases of quantized layers
  // are always F16 (the loaders' buffer dtype).
  bool keep_source_dtype = false;
  // Above this many tensor bytes the weights are split into shards with an index, as
  // transformers' save_pretrained does (its "4GB" is 4 * 10^9 bytes).
  uint64_t max_shard_bytes = 4'000'000'000ull;
  bool force = false;         // replace an existing destination folder (once the new one is done)
  nlohmann::json report;      // written as quantization_report.json unless null
};

// Files copied from the source folder when present.
extern const std::vector<std::string> kGptqCopiedFiles;

// Whether `dir` may be replaced by an export with force: "" when it is recognisably one of
// ours (a quantize_config.json whose meta.quantizer names GPTQ Workbench, and nothing but
// plain files with the names an export writes), else the reason it is not.
std::string why_not_an_export(const std::filesystem::path& dir);

// The destination checks of an export (check_output_folder with why_not_an_export), for callers
// that want them before any long work (the CLI before a run, the window before it asks whether
// to replace). Returns the absolute destination; throws IoError / ConfigError with the reason.
std::filesystem::path check_export_destination(const GptqExportOptions& options);

// The group sizes GPTQ kernels are written for (ExLlama, vLLM's Marlin), besides -1 (one group
// per row): the ones a way out of a group problem proposes.
constexpr std::array<int, 3> kKernelGroupSizes = {128, 64, 32};

// A problem export or a loader would have with these settings on this architecture. Modules
// listed in settings.modules_not_quantized or kept in fp16 by settings.per_module are not
// checked (they are stored as plain weights); the shape checks run for the global setting and
// once for each distinct per-module setting of a kind, whose message names the blocks
// ("mlp.down_proj of blocks 1, 3 (3-bit sym g64): ...");
// every problem of a quantized module carries its ways out as settings: the group sizes under
// which it goes away (or that none does), and whether leaving the module unquantized (listed in
// modules_not_quantized) does.
struct ExportIssue {
  enum class Severity { error, warning };
  // What is wrong, so that a front end can gather the issues of one kind into one line.
  enum class Kind {
    invalid_settings,      // the quantizer settings themselves (QuantConfig::validate)
    unpackable_bits,       // bits the format cannot hold
    unknown_module,        // modules_not_quantized names something else than the seven
    nothing_quantized,     // all seven left unquantized
    fused_partly_kept,     // only some of q/k/v or gate/up quantized (vLLM refuses)
    v1_asymmetric,         // checkpoint_format gptq (v1) with an asymmetric grid
    no_marlin_settings,    // bits / sym / group size outside vLLM's Marlin kernel
    in_features_not_32,    // padded qweight: loaders refuse the layer
    out_features_not_32,   // padded qzeros: loaders refuse the layer
    partial_last_group,    // in_features not a multiple of group_size
    group_over_input,      // group_size > in_features
    no_marlin_shape,       // shapes outside Marlin: slower kernel, still loads
  };
  Severity severity = Severity::warning;
  Kind kind = Kind::invalid_settings;
  std::string module;  // "mlp.down_proj" (the same in every block), or empty for the whole model
  int64_t out_features = 0, in_features = 0;
  std::string message;  // the problem as a sentence: the shapes and who cannot take them
  // The ways out, as settings; each front end words them its own way (pipeline/run_settings.h
  // gathers them). Group sizes that give whole groups in every quantized module (-1: one group
  // per row); whether leaving `module` unquantized avoids the problem.
  std::vector<int> fix_group_sizes;
  bool fix_by_keeping_module = false;
};

// Checks up front, from the architecture alone, what the format and its loaders cannot take:
// errors (export refuses: bits the packing cannot hold, a bad group size, v1 zeros with an
// asymmetric grid, a module name in modules_not_quantized that is not one of the seven, all
// seven listed) and warnings (export proceeds, but a loader will refuse or fall back: a
// dimension not a multiple of 32, which AutoGPTQ / transformers / vLLM allocate as K / 32 * bits
// words; vLLM's Marlin conditions: sym, 4 or 8 bits, group size -1/32/64/128, K % group_size,
// K % 128, N % 64; only some of q/k/v or of gate/up left unquantized, which vLLM's fused layers
// refuse). One issue per linear kind, since every block has the same shapes, plus one per kind
// and distinct per-module setting; per-module settings add errors (a block out of range, q/k/v
// or gate/up of one block differing, bits the packing cannot hold) and a warning when the
// global setting makes vLLM pick Marlin but an override is one Marlin cannot run.
std::vector<ExportIssue> check_exportable(const ModelConfig& config, const GptqSettings& settings);

// A linear module that mainstream GPTQ loaders cannot load in quantized form with a given bit
// width and group size, and why. The rule (unloadable_modules) is the union of the loaders'
// own shape rules, read from their code:
//   - in_features % 32 == 0 and out_features % 32 == 0: AutoGPTQ's QuantLinear kernels and
//     GPTQModel's BaseQuantLinear allocate qweight as [in_features // 32 * bits, out] and qzeros
//     as [groups, out_features // 32 * bits], so a padded tensor does not fit their buffer (and
//     GPTQModel's torch kernel dequantizes whole 32-weight words); vLLM's GPTQLinearMethod
//     allocates in_features // (32 / bits) rows and refuses out_features not divisible by the
//     numerator of 32 / bits;
//   - group_size > 0: in_features % group_size == 0: vLLM refuses the layer otherwise ("The
//     input size is not aligned with the quantized weight shape"), and AutoGPTQ's torch path
//     reshapes the weights into [-1, group_size, out];
//   - q/k/v and gate/up as groups: vLLM loads each group as one fused layer and refuses one
//     that is only partly quantized, so when one member cannot be quantized, none is.
struct UnloadableModule {
  LinearKind kind = LinearKind::q;
  int64_t out_features = 0, in_features = 0;
  std::string reason;  // "in_features 172 is not a multiple of 32", or "fused with ..."
};
std::vector<UnloadableModule> unloadable_modules(const ModelConfig& config, const QuantConfig& quant);

// Push-style writer. The constructor checks the options (check_exportable errors, destination
// rules) and creates the temporary folder; add() every quantized (block, kind) exactly once, in
// any order (the modules of settings.modules_not_quantized are not added: the writer copies
// them from the source with the block's norms); finish() writes the rest and renames the folder
// into place. Destroyed before a successful finish(), it removes the temporary folder.
class GptqWriter {
 public:
  GptqWriter(const WeightSource& source, GptqExportOptions options);
  ~GptqWriter();
  GptqWriter(const GptqWriter&) = delete;
  GptqWriter& operator=(const GptqWriter&) = delete;

  // Packs and queues one quantized linear. bias: nullptr takes the source model's bias (GPTQ
  // leaves biases unchanged), if the layer has one. Throws Error naming the layer for a module
  // listed in modules_not_quantized, shapes that do not match the architecture, codes or zeros
  // out of range, g_idx outside [0, G), zero 0 under v1, or a scale that is not finite in F16.
  void add(int block, LinearKind kind, const QuantizedWeights& w, const Vector* bias = nullptr);
  // Writes the remaining tensors and files and moves the folder into place. Throws Error
  // naming the quantized layers never added.
  void finish();
  // The run report to write beside the weights (quantization_report.json); known only once the
  // run is over, so it can be set until finish().
  void set_report(nlohmann::json report) { m_opt.report = std::move(report); }

  const std::filesystem::path& temp_dir() const { return m_tmp; }
  const std::filesystem::path& destination() const { return m_dest; }  // absolute

 private:
  void queue(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
             size_t nbytes);
  void queue_float(const std::string& name, std::vector<int64_t> shape,
                   const std::vector<float>& values, DType dtype);
  void add_source_tensor(const std::string& name, std::vector<int64_t> shape, bool bias = false);
  std::vector<float> source_values(const std::string& name, const std::vector<int64_t>& shape,
                                   DType& src);
  void add_block_source_tensors(int block);
  void flush_shard();

  const WeightSource& m_source;
  const Checkpoint* m_source_ckpt = nullptr;  // raw tensors when the source is a HF folder
  GptqExportOptions m_opt;
  std::unique_ptr<OutputFolder> m_folder;
  std::filesystem::path m_dest, m_tmp;
  DType m_float_dtype = DType::F16;
  std::unique_ptr<SafetensorsWriter> m_pending;
  std::vector<std::pair<std::filesystem::path, std::vector<std::string>>> m_shards;
  uint64_t m_total_bytes = 0;
  std::array<bool, kNumLinears> m_skip{};  // settings.modules_not_quantized as flags
  std::set<LayerId> m_added;
  std::set<int> m_blocks_started;  // norms and unquantized linears written
  std::optional<std::pair<int, BlockWeights>> m_block_cache;  // sources without a checkpoint
  bool m_done = false;
};

// The quantized layer for (block, kind): its weights and, optionally, a bias replacing the
// source's (nullopt: the source's bias, if any).
struct QuantizedLinear {
  QuantizedWeights w;
  std::optional<Vector> bias;
};
using QuantizedLayerFn = std::function<QuantizedLinear(int block, LinearKind kind)>;

// Pull-style export: asks `layer` for every quantized (block, kind) (never for a module of
// modules_not_quantized), block by block in kAllLinears order, and writes the folder through a
// GptqWriter. Progress stage "export" (block, module,
// fraction) before each layer; a callback returning false cancels (throws Cancelled) and
// leaves nothing behind. Returns the destination folder.
std::filesystem::path export_gptq(const WeightSource& source, const GptqExportOptions& options,
                                  const QuantizedLayerFn& layer, const ProgressFn& progress = {});

}  // namespace gptqw
