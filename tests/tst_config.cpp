// Unit tests of Hugging Face config.json parsing: the fields each supported architecture
// needs, the defaults transformers uses, RoPE scaling (the frequencies pinned against the
// float64 reference tools/reference/llama_reference.py rope_inv_freq), and errors that name the
// file and the field.
#include <QTest>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "model/config.h"
#include "model/layers.h"
#include "model/rope_scaling.h"

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
  // The one vocabulary of layer names: what each parser accepts and refuses.
  void layerNames() {
    using K = LinearKind;
    QCOMPARE(linear_name(K::gate), std::string_view("mlp.gate_proj"));
    QCOMPARE(linear_short_name(K::o), std::string_view("o_proj"));
    QCOMPARE(linear_module(12, K::down), std::string("model.layers.12.mlp.down_proj"));
    QCOMPARE((LayerId{12, K::down}).module(), std::string("model.layers.12.mlp.down_proj"));
    // Exact names only where a file names a module; users may also type the short name.
    QVERIFY(linear_kind_of("self_attn.v_proj") == K::v);
    QVERIFY(!linear_kind_of("v_proj"));
    QVERIFY(parse_linear_name("v_proj") == K::v && parse_linear_name("mlp.up_proj") == K::up);
    try {
      parse_linear_name("mlp.fc1");
      QFAIL("mlp.fc1 accepted");
    } catch (const ConfigError& e) {
      QVERIFY(std::string(e.what()).find("self_attn.q_proj, self_attn.k_proj") != std::string::npos);
    }
    // Sorted by block, then in the order of the block.
    QVERIFY((LayerId{1, K::down}) < (LayerId{2, K::q}) && (LayerId{2, K::q}) < (LayerId{2, K::k}));
    const auto groups = sequential_groups(true);
    QCOMPARE(groups.size(), size_t(4));
    QCOMPARE(groups[2], (std::vector<LinearKind>{K::gate, K::up}));
    QCOMPARE(sequential_groups(false).front().size(), size_t(kNumLinears));
  }

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
    j["rope_scaling"] = {{"type", "longrope"}, {"factor", 2.0}};
    e = error_of(j);
    QVERIFY2(e.find("rope_scaling.rope_type") != std::string::npos &&
                 e.find("longrope") != std::string::npos, e.c_str());

    j = llama();
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8192}};
    e = error_of(j);
    QVERIFY2(e.find("rope_scaling.low_freq_factor' is missing") != std::string::npos, e.c_str());

    j = llama();
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 0.5}};
    QVERIFY(error_of(j).find("rope_scaling.factor") != std::string::npos);

    // YaRN keys whose meaning changed between transformers versions are refused by name.
    j = llama();
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0},
                         {"original_max_position_embeddings", 32768}};
    e = error_of(j);
    QVERIFY2(e.find("rope_scaling.original_max_position_embeddings") != std::string::npos, e.c_str());

    j = llama();
    j["hidden_act"] = "gelu";
    QVERIFY(error_of(j).find("hidden_act") != std::string::npos);

    QVERIFY(error_of(json::array()).find("JSON object") != std::string::npos);

    j = llama();
    j["partial_rotary_factor"] = 0.5;
    QVERIFY(error_of(j).find("partial_rotary_factor") != std::string::npos);
  }

  void mixtureOfExpertsIsRefusedByItsField() {
    // The fields as Mixtral-8x7B and Qwen3-30B-A3B's config.json have them.
    json j = llama();
    j["model_type"] = "mixtral";
    j["num_local_experts"] = 8;
    j["num_experts_per_tok"] = 2;
    std::string e = error_of(j);
    QVERIFY2(e.find("'num_local_experts' is 8") != std::string::npos &&
                 e.find("mixture-of-experts") != std::string::npos, e.c_str());
    j = llama();
    j["model_type"] = "qwen3_moe";
    j["num_experts"] = 128;
    e = error_of(j);
    QVERIFY2(e.find("'num_experts' is 128") != std::string::npos, e.c_str());
  }

  void qwen3() {
    json j = llama();
    j["model_type"] = "qwen3";
    j["hidden_size"] = 1024;
    j["num_attention_heads"] = 16;
    j["num_key_value_heads"] = 8;
    j["sliding_window"] = nullptr;
    j["use_sliding_window"] = false;
    ModelConfig c = parse_hf_config(j, "config.json");
    QVERIFY(c.qk_norm);
    QCOMPARE(c.head_dim, 128);  // Qwen3Config's default, not 1024 / 16
    QVERIFY(!c.qkv_bias && !c.o_bias);
    QCOMPARE(c.sliding_window, 0);
    j["attention_bias"] = true;
    c = parse_hf_config(j, "config.json");
    QVERIFY(c.qkv_bias && c.o_bias);  // Qwen3's attention_bias covers o_proj too
    // 2 norms of head_dim per block.
    json k = j;
    k["model_type"] = "llama";
    k["head_dim"] = 128;
    QCOMPARE(c.parameter_count() - parse_hf_config(k, "config.json").parameter_count(),
             int64_t(32) * 2 * 128);
  }

  void slidingWindow() {
    json j = llama();
    j["model_type"] = "mistral";
    j["sliding_window"] = 4096;
    QCOMPARE(parse_hf_config(j, "c").sliding_window, 4096);
    j["sliding_window"] = nullptr;  // Mistral v0.3
    QCOMPARE(parse_hf_config(j, "c").sliding_window, 0);
    j["model_type"] = "qwen2";
    j["sliding_window"] = 32768;
    j["use_sliding_window"] = false;  // Qwen2.5: set but not used
    QCOMPARE(parse_hf_config(j, "c").sliding_window, 0);
    j["use_sliding_window"] = true;
    QCOMPARE(parse_hf_config(j, "c").sliding_window, 32768);
  }

  void unknownKeysAreReported() {
    json j = llama();
    j["initializer_range"] = 0.02;  // knowingly ignored
    j["attn_logit_softcapping"] = 50.0;  // not known: reported
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"finetuned", true}};
    ModelConfig c = parse_hf_config(j, "c");
    QCOMPARE(c.unrecognized_keys.size(), size_t(2));
    QVERIFY(std::count(c.unrecognized_keys.begin(), c.unrecognized_keys.end(), "attn_logit_softcapping"));
    QVERIFY(std::count(c.unrecognized_keys.begin(), c.unrecognized_keys.end(), "rope_scaling.finetuned"));
  }

  void ropeFrequenciesMatchTheReference() {
    // Values from tools/reference/llama_reference.py rope_inv_freq (float64, written from
    // transformers' modeling_rope_utils definitions).
    auto check = [](const json& scaling, int head_dim, double theta, int max_pos, int seqlen,
                    std::vector<std::pair<int, double>> expected, double scaling_expected) {
      json j = llama();
      j["hidden_size"] = head_dim * 32;
      j["rope_theta"] = theta;
      j["max_position_embeddings"] = max_pos;
      j["rope_scaling"] = scaling;
      RopeFrequencies f = rope_frequencies(parse_hf_config(j, "c"), seqlen);
      QCOMPARE(int(f.inv_freq.size()), head_dim / 2);
      for (auto [i, v] : expected)
        QVERIFY2(std::abs(f.inv_freq[i] / v - 1) < 1e-12,
                 qPrintable(QString("%1 inv_freq[%2] = %3, reference %4")
                                .arg(QString::fromStdString(scaling.dump())).arg(i)
                                .arg(f.inv_freq[i], 0, 'g', 17).arg(v, 0, 'g', 17)));
      QVERIFY(std::abs(f.attention_scaling - scaling_expected) < 1e-12);
    };
    // Llama 3.1: high frequencies kept, low ones divided by 8, the band between blended.
    check({{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}},
          128, 500000.0, 131072, 16,
          {{0, 1.0}, {28, 0.003211445994752591}, {30, 0.0013718935677611381},
           {33, 0.00031269375038406517}, {35, 9.556212353964683e-05}, {40, 3.428102195952591e-05},
           {63, 3.068925988914511e-07}},
          1.0);
    check({{"type", "linear"}, {"factor", 4.0}}, 64, 10000.0, 2048, 16,
          {{0, 0.25}, {10, 0.014058533129758728}, {31, 3.33380358040831e-05}}, 1.0);
    // Dynamic NTK: plain RoPE up to max_position_embeddings, a larger base beyond it.
    check({{"type", "dynamic"}, {"factor", 4.0}}, 64, 10000.0, 64, 64,
          {{0, 1.0}, {10, 0.05623413251903491}, {31, 0.0001333521432163324}}, 1.0);
    check({{"type", "dynamic"}, {"factor", 4.0}}, 64, 10000.0, 64, 128,
          {{0, 1.0}, {10, 0.03345998986298904}, {31, 2.6670428643266484e-05}}, 1.0);
    check({{"rope_type", "yarn"}, {"factor", 4.0}}, 64, 10000.0, 64, 16,
          {{0, 1.0}, {3, 0.31627237757143667}, {5, 0.1383301328302632},
           {10, 0.014058533129758728}, {31, 3.33380358040831e-05}},
          1.138629436111989);
  }
};

QTEST_GUILESS_MAIN(TestConfig)
#include "tst_config.moc"
