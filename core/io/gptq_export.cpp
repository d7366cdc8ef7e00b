// GPTQ checkpoint export: checks, packing, sharded safetensors, config files, and the
// temporary-folder-then-rename discipline that leaves either the complete folder or nothing.
#include "io/gptq_export.h"

#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <set>
#include <system_error>

#include "common/error.h"
#include "common/half.h"
#include "common/input_file.h"
#include "common/json.h"
#include "common/output_file.h"
#include "io/hf_checkpoint.h"
#include "quant/packing.h"

namespace gptqw {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kGptqCopiedFiles = {
    "tokenizer.json",       "tokenizer_config.json", "tokenizer.model",
    "special_tokens_map.json", "generation_config.json", "LICENSE"};

namespace {

void write_json(const fs::path& file, const json& j) {
  write_file_atomically(file, j.dump(2) + "\n");
}

// How a copied or read file of the source folder is bounded (common/input_file.h).
const InputKind& copied_kind(const std::string& name) {
  if (name == "tokenizer.json") return kTokenizerJsonInput;
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) return kConfigInput;
  return kCopiedInput;
}

// "model-00001-of-00002.safetensors" for base "model".
bool is_shard_name(const std::string& name, const std::string& base) {
  const std::string tail = "-00000-of-00000.safetensors";
  if (name.size() != base.size() + tail.size() || name.compare(0, base.size(), base) != 0)
    return false;
  for (size_t i = 0; i < tail.size(); ++i) {
    const char c = name[base.size() + i], t = tail[i];
    if (t == '0' ? !(c >= '0' && c <= '9') : c != t) return false;
  }
  return true;
}

std::string torch_dtype_name(DType d) {
  switch (d) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    default: return "float32";
  }
}

