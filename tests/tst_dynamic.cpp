// Per-module settings (GptqSettings::per_module, GPTQModel's "dynamic") in the GPTQ writer and
// reader: a synthetic model (the "tiny" preset, 4 blocks) exported with a per-module mix of
// 2/3/4/8 bits, group sizes -1/32/64/128 and modules kept in fp16, read back with its settings
// and every module's codes and weights exact; the exact "dynamic" keys written for a
// hand-made case (checked once by hand with tools/reference/dynamic_reference.py, which
// applies GPTQModel's and vLLM's rules in Python); the writer's refusals; and the reader's
// handling of hostile or order-dependent rules (Python re.match semantics, first match in file
// order, GPTQModel's "-:" rules first).
#include <QTemporaryDir>
#include <QTest>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/half.h"
#include "io/gptq_checkpoint.h"
#include "io/gptq_export.h"
#include "io/hf_checkpoint.h"
#include "io/synthetic_model.h"
#include "quant/quantizer.h"
#include "quant/rtn.h"

using namespace gptqw;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Layers = std::map<LayerId, QuantizedWeights>;
using K = LinearKind;

const PrecisionChoice kFp16 = [] {
  PrecisionChoice c;
  c.fp16 = true;
  return c;
}();

float half_round(float x) { return half_to_float(float_to_half(x)); }

QuantConfig global_config() {
  QuantConfig q;
  q.bits = 4;
  q.group_size = 128;
  q.sym = true;
  return q;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
}

// The object's JSON text with "dynamic" given as raw text, first, in the order written.
std::string with_dynamic_text(json j, const std::string& dynamic_text) {
  j.erase("dynamic");
  const std::string rest = j.dump();
  return "{\"dynamic\": " + dynamic_text + (j.empty() ? "}" : "," + rest.substr(1));
}

QString message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

class TestDynamic : public QObject {
  Q_OBJECT

  QTemporaryDir m_tmp;
  fs::path m_model;
  std::unique_ptr<HfCheckpoint> m_src;

  // The mixed plan of the round trip: every unit of q/k/v and of gate/up shares its setting.
  static std::map<LayerId, PrecisionChoice> mixed_plan() {
    std::map<LayerId, PrecisionChoice> p;
    for (K k : {K::q, K::k, K::v}) p[{0, k}] = {3, 32, false};
    p[{0, K::down}] = {8, -1, false};
    p[{1, K::o}] = {2, 64, false};
    for (K k : {K::gate, K::up}) p[{1, k}] = kFp16;
    p[{2, K::down}] = kFp16;
    for (K k : {K::q, K::k, K::v}) p[{2, k}] = {8, 64, false};
    for (K k : {K::gate, K::up}) p[{3, k}] = {2, -1, false};
    p[{3, K::o}] = {4, 128, false};  // the global setting: no rule, not read back
    return p;
  }

  Layers quantize(const GptqSettings& s) {
    Layers out;
    for (int b = 0; b < m_src->config().num_layers; ++b) {
      const BlockWeights bw = m_src->block(b);
      for (K k : kAllLinears)
        if (s.is_quantized({b, k})) out[{b, k}] = rtn_quantize(bw[k].W, s.quant_of({b, k}));
    }
    return out;
  }

  fs::path export_with(const GptqSettings& s, const Layers& layers, const std::string& name) {
    GptqExportOptions o;
    o.source_dir = m_model;
    o.output_dir = fs::path(m_tmp.path().toStdString()) / name;
    o.settings = s;
    return export_gptq(*m_src, o, [&](int b, K k) {
      return QuantizedLinear{layers.at({b, k}), {}};
    });
  }

 private slots:
  void initTestCase() {
    QVERIFY(m_tmp.isValid());
    m_model = fs::path(m_tmp.path().toStdString()) / "model";
    SyntheticModelOptions o;
    o.preset = "tiny";
    o.dtype = "f16";
    o.seed = 7;
    write_synthetic_model(m_model, o);
    m_src = std::make_unique<HfCheckpoint>(m_model);
    QCOMPARE(m_src->config().num_layers, 4);
  }

