#include "io/synthetic_model.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <vector>

#include "common/error.h"
#include "common/half.h"
#include "common/input_file.h"
#include "common/json.h"
#include "common/output_file.h"
#include "common/text_file.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "model/weights.h"

namespace gptqw {

namespace fs = std::filesystem;

namespace {

// splitmix64: a tiny counter-based generator; value i of stream s depends only on (s, i).
uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Normal values by Box-Muller from two uniform draws per pair.
void fill_normal(std::vector<float>& out, uint64_t stream, float stddev) {
  const int64_t n = static_cast<int64_t>(out.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i += 2) {
    uint64_t a = splitmix(stream ^ splitmix(uint64_t(i)));
    double u1 = ((a >> 11) + 1) * 0x1.0p-53, u2 = (splitmix(a) >> 11) * 0x1.0p-53;
    double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
    out[i] = static_cast<float>(r * std::cos(2 * M_PI * u2));
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * std::sin(2 * M_PI * u2));
  }
}

// Approximately normal values, 3x to 5x faster than Box-Muller: the sum of the four 16-bit
// quarters of one splitmix draw (Irwin-Hall with n = 4: mean 0, variance 1 after scaling,
// bounded at 3.46 sigma), which is all a synthetic weight needs. Used for real configs, whose
// vocabularies make the embedding the bulk of the model; the presets keep Box-Muller so that
// their bytes stay what they were.
void fill_sum4(std::vector<float>& out, uint64_t stream, float stddev) {
  const int64_t n = static_cast<int64_t>(out.size());
  // Each quarter is uniform on [0, 65535]: mean 32767.5, variance (65536^2 - 1) / 12.
  const double mean = 4 * 32767.5, inv_sd = 1.0 / std::sqrt(4 * (65536.0 * 65536.0 - 1) / 12);
  const float scale = static_cast<float>(inv_sd * stddev);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t a = splitmix(stream ^ splitmix(uint64_t(i)));
    const double sum = double(a & 0xffff) + double((a >> 16) & 0xffff) +
                       double((a >> 32) & 0xffff) + double(a >> 48);
    out[i] = static_cast<float>(sum - mean) * scale;
  }
}

nlohmann::json preset_config(const SyntheticModelOptions& o) {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_act", "silu"},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"tie_word_embeddings", false},
                      {"bos_token_id", 1},
                      {"eos_token_id", 2}};
  if (o.preset == "llama-7b") {
    j.update({{"hidden_size", 4096},
              {"intermediate_size", 11008},
              {"num_hidden_layers", 32},
              {"num_attention_heads", 32},
              {"num_key_value_heads", 32},
              {"vocab_size", 32000},
              {"max_position_embeddings", 2048}});
  } else if (o.preset == "tiny") {
    j.update({{"hidden_size", 256},
              {"intermediate_size", 688},
              {"num_hidden_layers", 4},
              {"num_attention_heads", 8},
              {"num_key_value_heads", 4},
              {"vocab_size", 512},
              {"max_position_embeddings", 1024}});
  } else {
    throw ConfigError("unknown preset '" + o.preset + "' (llama-7b or tiny)");
  }
  if (o.layers > 0) j["num_hidden_layers"] = o.layers;
  j["torch_dtype"] = o.dtype == "bf16" ? "bfloat16" : o.dtype == "f16" ? "float16" : "float32";
  return j;
}

std::string torch_dtype(const std::string& dtype) {
  return dtype == "bf16" ? "bfloat16" : dtype == "f16" ? "float16" : "float32";
}

}  // namespace

fs::path family_tokenizer_dir(const nlohmann::json& j) {
  const std::string type = j.value("model_type", "");
  const int vocab = j.value("vocab_size", 0);
  if ((type == "qwen2" || type == "qwen3") && vocab >= 151669) return data_dir() / "tokenizers/qwen3";
  if (type == "llama" && vocab == 128256) return data_dir() / "tokenizers/llama3";
  return data_dir() / "models/stories260K";
}

