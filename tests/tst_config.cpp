// Unit tests of Hugging Face config.json parsing: the fields each supported architecture
// needs, the defaults transformers uses, and errors that name the file and the field.
#include <QTest>

#include "common/error.h"
#include "model/config.h"

using namespace gptqw;
using nlohmann::json;

namespace {

json llama() {
  return {{"model_type", "llama"},       {"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", 4096},         {"intermediate_size", 11008},
          {"num_hidden_layers", 32},     {"num_attention_heads", 32},
          {"vocab_size", 32000},         {"rms_norm_eps", 1e-5},
          {"max_position_embeddings", 4096}};
}

// The error's message, or "" when none was thrown.
std::string error_of(const json& j) {
  try {
    parse_hf_config(j, "/models/x/config.json");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

class TestConfig : public QObject {
  Q_OBJECT
 private slots:
  void llama7b() {
    ModelConfig c = parse_hf_config(llama(), "config.json");
    QCOMPARE(c.num_kv_heads, 32);  // defaults to num_attention_heads
    QCOMPARE(c.head_dim, 128);
    QCOMPARE(c.rope_theta, 10000.f);
    QVERIFY(!c.tie_word_embeddings);
    QVERIFY(!c.qkv_bias);
    // LLaMA-7B has 6,738,415,616 parameters (the figure its model card and transformers give).
    QCOMPARE(c.parameter_count(), int64_t(6738415616));
  }
  void qwen2HasQkvBias() {
    json j = llama();
    j["model_type"] = "qwen2";
    j["num_key_value_heads"] = 4;
    j["eos_token_id"] = json::array({151645, 151643});
    ModelConfig c = parse_hf_config(j, "config.json");
    QVERIFY(c.qkv_bias);
    QVERIFY(!c.o_bias);
    QCOMPARE(c.num_kv_heads, 4);
    QCOMPARE(c.eos_token_id, 151645);
  }
  void llamaAttentionBiasCoversO() {
    json j = llama();
    j["attention_bias"] = true;
    ModelConfig c = parse_hf_config(j, "config.json");
    QVERIFY(c.qkv_bias && c.o_bias);
  }
  void errorsNameFileAndField() {
    json j = llama();
    j.erase("hidden_size");
    std::string e = error_of(j);
    QVERIFY2(e.find("/models/x/config.json") != std::string::npos, e.c_str());
    QVERIFY2(e.find("'hidden_size' is missing") != std::string::npos, e.c_str());

    j = llama();
    j["model_type"] = "gpt2";
    e = error_of(j);
    QVERIFY2(e.find("model_type") != std::string::npos && e.find("gpt2") != std::string::npos, e.c_str());

    j = llama();
    j["num_hidden_layers"] = "32";
    QVERIFY(error_of(j).find("'num_hidden_layers' must be an integer") != std::string::npos);

    j = llama();
    j["num_key_value_heads"] = 5;
    QVERIFY(error_of(j).find("num_key_value_heads") != std::string::npos);

    j = llama();
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
    QVERIFY(error_of(j).find("rope_scaling") != std::string::npos);

    j = llama();
    j["hidden_act"] = "gelu";
    QVERIFY(error_of(j).find("hidden_act") != std::string::npos);

    QVERIFY(error_of(json::array()).find("JSON object") != std::string::npos);
  }
};

QTEST_GUILESS_MAIN(TestConfig)
#include "tst_config.moc"