  void roundTrip() {
    GptqSettings s;
    s.quant = global_config();
    s.per_module = mixed_plan();
    const Layers layers = quantize(s);
    const fs::path dir = export_with(s, layers, "mixed");

    GptqCheckpoint r(dir);
    std::map<LayerId, PrecisionChoice> expected = s.per_module;
    expected.erase({3, K::o});  // equal to the global setting
    QCOMPARE(r.settings().per_module.size(), expected.size());
    QVERIFY(r.settings().per_module == expected);
    QCOMPARE(r.dtype(), std::string("int4 (mixed: 2-8 bits)"));
    for (int b = 0; b < 4; ++b) {
      const BlockWeights bw = r.block(b);
      const BlockWeights src = m_src->block(b);
      for (K k : kAllLinears) {
        const QString where = QString("block %1 %2").arg(b).arg(linear_name(k).data());
        if (!s.is_quantized({b, k})) {
          QVERIFY2(!r.is_quantized(b, k), qPrintable(where));
          QVERIFY2(r.checkpoint().find(linear_module(b, k) + ".weight"), qPrintable(where));
          QVERIFY2(bw[k].W == src[k].W, qPrintable(where));  // f16 source: exact
          continue;
        }
        QVERIFY2(r.is_quantized(b, k), qPrintable(where));
        const QuantizedWeights& w = layers.at({b, k});
        const QuantizedWeights got = r.quantized(b, k);
        QCOMPARE(got.scales.rows(), int64_t(group_count(w.codes.cols(), s.quant_of({b, k}).group_size)));
        QVERIFY2(got.codes == w.codes, qPrintable(where));
        QVERIFY2(got.zeros == w.zeros, qPrintable(where));
        QVERIFY2(got.g_idx == w.g_idx, qPrintable(where));
        for (int64_t n = 0; n < w.codes.rows(); ++n)
          for (int64_t kk = 0; kk < w.codes.cols(); ++kk) {
            const int32_t g = w.g_idx[kk];
            const float e = half_round(w.scales(g, n)) * float(int(w.codes(n, kk)) - w.zeros(g, n));
            if (bw[k].W(n, kk) != e) QFAIL(qPrintable(where + QString(" W[%1, %2]").arg(n).arg(kk)));
          }
      }
    }
    // The two files agree and neither writes the kind-wide keys.
    const json qc = read_json(dir / "quantize_config.json");
    QVERIFY(qc["dynamic"] == read_json(dir / "config.json")["quantization_config"]["dynamic"]);
    QVERIFY(!qc.contains("modules_not_quantized"));
    QVERIFY(!qc.contains("modules_in_block_to_quantize"));
    // Re-export from the checkpoint: same settings back.
    GptqSettings again = r.settings();
    QVERIFY(again.to_json()["dynamic"] == qc["dynamic"]);
  }