int64_t write_synthetic_model(const fs::path& out, const SyntheticModelOptions& o) {
  if (o.dtype != "bf16" && o.dtype != "f16" && o.dtype != "f32")
    throw ConfigError("synthetic model dtype must be bf16, f16 or f32, got '" + o.dtype + "'");
  const bool real = !o.config_file.empty();
  nlohmann::json cj;
  if (real) {
    cj = read_json_file(o.config_file);
    if (!cj.is_object()) throw ConfigError(file_msg(o.config_file, "expected a JSON object"));
    // A checkpoint's quantization settings describe tensors this model does not have.
    cj.erase("quantization_config");
    if (o.layers > 0) cj["num_hidden_layers"] = o.layers;
    cj[cj.contains("dtype") && !cj.contains("torch_dtype") ? "dtype" : "torch_dtype"] = torch_dtype(o.dtype);
  } else {
    cj = preset_config(o);
  }
  ModelConfig c = parse_hf_config(cj, real ? o.config_file : fs::path("preset"));
  fs::create_directories(out);
  // Every file written as every output is (common/output_file.h).
  write_file_atomically(out / "config.json", cj.dump(2) + "\n");
  const fs::path tok = !o.tokenizer_from.empty() ? o.tokenizer_from
                       : real                   ? family_tokenizer_dir(cj)
                                                : fs::path();
  if (!tok.empty()) {
    if (!fs::exists(tok / "tokenizer.json"))
      throw IoError(file_msg(tok, "has no tokenizer.json to copy"));
    // Copies are the model's own, writable files (the data folder is read-only).
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      if (fs::exists(tok / f))
        write_file_atomically(out / f, read_input_file(tok / f, kTokenizerJsonInput));
  }

  // Every tensor of the model, in a stable order, each with its own generator stream.
  struct Spec {
    std::string name;
    std::vector<int64_t> shape;
    float stddev;
    bool ones;
  };
  std::vector<Spec> specs;
  const float init = 0.02f;  // the initializer_range Llama models are trained from
  // Norm weights: 1 (presets, as before) or 1 + N(0, 0.1) (real configs).
  const float norm_spread = real ? 0.1f : 0.0f;
  auto norm = [&](const std::string& name, int64_t n) {
    specs.push_back({name, {n}, norm_spread, true});
  };
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, init, false});
  for (int l = 0; l < c.num_layers; ++l) {
    std::string p = layer_prefix(l);
    norm(p + "input_layernorm.weight", c.hidden_size);
    norm(p + "post_attention_layernorm.weight", c.hidden_size);
    if (c.qk_norm) {
      norm(p + "self_attn.q_norm.weight", c.head_dim);
      norm(p + "self_attn.k_norm.weight", c.head_dim);
    }
    for (LinearKind k : kAllLinears) {
      auto [out, in] = linear_shape(c, k);
      specs.push_back({p + std::string(linear_name(k)) + ".weight", {out, in}, init, false});
      if (linear_has_bias(c, k))
        specs.push_back({p + std::string(linear_name(k)) + ".bias", {out}, init, false});
    }
  }
  norm("model.norm.weight", c.hidden_size);
  if (!c.tie_word_embeddings)
    specs.push_back({"lm_head.weight", {c.vocab_size, c.hidden_size}, init, false});

  const size_t esize = o.dtype == "f32" ? 4 : 2;
  const DType dt = o.dtype == "bf16" ? DType::BF16 : o.dtype == "f16" ? DType::F16 : DType::F32;
  const double shard_bytes = o.shard_bytes;
  // Assign tensors to shards first: the file names need the shard count.
  std::vector<int> shard_of(specs.size());
  int shards = 1;
  double in_shard = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    double b = esize;
    for (auto d : specs[i].shape) b *= double(d);
    if (in_shard > 0 && in_shard + b > shard_bytes) ++shards, in_shard = 0;
    in_shard += b;
    shard_of[i] = shards - 1;
  }
  nlohmann::json index = {{"metadata", {{"total_size", 0}}},
                          {"weight_map", nlohmann::json::object()}};
  uint64_t total = 0;
  size_t next = 0;
  for (int s = 0; s < shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, shards);
    SafetensorsWriter w;
    w.set_metadata("format", "pt");
    for (; next < specs.size() && shard_of[next] == s; ++next) {
      const Spec& sp = specs[next];
      int64_t n = 1;
      for (auto d : sp.shape) n *= d;
      std::vector<float> v(static_cast<size_t>(n), 1.0f);
      if (!sp.ones || sp.stddev > 0)
        (real ? fill_sum4 : fill_normal)(v, splitmix(o.seed * 1000003ull + next), sp.stddev);
      if (sp.ones && sp.stddev > 0)
        for (float& x : v) x += 1.0f;  // a norm weight around 1
      if (dt == DType::F32) {
        w.add_f32(sp.name, sp.shape, v.data());
      } else if (dt == DType::F16) {
        w.add_f16(sp.name, sp.shape, v.data());
      } else {
        std::vector<uint16_t> b(v.size());
        const int64_t nv = static_cast<int64_t>(v.size());
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nv; ++i) b[i] = float_to_bf16(v[i]);
        w.add(sp.name, DType::BF16, sp.shape, b.data(), b.size() * 2);
      }
      index["weight_map"][sp.name] = name;
      total += static_cast<uint64_t>(n) * esize;
    }
    w.write(out / name);
  }
  index["metadata"]["total_size"] = total;
  write_file_atomically(out / "model.safetensors.index.json", index.dump(1) + "\n");
  return c.parameter_count();
}

}  // namespace gptqw