std::string shape2(int64_t out, int64_t in) {
  return "[" + std::to_string(out) + ", " + std::to_string(in) + "]";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Up-front checks

std::vector<ExportIssue> check_exportable(const ModelConfig& config, const GptqSettings& s) {
  std::vector<ExportIssue> out;
  using S = ExportIssue::Severity;
  using Kind = ExportIssue::Kind;
  auto whole_model = [&](S severity, Kind kind, std::string message) {
    ExportIssue i;
    i.severity = severity;
    i.kind = kind;
    i.message = std::move(message);
    out.push_back(std::move(i));
  };
  const QuantConfig& q = s.quant;
  try {
    q.validate();
  } catch (const ConfigError& e) {
    whole_model(S::error, Kind::invalid_settings, e.what());
    return out;  // the shape checks below assume a valid bit width and group size
  }
  if (!packable_bits(q.bits)) {
    whole_model(S::error, Kind::unpackable_bits,
                std::to_string(q.bits) + " bits cannot be packed: the GPTQ format holds 2, 3, 4 "
                                         "or 8 bits per weight");
    return out;
  }
  // The modules left unquantized: names first (a misspelt one would quietly quantize the layer
  // meant to be kept), then they are left out of every shape check below.
  std::array<bool, kNumLinears> skip{};
  try {
    skip = s.skipped_kinds();
  } catch (const ConfigError& e) {
    whole_model(S::error, Kind::unknown_module, e.what());
    return out;
  }
  int n_skipped = 0;
  for (bool b : skip) n_skipped += b;
  if (n_skipped == kNumLinears) {
    whole_model(S::error, Kind::nothing_quantized,
                "modules_not_quantized lists all seven linear modules: nothing would be "
                "quantized");
    return out;
  }
  // vLLM loads q/k/v as one fused layer and gate/up as another, and refuses a checkpoint in
  // which only some parts of one are quantized.
  const std::vector<std::vector<LinearKind>> fused = {
      {LinearKind::q, LinearKind::k, LinearKind::v}, {LinearKind::gate, LinearKind::up}};
  for (const auto& group : fused) {
    std::string all, kept, left;
    for (LinearKind k : group) {
      const std::string name(linear_name(k));
      all += (all.empty() ? "" : " + ") + name;
      std::string& list = skip[int(k)] ? left : kept;
      list += (list.empty() ? "" : ", ") + name;
    }
    if (!kept.empty() && !left.empty())
      whole_model(S::warning, Kind::fused_partly_kept,
                  "vLLM loads " + all + " as one fused layer and refuses a checkpoint that "
                  "quantizes only some of them; " + left + " is left unquantized but not " +
                      kept + ": leave all of them unquantized or none");
  }

  if (s.zero_format() == ZeroFormat::v1 && !q.sym)
    whole_model(S::error, Kind::v1_asymmetric,
                "checkpoint_format \"gptq\" (v1) stores zero - 1 and cannot hold the zero "
                "point 0 that asymmetric grids produce; asymmetric models are written as "
                "\"gptq_v2\"");
  // Per-module settings ("dynamic"): blocks that exist, units that agree (dynamic_rules), and
  // each distinct setting valid and packable. Gathered by (kind, setting) so that the shape
  // checks below run once per distinct setting, naming the modules that have it.
  std::map<std::pair<LinearKind, PrecisionChoice>, std::vector<int>> overrides;
  std::array<int, kNumLinears> global_blocks;  // blocks of each kind that take s.quant
  global_blocks.fill(config.num_layers);
  for (const auto& [id, choice] : s.per_module) {
    if (id.block < 0 || id.block >= config.num_layers) {
      whole_model(S::error, Kind::invalid_settings,
                  "per-module settings name " + id.module() + ", but the model has " +
                      std::to_string(config.num_layers) + " blocks");
      return out;
    }
    if (skip[int(id.kind)] || choice.fp16) {
      if (!skip[int(id.kind)]) --global_blocks[int(id.kind)];
      continue;
    }
    --global_blocks[int(id.kind)];
    PrecisionChoice c = choice;
    if (c.group_size <= 0) c.group_size = -1;
    if (c.bits != q.bits || c.group_size != (q.group_size > 0 ? q.group_size : -1))
      overrides[{id.kind, c}].push_back(id.block);
  }
  auto modules_of = [](LinearKind kind, const std::vector<int>& blocks) {
    std::string list;
    for (size_t i = 0; i < blocks.size() && i < 8; ++i)
      list += (list.empty() ? "" : ", ") + std::to_string(blocks[i]);
    if (blocks.size() > 8) list += ", ... (" + std::to_string(blocks.size()) + " blocks)";
    return std::string(linear_name(kind)) + " of block" + (blocks.size() > 1 ? "s " : " ") + list;
  };
  try {
    (void)s.dynamic_rules();
  } catch (const ConfigError& e) {
    whole_model(S::error, Kind::invalid_settings, e.what());
    return out;
  }
  bool bad_override = false;
  for (const auto& [key, blocks] : overrides) {
    const QuantConfig qc = key.second.applied_to(q);
    const std::string who = modules_of(key.first, blocks);
    try {
      qc.validate();
    } catch (const ConfigError& e) {
      whole_model(S::error, Kind::invalid_settings, who + ": " + e.what());
      bad_override = true;
      continue;
    }
    if (!packable_bits(qc.bits)) {
      whole_model(S::error, Kind::unpackable_bits,
                  who + ": " + std::to_string(qc.bits) + " bits cannot be packed: the GPTQ format "
                  "holds 2, 3, 4 or 8 bits per weight");
      bad_override = true;
    }
  }
  if (bad_override) return out;

  const int gs = q.group_size;
  auto marlin_settings = [&](const QuantConfig& c) {
    const int g = c.group_size;
    return c.sym && (c.bits == 4 || c.bits == 8) && (g == -1 || g == 32 || g == 64 || g == 128);
  };
  const bool marlin_config = marlin_settings(q);
  if (!marlin_config)
    whole_model(S::warning, Kind::no_marlin_settings,
                "vLLM's fast Marlin kernel needs sym, 4 or 8 bits and group size -1, 32, 64 or "
                "128 (this export: " + q.describe() + "); vLLM will use its slower gptq kernel");
  if (marlin_config) {
    // vLLM picks gptq_marlin from the global settings alone (GPTQMarlinConfig.
    // is_gptq_marlin_compatible) and then builds every overridden module with it
    // (gptq_utils.override_config raises "Unsupported quantization config" for bits it lacks).
    std::string bad;
    for (const auto& [key, blocks] : overrides)
      if (!marlin_settings(key.second.applied_to(q)))
        bad += (bad.empty() ? "" : "; ") + modules_of(key.first, blocks) + " (" +
               key.second.describe() + ")";
    if (!bad.empty())
      whole_model(S::warning, Kind::no_marlin_settings,
                  "vLLM chooses its Marlin kernel from the global settings (" + q.describe() +
                      ") and then refuses per-module settings it cannot run: " + bad +
                      "; such a checkpoint loads in vLLM only with quantization=\"gptq\"");
  }

  // The group sizes the kernels know that give whole groups in every quantized module: the
  // group size is one setting for the whole model, so a size that fixes one module but splits
  // another is no way out. -1 (one group per row) always gives whole groups.
  std::vector<int> whole_groups;
  for (int cand : kKernelGroupSizes) {
    bool fits = cand != gs;
    for (LinearKind kind : kAllLinears)
      if (!skip[int(kind)]) fits = fits && linear_shape(config, kind).second % cand == 0;
    if (fits) whole_groups.push_back(cand);
  }
  if (whole_groups.empty()) whole_groups.push_back(-1);

  // The shape checks of one kind under one setting; `who` names the modules when the setting
  // is a per-module one ("" for the global setting, which every block of the kind shares).
  auto check_shapes = [&](LinearKind kind, const QuantConfig& qc, const std::string& who) {
    const auto [N, K] = linear_shape(config, kind);
    const int g = qc.group_size;
    const std::string lead = who.empty() ? "" : who + " (" + qc.describe() + "): ";
    // Every problem of a module carries its ways out, so that the user who reads one line
    // knows what to do about it.
    auto warn = [&](Kind issue_kind, const std::string& msg, bool by_group_size) {
      ExportIssue i;
      i.severity = S::warning;
      i.kind = issue_kind;
      i.module = std::string(linear_name(kind));
      i.out_features = N;
      i.in_features = K;
      i.message = lead + msg;
      if (by_group_size) i.fix_group_sizes = whole_groups;
      i.fix_by_keeping_module = true;
      out.push_back(std::move(i));
    };
    if (K % 32 != 0)
      warn(Kind::in_features_not_32,
           "in_features " + std::to_string(K) + " is not a multiple of 32: qweight is written " +
               "with " + std::to_string(packed_words(K, qc.bits)) +
               " zero-padded rows, but AutoGPTQ, GPTQModel, transformers and vLLM allocate "
               "in_features / 32 * bits = " + std::to_string(K / 32 * qc.bits) +
               " rows and will refuse to load this layer",
           false);
    if (N % 32 != 0)
      warn(Kind::out_features_not_32,
           "out_features " + std::to_string(N) + " is not a multiple of 32: qzeros is written " +
               "with " + std::to_string(packed_words(N, qc.bits)) +
               " zero-padded columns, but AutoGPTQ, GPTQModel, transformers and vLLM allocate "
               "out_features / 32 * bits = " + std::to_string(N / 32 * qc.bits) +
               " columns and will refuse to load this layer",
           false);
    if (g > 0 && g < K && K % g != 0)
      warn(Kind::partial_last_group,
           "in_features " + std::to_string(K) + " is not a multiple of group_size " +
               std::to_string(g) + " (the last group has " + std::to_string(K % g) +
               " columns): ExLlama and vLLM's Marlin kernel need whole groups",
           true);
    if (g > K)
      // One short group here; vLLM sizes scales as in_features / group_size = 0 rows and checks
      // in_features % group_size.
      warn(Kind::group_over_input,
           "in_features " + std::to_string(K) + " is smaller than group_size " +
               std::to_string(g) + ": vLLM needs in_features % group_size == 0 and will " +
               "refuse to load this layer",
           true);
    if (marlin_config && marlin_settings(qc) && (K % 128 != 0 || N % 64 != 0))
      warn(Kind::no_marlin_shape,
           "vLLM's Marlin kernel needs in_features % 128 == 0 and out_features % 64 == 0; this "
           "layer will use the slower gptq kernel (it still loads)",
           false);
  };
  for (LinearKind kind : kAllLinears) {
    if (skip[int(kind)]) continue;  // a plain weight: nothing here applies to it
    // The global setting, unless every block of the kind has a setting of its own.
    if (global_blocks[int(kind)] > 0 || config.num_layers == 0) check_shapes(kind, q, "");
    for (const auto& [key, blocks] : overrides)
      if (key.first == kind) check_shapes(kind, key.second.applied_to(q), modules_of(kind, blocks));
  }
  return out;
}

std::vector<UnloadableModule> unloadable_modules(const ModelConfig& config, const QuantConfig& q) {
  std::array<std::string, kNumLinears> why;
  for (LinearKind kind : kAllLinears) {
    const auto [N, K] = linear_shape(config, kind);
    std::string& w = why[int(kind)];
    auto add = [&](const std::string& s) { w += (w.empty() ? "" : "; ") + s; };
    if (K % 32 != 0) add("in_features " + std::to_string(K) + " is not a multiple of 32");
    if (N % 32 != 0) add("out_features " + std::to_string(N) + " is not a multiple of 32");
    if (q.group_size > 0 && K % q.group_size != 0)
      add("in_features " + std::to_string(K) + " is not a multiple of group_size " +
          std::to_string(q.group_size));
  }
  // Fused groups go together (vLLM).
  const std::vector<std::vector<LinearKind>> fused = {
      {LinearKind::q, LinearKind::k, LinearKind::v}, {LinearKind::gate, LinearKind::up}};
  std::array<std::string, kNumLinears> fused_why;
  for (const auto& group : fused)
    for (LinearKind bad : group)
      if (!why[int(bad)].empty())
        for (LinearKind k : group)
          if (why[int(k)].empty() && fused_why[int(k)].empty())
            fused_why[int(k)] = "loaded as one fused layer with " + std::string(linear_name(bad)) +
                                " (vLLM refuses a partly quantized one)";
  std::vector<UnloadableModule> out;
  for (LinearKind kind : kAllLinears) {
    const std::string& w = why[int(kind)].empty() ? fused_why[int(kind)] : why[int(kind)];
    if (w.empty()) continue;
    const auto [N, K] = linear_shape(config, kind);
    out.push_back({kind, N, K, w});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Destination

std::string why_not_an_export(const fs::path& dir) {
  // Recognised by its files: a quantize_config.json that names this program as its quantizer
  // (meta.quantizer, as GPTQModel writes it), and nothing but the files an export writes.
  const fs::path qc = dir / "quantize_config.json";
  struct stat st;
  if (::lstat(qc.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return "it has no quantize_config.json (as a file), so it is not a GPTQ Workbench export";
  json j;
  try {
    j = read_json_file(qc, kConfigInput);
  } catch (const Error& e) {
    return std::string("its quantize_config.json cannot be read (") + e.what() + ")";
  }
  bool ours = false;
  if (j.is_object() && j.contains("meta") && j["meta"].is_object() &&
      j["meta"].contains("quantizer")) {
    const json& q = j["meta"]["quantizer"];
    auto check = [&](const json& v) {
      if (v.is_string() && v.get_ref<const std::string&>().rfind("gptq_workbench:", 0) == 0)
        ours = true;
    };
    if (q.is_array())
      for (const json& v : q) check(v);
    else
      check(q);
  }
  if (!ours)
    return "its quantize_config.json was not written by GPTQ Workbench (meta.quantizer does not "
           "name it)";
  std::string base = "model";
  if (j.contains("model_file_base_name") && j["model_file_base_name"].is_string())
    base = j["model_file_base_name"].get<std::string>();
  std::set<std::string> names = {"config.json", "quantize_config.json", "quantization_report.json",
                                 base + ".safetensors", base + ".safetensors.index.json"};
  names.insert(kGptqCopiedFiles.begin(), kGptqCopiedFiles.end());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      return "it holds '" + name + "', which is not a plain file (an export writes only files)";
    if (!names.count(name) && !is_shard_name(name, base))
      return "it holds '" + name + "', which an export does not write";
  }
  if (ec) return "it cannot be listed: " + ec.message();
  return "";
}

namespace {
ProtectedPaths export_protected_paths(const WeightSource& source, const GptqExportOptions& o) {
  ProtectedPaths p;
  if (!o.source_dir.empty()) p.push_back({o.source_dir, "the source model folder"});
  const Checkpoint* ckpt = nullptr;
  if (auto* hf = dynamic_cast<const HfCheckpoint*>(&source)) ckpt = &hf->checkpoint();
  if (auto* gq = dynamic_cast<const GptqCheckpoint*>(&source)) ckpt = &gq->checkpoint();
  if (ckpt) {
    std::error_code ec;
    const fs::path root = ckpt->path();
    p.push_back({fs::is_directory(root, ec) ? root : root.parent_path(), "the source model folder"});
    for (const fs::path& f : ckpt->files()) p.push_back({f, "a weights file of the source model"});
  }
  return p;
}
}  // namespace

fs::path check_export_destination(const GptqExportOptions& o) {
  ProtectedPaths p;
  if (!o.source_dir.empty()) p.push_back({o.source_dir, "the source model folder"});
  return check_output_folder(o.output_dir, o.force, why_not_an_export, p);
}

// ---------------------------------------------------------------------------------------------
// Writer

GptqWriter::GptqWriter(const WeightSource& source, GptqExportOptions options)
    : m_source(source), m_opt(std::move(options)) {
  // Everything that can be refused is refused before anything is created.
  std::string errors;
  for (const ExportIssue& i : check_exportable(source.config(), m_opt.settings))
    if (i.severity == ExportIssue::Severity::error) errors += "\n  " + i.message;
  if (!errors.empty()) throw ConfigError("GPTQ export to " + m_opt.output_dir.string() +
                                         " refused:" + errors);
  m_skip = m_opt.settings.skipped_kinds();  // the names were checked just above
  if (m_opt.output_dir.empty()) throw ConfigError("GPTQ export: no output folder given");
  if (m_opt.max_shard_bytes == 0) throw ConfigError("GPTQ export: max_shard_bytes must be > 0");

  if (auto* hf = dynamic_cast<const HfCheckpoint*>(&source)) m_source_ckpt = &hf->checkpoint();
  if (auto* gq = dynamic_cast<const GptqCheckpoint*>(&source)) {
    m_source_ckpt = &gq->checkpoint();
    // Re-export: the source's quantize_config keys this program does not interpret go along.
    for (const auto& [k, v] : gq->settings().extra.items())
      if (!m_opt.settings.extra.contains(k)) m_opt.settings.extra[k] = v;
  }
  std::error_code ec;
  const fs::path config_json = m_opt.source_dir / "config.json";
  if ((m_opt.source_dir.empty() || !fs::exists(fs::symlink_status(config_json, ec))) &&
      !source.config().raw.is_object())
    throw ConfigError("GPTQ export: no config.json in the source folder '" +
                      m_opt.source_dir.string() + "' and no configuration to write one from");

  if (m_opt.keep_source_dtype) {
    auto d = parse_dtype(source.dtype());
    m_float_dtype = d && (*d == DType::F16 || *d == DType::BF16) ? *d : DType::F32;
  }

  // The destination rules (common/output_file.h), with the source folder as given, the folder
  // the tensors are read from and every file they are read from protected; then the temporary
  // folder beside the destination.
  m_folder = std::make_unique<OutputFolder>(m_opt.output_dir, m_opt.force, why_not_an_export,
                                            export_protected_paths(source, m_opt));
  m_dest = m_folder->destination();
  m_tmp = m_folder->temp();
  m_pending = std::make_unique<SafetensorsWriter>();
  const ModelConfig& c = source.config();
  add_source_tensor("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
}

// The temporary folder goes with m_folder (removed unless committed).
GptqWriter::~GptqWriter() = default;

void GptqWriter::queue(const std::string& name, DType dtype, std::vector<int64_t> shape,
                       const void* data, size_t nbytes) {
  if (m_pending->size_bytes() > 0 && m_pending->size_bytes() + nbytes > m_opt.max_shard_bytes)
    flush_shard();
  m_pending->add(name, dtype, std::move(shape), data, nbytes);
  if (m_shards.empty() || !m_shards.back().first.empty()) m_shards.push_back({{}, {}});
  m_shards.back().second.push_back(name);
  m_total_bytes += nbytes;
}

void GptqWriter::flush_shard() {
  // The open shard is the last entry, with an empty path until written.
  const fs::path file =
      m_tmp / ("shard-" + std::to_string(m_shards.size()) + ".safetensors");
  m_pending->set_metadata("format", "pt");
  m_pending->write(file);
  m_shards.back().first = file;
  m_pending = std::make_unique<SafetensorsWriter>();
}

void GptqWriter::queue_float(const std::string& name, std::vector<int64_t> shape,
                             const std::vector<float>& values, DType dtype) {
  if (dtype == DType::F32) {
    queue(name, dtype, std::move(shape), values.data(), values.size() * 4);
    return;
  }
  std::vector<uint16_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::BF16) {
      out[i] = float_to_bf16(values[i]);
      continue;
    }
    out[i] = float_to_half(values[i]);
    // A value beyond F16's range would load as infinity and poison every output it touches.
    if (std::isfinite(values[i]) && !std::isfinite(half_to_float(out[i])))
      throw Error("GPTQ export: tensor '" + name + "': value " + std::to_string(values[i]) +
                  " at index " + std::to_string(i) +
                  " exceeds the F16 range (65504); export with the source dtype instead");
  }
  queue(name, dtype, std::move(shape), out.data(), out.size() * 2);
}

// The values of a non-quantized tensor of the source in fp32, and its dtype there. The raw
// checkpoint is read when it has the tensor (exact, in its own dtype); otherwise the
// WeightSource's accessors give it: sources without a checkpoint (llama2.c, in memory), and a
// GPTQ source's quantized linears when they are re-exported unquantized (dequantized).
std::vector<float> GptqWriter::source_values(const std::string& name,
                                             const std::vector<int64_t>& shape, DType& src) {
  std::vector<float> values;
  src = DType::F32;
  const TensorView* t = m_source_ckpt ? m_source_ckpt->find(name) : nullptr;
  if (t) {
    if (t->shape != shape)
      throw FormatError(file_msg(t->file, "tensor '" + name + "': expected " +
                                              shape_str(shape) + ", file has " +
                                              shape_str(t->shape)));
    src = t->dtype;
    return to_float(*t);
  }
  const ModelConfig& c = m_source.config();
  auto missing = [&] {
    if (m_source_ckpt)
      return FormatError(file_msg(m_source_ckpt->path(), "tensor '" + name + "' " +
                                                             shape_str(shape) +
                                                             " is missing from the source"));
    return FormatError("GPTQ export: no source for tensor '" + name + "'");
  };
  auto from = [&](const auto& m) { values.assign(m.data(), m.data() + m.size()); };
  if (name == "model.embed_tokens.weight" && !m_source_ckpt) {
    from(m_source.embedding());
  } else if (name == "model.norm.weight" && !m_source_ckpt) {
    from(m_source.final_norm());
  } else if (name == "lm_head.weight" && !m_source_ckpt) {
    from(m_source.lm_head());
  } else {
    // model.layers.<b>.<...>: norms, biases and unquantized linears of one block.
    int b = -1;
    for (int i = 0; i < c.num_layers && b < 0; ++i)
      if (name.rfind(layer_prefix(i), 0) == 0) b = i;
    if (b < 0) throw missing();
    const std::string rest = name.substr(layer_prefix(b).size());
    std::optional<LinearKind> weight_of;  // rest == "<linear>.weight"
    for (LinearKind k : kAllLinears)
      if (rest == std::string(linear_name(k)) + ".weight") weight_of = k;
    // A checkpoint that lacks a tensor lacks it; only a linear weight can be rebuilt from the
    // source's own accessors (a GPTQ source stores it quantized).
    if (m_source_ckpt && !weight_of) throw missing();
    // One block converted per block, not per tensor: norms and biases come in together.
    if (!m_block_cache || m_block_cache->first != b) m_block_cache.emplace(b, m_source.block(b));
    const BlockWeights& bw = m_block_cache->second;
    if (weight_of) from(bw[*weight_of].W);
    else if (rest == "input_layernorm.weight") from(bw.attn_norm);
    else if (rest == "post_attention_layernorm.weight") from(bw.mlp_norm);
    else if (rest == "self_attn.q_norm.weight") from(bw.q_norm);
    else if (rest == "self_attn.k_norm.weight") from(bw.k_norm);
    else
      for (LinearKind k : kAllLinears)
        if (rest == std::string(linear_name(k)) + ".bias") from(bw[k].b);
  }
  if (auto d = parse_dtype(m_source.dtype())) src = *d;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (int64_t(values.size()) != n)
    throw Error("GPTQ export: tensor '" + name + "': the source gives " +
                std::to_string(values.size()) + " values, " + shape_str(shape) + " needs " +
                std::to_string(n));
  return values;
}

// A non-quantized tensor of the source, converted to the export's float dtype.
void GptqWriter::add_source_tensor(const std::string& name, std::vector<int64_t> shape,
                                   bool bias) {
  DType src = DType::F32;
  const std::vector<float> values = source_values(name, shape, src);
  // Biases of quantized layers stay F16 whatever keep_source_dtype says: the loaders' buffer
  // for them is F16.
  DType out = m_float_dtype;
  if (m_opt.keep_source_dtype && !bias)
    out = (src == DType::F16 || src == DType::BF16) ? src : DType::F32;
  if (bias) out = DType::F16;
  queue_float(name, std::move(shape), values, out);
}

// What a block holds besides its quantized linears, written when its first layer is added:
// the two norms (four with Qwen3's q/k norm), and the linears of modules_not_quantized (weight and bias in the export's
// float dtype, as transformers loads them into a plain Linear).
void GptqWriter::add_block_source_tensors(int block) {
  if (!m_blocks_started.insert(block).second) return;
  const ModelConfig& c = m_source.config();
  const int64_t h = c.hidden_size;
  add_source_tensor(layer_prefix(block) + "input_layernorm.weight", {h});
  add_source_tensor(layer_prefix(block) + "post_attention_layernorm.weight", {h});
  if (c.qk_norm) {  // Qwen3
    add_source_tensor(layer_prefix(block) + "self_attn.q_norm.weight", {c.head_dim});
    add_source_tensor(layer_prefix(block) + "self_attn.k_norm.weight", {c.head_dim});
  }
  for (LinearKind k : kAllLinears) {
    // modules_not_quantized, and the modules per_module keeps in fp16: the same plain tensors.
    if (m_opt.settings.is_quantized({block, k})) continue;
    const auto [N, K] = linear_shape(c, k);
    const std::string name = linear_module(block, k);
    add_source_tensor(name + ".weight", {N, K});
    if (linear_has_bias(c, k) || (m_source_ckpt && m_source_ckpt->find(name + ".bias")))
      add_source_tensor(name + ".bias", {N});
  }
}

void GptqWriter::add(int block, LinearKind kind, const QuantizedWeights& w, const Vector* bias) {
  if (m_done) throw Error("GPTQ export: add() after finish()");
  const ModelConfig& c = m_source.config();
  if (block < 0 || block >= c.num_layers)
    throw Error("GPTQ export: block " + std::to_string(block) + " out of range [0, " +
                std::to_string(c.num_layers) + ")");
  const std::string name = linear_module(block, kind);
  if (!m_opt.settings.is_quantized({block, kind}))
    throw Error("GPTQ export: layer '" + name + "' is " +
                (m_skip[int(kind)] ? "listed in modules_not_quantized"
                                   : "kept in fp16 by the per-module settings") +
                ": it is written unquantized from the source model and cannot also be added "
                "quantized");
  if (m_added.count({block, kind}))
    throw Error("GPTQ export: layer '" + name + "' given twice");

  // The module's own bits and group size (per_module), which its codes, zeros and g_idx are
  // checked against and packed with.
  const QuantConfig q = m_opt.settings.quant_of({block, kind});
  const auto [N, K] = linear_shape(c, kind);
  const int64_t G = group_count(K, q.group_size);
  auto fail = [&](const std::string& what) {
    throw Error("GPTQ export: layer '" + name + "' " + shape2(N, K) + " (" + q.describe() +
                ", " + std::to_string(G) + " groups): " + what);
  };
  auto dims = [](int64_t r, int64_t c) { return shape2(r, c); };
  if (w.codes.rows() != N || w.codes.cols() != K)
    fail("codes are " + dims(w.codes.rows(), w.codes.cols()) + ", expected " + dims(N, K));
  if (w.scales.rows() != G || w.scales.cols() != N)
    fail("scales are " + dims(w.scales.rows(), w.scales.cols()) + ", expected " + dims(G, N));
  if (w.zeros.rows() != G || w.zeros.cols() != N)
    fail("zeros are " + dims(w.zeros.rows(), w.zeros.cols()) + ", expected " + dims(G, N));
  if (int64_t(w.g_idx.size()) != K)
    fail("g_idx has " + std::to_string(w.g_idx.size()) + " entries, expected " +
         std::to_string(K));
  for (int64_t k = 0; k < K; ++k)
    if (w.g_idx[k] < 0 || w.g_idx[k] >= G)
      fail("g_idx[" + std::to_string(k) + "] = " + std::to_string(w.g_idx[k]) +
           " is outside [0, " + std::to_string(G) + ")");
  const ZeroFormat fmt = m_opt.settings.zero_format();
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < N; ++n)
      if (fmt == ZeroFormat::v1 && w.zeros(g, n) == 0)
        fail("zero point 0 at group " + std::to_string(g) + ", output " + std::to_string(n) +
             ": checkpoint_format \"gptq\" (v1) cannot store it (loaders would read " +
             std::to_string(q.maxq() + 1) + "); use \"gptq_v2\"");

  std::vector<uint16_t> scales(size_t(G * N));
  for (int64_t i = 0; i < G * N; ++i) {
    const float s = w.scales.data()[i];
    scales[i] = float_to_half(s);
    if (!std::isfinite(half_to_float(scales[i])))
      fail("scale " + std::to_string(s) + " at group " + std::to_string(i / N) + ", output " +
           std::to_string(i % N) + " is not a finite F16 value");
  }
  MatrixI32 qweight, qzeros;
  try {
    qweight = pack_qweight(w.codes, q.bits);
    qzeros = pack_qzeros(w.zeros, q.bits, fmt);
  } catch (const Error& e) {
    fail(e.what());
  }

  queue(name + ".qweight", DType::I32, {qweight.rows(), qweight.cols()}, qweight.data(),
        size_t(qweight.size()) * 4);
  queue(name + ".qzeros", DType::I32, {qzeros.rows(), qzeros.cols()}, qzeros.data(),
        size_t(qzeros.size()) * 4);
  queue(name + ".scales", DType::F16, {G, N}, scales.data(), scales.size() * 2);
  queue(name + ".g_idx", DType::I32, {K}, w.g_idx.data(), w.g_idx.size() * 4);
  if (bias) {
    if (bias->size() != N)
      fail("bias has " + std::to_string(bias->size()) + " entries, expected " +
           std::to_string(N));
    queue_float(name + ".bias", {N}, std::vector<float>(bias->data(), bias->data() + N),
                DType::F16);
  } else if (linear_has_bias(c, kind) || (m_source_ckpt && m_source_ckpt->find(name + ".bias"))) {
    add_source_tensor(name + ".bias", {N}, /*bias=*/true);
  }
  add_block_source_tensors(block);
  m_added.insert({block, kind});
}

void GptqWriter::finish() {
  if (m_done) throw Error("GPTQ export: finish() called twice");
  const ModelConfig& c = m_source.config();
  std::string missing;
  int n_missing = 0;
  for (int b = 0; b < c.num_layers; ++b)
    for (LinearKind k : kAllLinears)
      if (m_opt.settings.is_quantized({b, k}) && !m_added.count({b, k}) && n_missing++ < 5)
        missing += (missing.empty() ? "" : ", ") + linear_module(b, k);
  if (n_missing)
    throw Error("GPTQ export: " + std::to_string(n_missing) + " quantized layers were never " +
                "given (" + missing + (n_missing > 5 ? ", ..." : "") + ")");

  add_source_tensor("model.norm.weight", {c.hidden_size});
  if (!c.tie_word_embeddings) add_source_tensor("lm_head.weight", {c.vocab_size, c.hidden_size});

  std::error_code ec;
  const std::string base = m_opt.settings.model_file_base_name;
  const bool sharded = m_shards.size() > 1;
  if (!sharded) {
    m_pending->set_metadata("format", "pt");
    m_pending->write(m_tmp / (base + ".safetensors"));
  } else {
    flush_shard();
    // Named as transformers' save_pretrained names shards, once their number is known.
    json weight_map = json::object();
    const size_t n = m_shards.size();
    char buf[64];
    for (size_t i = 0; i < n; ++i) {
      std::snprintf(buf, sizeof buf, "-%05zu-of-%05zu.safetensors", i + 1, n);
      const std::string file = base + buf;
      fs::rename(m_shards[i].first, m_tmp / file, ec);  // inside our own temporary folder
      if (ec) throw IoError(file_msg(m_shards[i].first, "cannot rename to " + file + ": " +
                                                          ec.message()));
      for (const std::string& t : m_shards[i].second) weight_map[t] = file;
    }
    write_json(m_tmp / (base + ".safetensors.index.json"),
               {{"metadata", {{"total_size", m_total_bytes}}}, {"weight_map", weight_map}});
  }

  // config.json: the source's own file when there is one (every key it has, in its words),
  // with the quantization settings added and the dtype of the float tensors stated. It and the
  // copied files are taken only from inside the source folder, and only if they are regular
  // files (common/input_file.h): a link to a file elsewhere is refused, not copied.
  json config;
  const fs::path src_config = m_opt.source_dir / "config.json";
  if (!m_opt.source_dir.empty() && fs::exists(fs::symlink_status(src_config, ec))) {
    resolve_inside(m_opt.source_dir, "config.json");
    config = read_json_file(src_config);
  } else {
    config = c.raw;
  }
  config["quantization_config"] = m_opt.settings.to_json();
  config["torch_dtype"] = torch_dtype_name(m_float_dtype);
  write_json(m_tmp / "config.json", config);
  write_json(m_tmp / "quantize_config.json", m_opt.settings.to_json());
  if (!m_opt.source_dir.empty())
    for (const std::string& f : kGptqCopiedFiles) {
      const fs::path from = m_opt.source_dir / f;
      if (!fs::exists(fs::symlink_status(from, ec))) continue;
      resolve_inside(m_opt.source_dir, f);
      write_file_atomically(m_tmp / f, read_input_file(from, copied_kind(f)));
    }
  if (!m_opt.report.is_null()) write_json(m_tmp / "quantization_report.json", m_opt.report);

  m_folder->commit();
  m_done = true;
}

// ---------------------------------------------------------------------------------------------
// Pull-style export

fs::path export_gptq(const WeightSource& source, const GptqExportOptions& options,
                     const QuantizedLayerFn& layer, const ProgressFn& progress) {
  if (!layer) throw ConfigError("GPTQ export: no layer callback given");
  GptqWriter writer(source, options);
  const int L = source.config().num_layers;
  const GptqSettings& s = options.settings;  // valid: the writer checked it
  int quantized = 0;
  for (int b = 0; b < L; ++b)
    for (LinearKind k : kAllLinears) quantized += s.is_quantized({b, k});
  const double total = quantized;
  int done = 0;
  for (int b = 0; b < L; ++b)
    for (LinearKind k : kAllLinears) {
      if (!s.is_quantized({b, k})) continue;  // the writer copies it from the source
      report_progress(progress, {"export", b, L, std::string(linear_name(k)), done / total});
      QuantizedLinear l = layer(b, k);
      writer.add(b, k, l.w, l.bias ? &*l.bias : nullptr);
      ++done;
    }
  // Last chance to cancel before the folder appears.
  report_progress(progress, {"export", L - 1, L, "", 1.0});
  writer.finish();
  return writer.destination();
}

}  // namespace gptqw