  void writtenKeys() {
    GptqSettings s;
    s.quant = global_config();
    const std::string plain = s.to_json().dump();
    s.per_module[{5, K::o}] = {4, 128, false};  // equal to the global: nothing written
    QCOMPARE(s.to_json().dump(), plain);

    s.modules_not_quantized = {"mlp.down_proj"};
    for (K k : {K::q, K::k, K::v}) s.per_module[{3, k}] = {3, 64, false};
    for (K k : {K::gate, K::up}) s.per_module[{3, k}] = {8, -1, false};
    s.per_module[{12, K::o}] = kFp16;
    s.per_module[{12, K::down}] = kFp16;  // its kind is skipped anyway: no rule
    const json j = s.to_json();
    QCOMPARE(j["dynamic"].dump(),
             std::string(R"({"+:.*\\.layers\\.3\\.mlp\\.(gate_proj|up_proj|gate_up_proj)$":)"
                         R"({"bits":8,"group_size":-1},)"
                         R"("+:.*\\.layers\\.3\\.self_attn\\.(q_proj|k_proj|v_proj|qkv_proj)$":)"
                         R"({"bits":3,"group_size":64},)"
                         R"("-:.*\\.layers\\.12\\.self_attn\\.o_proj$":{},)"
                         R"("-:.*\\.mlp\\.down_proj$":{}})"));
    QVERIFY(j["modules_not_quantized"] == json({"mlp.down_proj"}));

    // Read back (16 blocks): the same plan, whatever the order of the keys.
    const GptqSettings r = GptqSettings::from_json(j, "quantize_config.json", 16);
    std::map<LayerId, PrecisionChoice> expected = s.per_module;
    expected.erase({5, K::o});
    expected.erase({12, K::down});
    QVERIFY(r.per_module == expected);
    QVERIFY(r.modules_not_quantized == s.modules_not_quantized);

    // A member of a unit with a partly skipped unit: only the kept members, no fused name.
    GptqSettings p;
    p.quant = global_config();
    p.modules_not_quantized = {"self_attn.q_proj"};
    for (K k : {K::k, K::v}) p.per_module[{1, k}] = {8, 32, false};
    const json pd = p.to_json()["dynamic"];
    QVERIFY2(pd.contains(R"(+:.*\.layers\.1\.self_attn\.(k_proj|v_proj)$)"), pd.dump().c_str());
  }

  void writerRefuses() {
    GptqSettings s;
    s.quant = global_config();
    s.per_module[{2, K::q}] = {3, 64, false};
    s.per_module[{2, K::k}] = {4, 64, false};
    const QString msg = message_of([&] { s.to_json(); });
    QVERIFY2(msg.contains("block 2") && msg.contains("self_attn.q_proj") &&
                 msg.contains("self_attn.k_proj") && msg.contains("qkv_proj"),
             qPrintable(msg));
    auto errors = [&](const GptqSettings& g) {
      QString e;
      for (const ExportIssue& i : check_exportable(m_src->config(), g))
        if (i.severity == ExportIssue::Severity::error) e += QString::fromStdString(i.message) + "\n";
      return e;
    };
    QVERIFY2(errors(s).contains("qkv_proj"), qPrintable(errors(s)));

    GptqSettings b;
    b.quant = global_config();
    b.per_module[{1, K::down}] = {5, 64, false};
    QVERIFY2(errors(b).contains("mlp.down_proj of block 1") && errors(b).contains("got 5"),
             qPrintable(errors(b)));
    b.per_module = {{{9, K::down}, {3, 64, false}}};
    QVERIFY2(errors(b).contains("model.layers.9.mlp.down_proj") && errors(b).contains("4 blocks"),
             qPrintable(errors(b)));
    b.per_module = {{{1, K::down}, {3, 64, false}}};
    b.modules_not_quantized = {"mlp.down_proj"};
    QVERIFY2(errors(b).contains("modules_not_quantized"), qPrintable(errors(b)));
    // A 3-bit override under a Marlin-able global: the vLLM warning names the module.
    b.modules_not_quantized.clear();
    QVERIFY(errors(b).isEmpty());
    bool warned = false;
    for (const ExportIssue& i : check_exportable(m_src->config(), b))
      warned = warned || (i.kind == ExportIssue::Kind::no_marlin_settings &&
                          i.message.find("mlp.down_proj of block 1") != std::string::npos);
    QVERIFY(warned);
    // The group size of the override is checked on its module: 688 % 64 != 0.
    bool partial = false;
    for (const ExportIssue& i : check_exportable(m_src->config(), b))
      partial = partial || (i.kind == ExportIssue::Kind::partial_last_group &&
                            i.message.find("block 1 (3-bit sym g64)") != std::string::npos);
    QVERIFY(partial);
    // The writer refuses to be handed a module kept in fp16.
    GptqSettings f;
    f.quant = global_config();
    f.per_module[{0, K::o}] = kFp16;
    GptqExportOptions o;
    o.source_dir = m_model;
    o.output_dir = fs::path(m_tmp.path().toStdString()) / "refused";
    o.settings = f;
    GptqWriter w(*m_src, o);
    const QuantizedWeights q = rtn_quantize(m_src->block(0)[K::o].W, f.quant);
    const QString m2 = message_of([&] { w.add(0, K::o, q); });
    QVERIFY2(m2.contains("model.layers.0.self_attn.o_proj") && m2.contains("fp16"), qPrintable(m2));
  }

