// Data tests of core/io/safetensors against a real Hugging Face checkpoint: stories260K's
// model.safetensors (Llama, fp32, tied embeddings). Checks the tensor list and shapes against
// what config.json implies, a few weights pinned bit-exactly from an independent parse, and
// that the file survives a round trip through our writer.
#include <QTest>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/half.h"
#include "io/safetensors.h"
#include "test_support.h"

using namespace gptqw;
namespace fs = std::filesystem;

namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

}  // namespace

class TestSafetensorsData : public QObject {
  Q_OBJECT
 private slots:
  void tensorsMatchConfig() {
    const fs::path file = test::data("models/stories260K/model.safetensors");
    QVERIFY2(fs::exists(file), file.c_str());
    std::ifstream cfg_in(test::data("models/stories260K/config.json"));
    const auto cfg = nlohmann::json::parse(cfg_in);
    const int64_t hidden = cfg["hidden_size"], inter = cfg["intermediate_size"];
    const int64_t layers = cfg["num_hidden_layers"], heads = cfg["num_attention_heads"];
    const int64_t kv_heads = cfg["num_key_value_heads"], vocab = cfg["vocab_size"];
    const int64_t kv_dim = hidden / heads * kv_heads;
    QVERIFY(cfg["tie_word_embeddings"].get<bool>());  // hence no lm_head.weight below

    std::map<std::string, std::vector<int64_t>> expected = {
        {"model.embed_tokens.weight", {vocab, hidden}}, {"model.norm.weight", {hidden}}};
    for (int64_t l = 0; l < layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      expected[p + "input_layernorm.weight"] = {hidden};
      expected[p + "post_attention_layernorm.weight"] = {hidden};
      expected[p + "self_attn.q_proj.weight"] = {hidden, hidden};
      expected[p + "self_attn.k_proj.weight"] = {kv_dim, hidden};
      expected[p + "self_attn.v_proj.weight"] = {kv_dim, hidden};
      expected[p + "self_attn.o_proj.weight"] = {hidden, hidden};
      expected[p + "mlp.gate_proj.weight"] = {inter, hidden};
      expected[p + "mlp.up_proj.weight"] = {inter, hidden};
      expected[p + "mlp.down_proj.weight"] = {hidden, inter};
    }
    QCOMPARE(expected.size(), size_t(47));  // 2 + 5 layers x 9

    SafetensorsFile f(file);
    QCOMPARE(f.tensors().size(), expected.size());
    QCOMPARE(f.metadata().at("format"), std::string("pt"));
    for (const auto& [name, shape] : expected) {
      const TensorView* t = f.find(name);
      QVERIFY2(t, name.c_str());
      QCOMPARE(t->dtype, DType::F32);
      QCOMPARE(t->shape, shape);
      QCOMPARE(t->nbytes, size_t(t->numel()) * 4);
    }
    // The data buffer is packed: the tensors cover it exactly, in offset order.
    size_t covered = 0;
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      covered += f.tensors()[i].nbytes;
      if (i) QCOMPARE(f.tensors()[i - 1].data + f.tensors()[i - 1].nbytes, f.tensors()[i].data);
    }
    QCOMPARE(f.tensors().back().data + f.tensors().back().nbytes - covered,
             f.tensors().front().data);
    QCOMPARE(f.file_size(), size_t(fs::file_size(file)));
    QCOMPARE(size_t(f.file_size() - 8 - 4848), covered);  // header length 4848, read with Python

    Checkpoint c = Checkpoint::open(test::stories_dir());
    QCOMPARE(c.names().size(), size_t(47));
    QCOMPARE(c.bytes_on_disk(), uint64_t(fs::file_size(file)));
    QCOMPARE(c.files().size(), size_t(1));
    QCOMPARE(c.files()[0].filename().string(), std::string("model.safetensors"));
    QVERIFY(!c.find("lm_head.weight"));
  }

  // Weights pinned from an independent parse of the same file with Python's struct module
  // (json header, then struct.unpack('<f') at 8 + 4848 + data_offsets[0] + 4 * index):
  //   embed_tokens[0][0]           = -0.29474878311157227   bytes 50 e9 96 be
  //   embed_tokens[1][5]           = -0.0188860185444355    bytes da b6 9a bc
  //   norm[0]                      =  2.4583089351654053    bytes ef 54 1d 40
  //   layers.4.down_proj[63][171]  = -0.0035068716388195753 bytes 8b d3 65 bb (last element)
  //   layers.2.k_proj[31][63]      =  0.018669389188289642  bytes 8c f0 98 3c
  void knownValues() {
    Checkpoint c = Checkpoint::open(test::data("models/stories260K/model.safetensors"));
    auto embed = to_float(c.get("model.embed_tokens.weight"));
    QCOMPARE(embed.size(), size_t(512 * 64));
    QCOMPARE(bits_of(embed[0]), 0xbe96e950u);
    QCOMPARE(bits_of(embed[1 * 64 + 5]), 0xbc9ab6dau);
    QCOMPARE(bits_of(to_float(c.get("model.norm.weight"))[0]), 0x401d54efu);
    auto down = to_float(c.get("model.layers.4.mlp.down_proj.weight"));
    QCOMPARE(bits_of(down[63 * 172 + 171]), 0xbb65d38bu);
    QCOMPARE(bits_of(to_float(c.get("model.layers.2.self_attn.k_proj.weight"))[31 * 64 + 63]),
             0x3c98f08cu);
    for (const auto& name : c.names())
      for (float v : to_float(c.get(name))) QVERIFY2(std::isfinite(v), name.c_str());
  }

  // Every tensor survives our writer byte for byte, with F16 export matching a per-value cast.
  void rewriteRoundTrip() {
    QTemporaryDir tmp;
    const fs::path out = fs::path(tmp.path().toStdString()) / "copy.safetensors";
    Checkpoint c = Checkpoint::open(test::stories_dir());
    SafetensorsWriter w;
    for (const auto& [k, v] : c.metadata()) w.set_metadata(k, v);
    for (const auto& name : c.names()) {
      const TensorView& t = c.get(name);
      w.add(name, t.dtype, t.shape, t.data, t.nbytes);
    }
    w.add_f16("extra.norm_f16", c.get("model.norm.weight").shape,
              to_float(c.get("model.norm.weight")).data());
    w.write(out);

    SafetensorsFile copy(out);
    QCOMPARE(copy.tensors().size(), size_t(48));
    QCOMPARE(copy.metadata(), c.metadata());
    // Same tensors, shapes and bytes (the data order differs: ours is by name).
    for (const auto& name : c.names()) {
      const TensorView& a = c.get(name);
      const TensorView* b = copy.find(name);
      QVERIFY2(b, name.c_str());
      QCOMPARE(b->shape, a.shape);
      QVERIFY2(std::memcmp(a.data, b->data, a.nbytes) == 0, name.c_str());
    }
    auto norm = to_float(c.get("model.norm.weight"));
    auto half = to_float(*copy.find("extra.norm_f16"));
    for (size_t i = 0; i < norm.size(); ++i)
      QCOMPARE(half[i], half_to_float(float_to_half(norm[i])));
  }
};

QTEST_GUILESS_MAIN(TestSafetensorsData)
#include "tst_safetensors_data.moc"
