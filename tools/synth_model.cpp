// synth_model: writes a seeded synthetic Llama-family model (core/io/synthetic_model.h) for
// speed and scale work and for checks of real architectures, e.g. LLaMA-7B's shapes in bf16, or
// Qwen3-0.6B's real config.json cut to 2 blocks (its family's real tokenizer is copied):
//   synth_model --out DIR [--preset llama-7b|tiny | --config CONFIG.json] [--layers N]
//               [--dtype bf16|f16|f32] [--seed 0] [--tokenizer-from DIR] [--shard-gb 2]
#include <cstdio>
#include <string>

#include "io/synthetic_model.h"

int main(int argc, char** argv) {
  gptqw::SyntheticModelOptions o;
  std::filesystem::path out;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
        return argv[++i];
      };
      if (a == "--out")
        out = next();
      else if (a == "--preset")
        o.preset = next();
      else if (a == "--config")
        o.config_file = next();
      else if (a == "--layers")
        o.layers = std::stoi(next());
      else if (a == "--dtype")
        o.dtype = next();
      else if (a == "--seed")
        o.seed = std::stoull(next());
      else if (a == "--tokenizer-from")
        o.tokenizer_from = next();
      else if (a == "--shard-gb")
        o.shard_bytes = std::stod(next()) * 1e9;
      else
        throw std::runtime_error("unknown option " + a);
    }
    if (out.empty()) throw std::runtime_error("--out is required");
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "synth_model: %s\nusage: synth_model --out DIR [--preset llama-7b|tiny | --config FILE] "
                 "[--layers N] [--dtype bf16|f16|f32] [--seed 0] [--tokenizer-from DIR] "
                 "[--shard-gb 2]\n",
                 e.what());
    return 2;
  }
  try {
    int64_t params = gptqw::write_synthetic_model(out, o);
    std::printf("%s: %s, %lld parameters, %s\n", out.c_str(),
                o.config_file.empty() ? o.preset.c_str() : o.config_file.c_str(),
                static_cast<long long>(params), o.dtype.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "synth_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