  void readerRules() {
    auto base = [] {
      return json{{"bits", 4}, {"group_size", 128}, {"sym", true}, {"quant_method", "gptq"}};
    };
    auto read = [&](const json& dyn, const std::vector<std::string>& order = {}) {
      json j = base();
      j["dynamic"] = dyn;
      return GptqSettings::from_json(j, "/x/quantize_config.json", 12, order);
    };
    auto error = [&](const json& dyn, const std::vector<std::string>& order = {}) {
      return message_of([&] { read(dyn, order); });
    };
    // Hostile values: each names the file, "dynamic" and the key.
    QString m = error({{"+:model\\.layers\\.(", json::object()}});
    QVERIFY2(m.contains("quantize_config.json") && m.contains("'dynamic'") &&
                 m.contains("+:model\\.layers\\.(") && m.contains("regular expression"),
             qPrintable(m));
    m = error({{"+:.*\\.layers\\.1\\..*", {{"bits", 5}}}});
    QVERIFY2(m.contains("quantize_config.json") && m.contains("+:.*\\.layers\\.1\\..*") &&
                 m.contains("bits with 5"), qPrintable(m));
    m = error({{"+:.*down.*", {{"group_size", "abc"}}}});
    QVERIFY2(m.contains("+:.*down.*") && m.contains("group_size") && m.contains("\"abc\""),
             qPrintable(m));
    m = error({{"+:.*down.*", {{"group_size", 0}}}});
    QVERIFY2(m.contains("group_size with 0"), qPrintable(m));
    m = error({{"+:.*down.*", {{"bits", true}}}});
    QVERIFY2(m.contains("bits with true"), qPrintable(m));
    m = error({{"+:.*down.*", {{"sym", false}}}});
    QVERIFY2(m.contains("sym") && m.contains("not supported"), qPrintable(m));
    m = error({{"-:.*down.*", 3}});
    QVERIFY2(m.contains("-:.*down.*") && m.contains("object"), qPrintable(m));
    QVERIFY(read({{"+:.*down.*", {{"sym", true}, {"desc_act", true}, {"damp_percent", 0.1}}}})
                .per_module.empty());

    // re.match: anchored at the start only; no prefix means "+:".
    auto pm = read({{"layers\\.3\\..*", {{"bits", 8}}}}).per_module;
    QVERIFY(pm.empty());
    pm = read({{"model\\.layers\\.1.*down", {{"bits", 8}}}}).per_module;  // also 10, 11
    QCOMPARE(pm.size(), size_t(3));
    QVERIFY((pm[{1, K::down}] == PrecisionChoice{8, 128, false}));
    QVERIFY((pm[{10, K::down}] == PrecisionChoice{8, 128, false}));
    QVERIFY((pm[{11, K::down}] == PrecisionChoice{8, 128, false}));

    // Overlapping "+:" rules: the first in file order wins.
    const std::string a = "+:.*\\.layers\\.2\\..*", b = "+:.*\\.mlp\\..*";
    const json two = {{a, {{"bits", 3}}}, {b, {{"bits", 8}, {"group_size", -1}}}};
    pm = read(two, {a, b}).per_module;
    QVERIFY((pm[{2, K::down}] == PrecisionChoice{3, 128, false}));
    QVERIFY((pm[{5, K::up}] == PrecisionChoice{8, -1, false}));
    pm = read(two, {b, a}).per_module;
    QVERIFY((pm[{2, K::down}] == PrecisionChoice{8, -1, false}));
    QVERIFY((pm[{2, K::q}] == PrecisionChoice{3, 128, false}));
    // Without the order the resolution is refused rather than guessed.
    m = error(two);
    QVERIFY2(m.contains("order") && m.contains(QString::fromStdString(a)), qPrintable(m));
    // An order that does not name the file's keys.
    m = error(two, {a, a});
    QVERIFY2(m.contains("other keys"), qPrintable(m));

    // "-:" after an overlapping "+:": GPTQModel excludes, vLLM overrides: refused. "-:" first:
    // both exclude.
    const std::string ex = "-:.*\\.layers\\.2\\.mlp\\.down_proj$";
    const json mixed = {{b, {{"bits", 8}}}, {ex, json::object()}};
    m = error(mixed, {b, ex});
    QVERIFY2(m.contains("model.layers.2.mlp.down_proj") && m.contains("GPTQModel") &&
                 m.contains("vLLM"), qPrintable(m));
    pm = read(mixed, {ex, b}).per_module;
    QVERIFY((pm[{2, K::down}].fp16));
    QVERIFY((pm[{3, K::down}] == PrecisionChoice{8, 128, false}));
  }

