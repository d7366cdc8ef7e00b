// Sharded checkpoints: the input is model.safetensors.index.json in a scratch folder that also
// holds two small valid shards (written once), then Checkpoint::open(folder) and every lookup.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/safetensors.h"

namespace {

const std::filesystem::path& folder() {
  static const std::filesystem::path dir = [] {
    const std::filesystem::path& d = gptqw_fuzz::scratch_dir("index");
    // Shards with the names Hugging Face uses, a few tensors each (one empty, one F16).
    std::vector<float> v(24);
    for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25f * float(i) - 1.f;
    gptqw::SafetensorsWriter a;
    a.set_metadata("format", "pt");
    a.add_f32("model.embed_tokens.weight", {4, 6}, v.data());
    a.add_f32("model.norm.weight", {6}, v.data());
    a.add_f32("model.layers.0.input_layernorm.weight", {0}, v.data());
    a.write(d / "model-00001-of-00002.safetensors");
    gptqw::SafetensorsWriter b;
    b.add_f16("model.layers.0.self_attn.q_proj.weight", {6, 2}, v.data());
    b.add_f32("lm_head.weight", {4, 6}, v.data());
    b.write(d / "model-00002-of-00002.safetensors");
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gptqw;
  const std::filesystem::path& dir = folder();
  gptqw_fuzz::write_file(dir / "model.safetensors.index.json", data, size);
  gptqw_fuzz::expect_rejection([&] {
    Checkpoint c = Checkpoint::open(dir);
    for (const std::string& name : c.names()) {
      const TensorView& t = c.get(name);
      gptqw_fuzz::expect_rejection([&] { (void)to_float(t); });
    }
    (void)c.bytes_on_disk();
    (void)c.metadata();
    (void)c.files();
  });
  return 0;
}
