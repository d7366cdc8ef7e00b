// gptqw inspect: what a model is (architecture, size, dtype) and every tensor in it.
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli_common.h"
#include "commands.h"
#include "common/error.h"
#include "io/gptq_checkpoint.h"

namespace gptqw::cli {

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", b, units[u]);
  return buf;
}

}  // namespace

int cmd_inspect(const std::vector<std::string>& words) {
  Args args(words, {"--json"}, {"--model", "--tokenizer"});
  Model model = open_model(args, false);
  const WeightSource& w = *model.weights;
  const ModelConfig& c = w.config();
  auto tensors = w.tensors();
  int64_t params = c.parameter_count();
  const auto* gptq = dynamic_cast<const GptqCheckpoint*>(&w);
  if (args.flag("--json")) {
    nlohmann::json j;
    j["model"] = model.path.string();
    j["format"] = w.format();
    j["model_type"] = c.model_type;
    j["architecture"] = c.architecture;
    j["hidden_size"] = c.hidden_size;
    j["num_layers"] = c.num_layers;
    j["num_heads"] = c.num_heads;
    j["num_kv_heads"] = c.num_kv_heads;
    j["head_dim"] = c.head_dim;
    j["intermediate_size"] = c.intermediate_size;
    j["vocab_size"] = c.vocab_size;
    j["max_position_embeddings"] = c.max_position_embeddings;
    j["tie_word_embeddings"] = c.tie_word_embeddings;
    j["rope_theta"] = c.rope_theta;
    j["rope"] = describe_rope(c);
    j["rope_scaling"] = c.rope_scaling.type;
    j["qk_norm"] = c.qk_norm;
    j["sliding_window"] = c.sliding_window;
    j["unrecognized_config_keys"] = c.unrecognized_keys;
    j["parameters"] = params;
    j["dtype"] = w.dtype();
    j["bytes_on_disk"] = w.bytes_on_disk();
    j["fp16_bytes"] = params * 2;
    if (gptq) {
      j["quantization"] = gptq->settings().to_json();
      j["quantized_layers"] =
          c.num_layers * (kNumLinears - int(gptq->settings().modules_not_quantized.size()));
    }
    j["tensors"] = nlohmann::json::array();
    for (const auto& t : tensors)
      j["tensors"].push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}, {"bytes", t.bytes}});
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  std::printf("model          %s (%s)\n", model.path.string().c_str(), w.format().c_str());
  std::printf("architecture   %s (%s)\n", c.architecture.c_str(), c.model_type.c_str());
  std::printf("layers         %d, hidden %d, intermediate %d, heads %d (kv %d, head dim %d)\n",
              c.num_layers, c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads,
              c.head_dim);
  std::printf("vocabulary     %d, context %d, %s lm_head\n", c.vocab_size,
              c.max_position_embeddings, c.tie_word_embeddings ? "tied" : "separate");
  std::printf("attention      RoPE %s%s%s\n", describe_rope(c).c_str(),
              c.qk_norm ? "; q/k RMSNorm per head (Qwen3)" : "",
              c.sliding_window ? ("; sliding window " + std::to_string(c.sliding_window)).c_str() : "");
  std::printf("parameters     %lld (%.3f M)\n", static_cast<long long>(params), params / 1e6);
  std::printf("dtype          %s\n", w.dtype().c_str());
  std::printf("on disk        %s (%llu bytes)\n", human_bytes(double(w.bytes_on_disk())).c_str(),
              static_cast<unsigned long long>(w.bytes_on_disk()));
  std::printf("weights fp16   %s\n", human_bytes(double(params) * 2).c_str());
  if (gptq) {
    const GptqSettings& g = gptq->settings();
    std::printf("quantization   GPTQ %d-bit, group size %d, %s, desc_act %s, static_groups %s, "
                "checkpoint_format %s\n",
                g.quant.bits, g.quant.group_size, g.quant.sym ? "sym" : "asym",
                g.desc_act ? "true" : "false", g.static_groups ? "true" : "false",
                std::string(checkpoint_format_name(g.zero_format())).c_str());
    if (g.per_module.empty()) {
      const int per_block = kNumLinears - static_cast<int>(g.modules_not_quantized.size());
      std::printf("quantized      %d linear layers (%d blocks x %d), each %d bits per weight\n",
                  c.num_layers * per_block, c.num_layers, per_block, g.quant.bits);
    } else {
      // A mixed-precision checkpoint (GPTQModel's "dynamic"): how many modules take each setting.
      std::map<std::string, int> count;
      for (int b = 0; b < c.num_layers; ++b)
        for (LinearKind k : kAllLinears) {
          if (!g.is_quantized({b, k})) {
            ++count["fp16"];
            continue;
          }
          const QuantConfig q = g.quant_of({b, k});
          ++count[PrecisionChoice{q.bits, q.group_size, false}.describe()];
        }
      std::string settings;
      for (const auto& [what, n] : count) settings += (settings.empty() ? "" : ", ") + std::to_string(n) + " " + what;
      std::printf("per module     %s (%zu modules with their own setting in \"dynamic\")\n", settings.c_str(),
                  g.per_module.size());
    }
    if (!g.modules_not_quantized.empty()) {
      std::string names;
      for (const auto& m : g.modules_not_quantized) names += (names.empty() ? "" : ", ") + m;
      std::printf("not quantized  %s (in every block)\n", names.c_str());
    }
  }
  std::printf("\n%-56s %-5s %-16s %s\n", "tensor", "dtype", "shape", "bytes");
  for (const auto& t : tensors)
    std::printf("%-56s %-5s %-16s %llu\n", t.name.c_str(), t.dtype.c_str(), shape_str(t.shape).c_str(),
                static_cast<unsigned long long>(t.bytes));
  return 0;
}

}  // namespace gptqw::cli