  void keyOrderFromText() {
    const std::string text =
        R"({"a": {"dynamic": {"x": 1}}, "dynamic": {"z": {}, "b": {"c": [1, {"d": 2}]}, "a": {}, "z": 3},)"
        R"( "quantization_config": {"bits": 4, "dynamic": {"q": {}, "p": {}}}})";
    QVERIFY((dynamic_key_order(text, false) == std::vector<std::string>{"z", "b", "a"}));
    QVERIFY((dynamic_key_order(text, true) == std::vector<std::string>{"q", "p"}));
    QVERIFY(dynamic_key_order("{\"dynamic\": {\"a\": ", false).empty());
    QVERIFY(dynamic_key_order("[]", false).empty());
  }

  // The checkpoint reader takes the order from the files' text: a catch-all rule written after
  // a specific one must not shadow it (nlohmann's sorted keys would put "+:.*" first).
  void checkpointUsesFileOrder() {
    GptqSettings s;
    s.quant = global_config();
    for (K k : {K::q, K::k, K::v}) s.per_module[{0, k}] = {3, 32, false};
    const fs::path dir = export_with(s, quantize(s), "ordered");
    const std::string rules =
        R"({"+:.*\\.layers\\.0\\.self_attn\\.(q|k|v)_proj$": {"bits": 3, "group_size": 32},)"
        R"( "+:.*": {"bits": 4}})";
    json qc = read_json(dir / "quantize_config.json");
    json config = read_json(dir / "config.json");
    write_text(dir / "quantize_config.json", with_dynamic_text(qc, rules));
    const json q = config["quantization_config"];
    config.erase("quantization_config");
    const std::string rest = config.dump();
    write_text(dir / "config.json",
               "{\"quantization_config\": " + with_dynamic_text(q, rules) + "," + rest.substr(1));
    GptqCheckpoint r(dir);
    QVERIFY(r.settings().per_module == s.per_module);
    QCOMPARE(r.dtype(), std::string("int4 (mixed: 3-4 bits)"));
    (void)r.block(0);

    // The other order resolves every module to the global setting: the 3-bit tensors of block
    // 0 then do not have its shapes, and the error says where the setting came from.
    const std::string reversed =
        R"({"+:.*": {"bits": 4}, "+:.*\\.layers\\.0\\.self_attn\\.(q|k|v)_proj$": {"bits": 3, "group_size": 32}})";
    write_text(dir / "quantize_config.json", with_dynamic_text(qc, reversed));
    write_text(dir / "config.json",
               "{\"quantization_config\": " + with_dynamic_text(q, reversed) + "," + rest.substr(1));
    const QString m = message_of([&] { GptqCheckpoint bad(dir); });
    QVERIFY2(m.contains("model.layers.0.self_attn.q_proj"), qPrintable(m));

    // config.json and quantize_config.json that resolve differently are refused.
    write_text(dir / "quantize_config.json", with_dynamic_text(qc, rules));
    const QString m2 = message_of([&] { GptqCheckpoint bad(dir); });
    QVERIFY2(m2.contains("dynamic"), qPrintable(m2));
  }
};

QTEST_GUILESS_MAIN(TestDynamic)
#include "tst_dynamic.moc"
