// Data tests of the GPTQ checkpoint export and reader (core/io/gptq_export, gptq_checkpoint)
// on the real stories260K model, every linear of every block quantized with RTN (and once with
// a hand-made act-order-style g_idx): the folder's files, tensor dtypes and shapes computed here
// from spec section 6 (not from our code), quantize_config.json / quantization_config keys, the
// v1 qzeros words of symmetric 4-bit, and a re-import that must give back the codes bit-exactly
// and the weights with F16-rounded scales exactly; 2/3/4/8 bits, sym/asym, per-row and g32,
// sharded output. Modules left unquantized (modules_not_quantized: mlp.down_proj at 3 bits g32,
// gate/up at 4 bits per-row): plain F16 weights, the three config keys loaders read, re-import,
// the writer's and check_exportable's handling, damaged declarations. Then atomicity (existing
// destination, cancel, a failing layer, a bad parent: nothing left behind, the source folder
// untouched) and damaged checkpoints (error names the tensor or field).
#include <sys/stat.h>
#include <unistd.h>

#include <QTemporaryDir>
#include <QTest>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/half.h"
#include "io/gptq_checkpoint.h"
#include "io/gptq_export.h"
#include "io/hf_checkpoint.h"
#include "quant/quantizer.h"
#include "quant/rtn.h"
#include "settings_words.h"
#include "test_support.h"
#include "test_matrices.h"

using namespace gptqw;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using Layers = std::map<LayerId, QuantizedWeights>;

// Act-order-like quantization by hand: input channel perm[j] belongs to group j / gs, so each
// group gathers scattered columns and g_idx is a permutation-style map, not k / gs.
QuantizedWeights quantize_permuted(const Matrix& W, const QuantConfig& c, unsigned seed) {
  const int64_t N = W.rows(), K = W.cols(), gs = c.group_size;
  const int64_t G = group_count(K, c.group_size);
  std::vector<int32_t> perm(K);
  for (int64_t k = 0; k < K; ++k) perm[k] = int32_t(k);
  std::mt19937 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  QuantizedWeights w;
  w.Q.resize(N, K);
  w.codes.resize(N, K);
  w.scales.resize(G, N);
  w.zeros.resize(G, N);
  w.g_idx.assign(K, -1);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t j0 = g * gs, len = std::min(gs, K - j0);
    Matrix X(N, len), Qg(N, len);
    Codes Cg(N, len);
    for (int64_t i = 0; i < len; ++i) X.col(i) = W.col(perm[j0 + i]);
    const Grid grid = find_grid(X, c);
    quantize_on_grid(X, grid, Qg, Cg);
    for (int64_t i = 0; i < len; ++i) {
      w.Q.col(perm[j0 + i]) = Qg.col(i);
      w.codes.col(perm[j0 + i]) = Cg.col(i);
      w.g_idx[perm[j0 + i]] = int32_t(g);
    }
    w.scales.row(g) = grid.scale.transpose();
    w.zeros.row(g) = grid.zero.transpose().cast<int32_t>();
  }
  return w;
}

Layers quantize_all(const WeightSource& src, const QuantConfig& c, bool permuted) {
  Layers out;
  for (int b = 0; b < src.config().num_layers; ++b) {
    const BlockWeights bw = src.block(b);
    for (LinearKind k : kAllLinears)
      out[{b, k}] = permuted ? quantize_permuted(bw[k].W, c, 100 + b * 7 + int(k))
                                  : rtn_quantize(bw[k].W, c);
  }
  return out;
}

QuantizedLayerFn from_map(const Layers& layers) {
  return [&layers](int b, LinearKind k) { return QuantizedLinear{layers.at({b, k}), {}}; };
}

GptqSettings settings_for(const QuantConfig& c, bool desc_act) {
  GptqSettings s;
  s.quant = c;
  s.desc_act = desc_act;
  return s;
}

GptqSettings settings_skipping(const QuantConfig& c, std::vector<std::string> skip) {
  GptqSettings s = settings_for(c, false);
  s.modules_not_quantized = std::move(skip);
  return s;
}

// A layer callback that must never be asked for a module left unquantized.
QuantizedLayerFn from_map_except(const Layers& layers, std::set<LinearKind> skipped) {
  return [&layers, skipped](int b, LinearKind k) {
    if (skipped.count(k))
      throw std::logic_error("asked for unquantized layer " + std::string(linear_name(k)));
    return QuantizedLinear{layers.at({b, k}), {}};
  };
}

// Expected packed sizes, restated from spec section 6 and the documented padding: whole 32-bit
// words at 2/4/8 bits, whole 3-word groups of 32 values at 3 bits.
int64_t expected_words(int64_t n, int bits) {
  if (bits == 3) return (n + 31) / 32 * 3;
  return (n * bits + 31) / 32;
}

float half_round(float x) { return half_to_float(float_to_half(x)); }

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

void write_json(const fs::path& p, const json& j) {
  std::ofstream out(p);
  out << j.dump(2);
}

std::string file_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every entry under dir (recursive) with its size and modification time.
std::map<std::string, std::pair<uintmax_t, int64_t>> snapshot(const fs::path& dir) {
  std::map<std::string, std::pair<uintmax_t, int64_t>> out;
  auto add = [&](const fs::path& p) {
    struct stat st{};
    ::lstat(p.c_str(), &st);
    out[fs::relative(p, dir).string()] = {uintmax_t(st.st_size),
                                          int64_t(st.st_mtim.tv_sec) * 1000000000 +
                                              st.st_mtim.tv_nsec};
  };
  add(dir);
  for (const auto& e : fs::recursive_directory_iterator(dir)) add(e.path());
  return out;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

uint32_t i32_word(const TensorView& t, int64_t i) {
  uint32_t v;
  std::memcpy(&v, t.data + i * 4, 4);
  return v;
}

// Rewrites a safetensors file through `edit`, which may change a tensor's shape and bytes or
// return false to drop it.
using Edit = std::function<bool(const std::string&, std::vector<int64_t>&, std::string&)>;
void rewrite(const fs::path& file, const Edit& edit) {
  SafetensorsWriter w;
  {
    SafetensorsFile f(file);
    for (const TensorView& t : f.tensors()) {
      std::vector<int64_t> shape = t.shape;
      std::string bytes(reinterpret_cast<const char*>(t.data), t.nbytes);
      if (!edit(t.name, shape, bytes)) continue;
      w.add(t.name, t.dtype, shape, bytes.data(), bytes.size());
    }
  }
  w.write(file);
}

// Runs f, which must throw E; returns the message.
template <class E, class F>
QString message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return QString::fromUtf8(e.what());
  } catch (const std::exception& e) {
    return QStringLiteral("WRONG EXCEPTION TYPE: ") + e.what();
  }
  return QStringLiteral("NO EXCEPTION");
}

// A WeightSource that is not an HfCheckpoint (as a llama2.c file or an in-memory model is):
// the exporter must take the float tensors through the WeightSource accessors.
class ForwardingSource : public WeightSource {
 public:
  explicit ForwardingSource(const WeightSource& s) : m_s(s) {}
  const ModelConfig& config() const override { return m_s.config(); }
  BlockWeights block(int i) const override { ++blocks_read; return m_s.block(i); }
  Matrix embedding() const override { return m_s.embedding(); }
  Vector final_norm() const override { return m_s.final_norm(); }
  Matrix lm_head() const override { return m_s.lm_head(); }
  std::vector<TensorInfo> tensors() const override { return m_s.tensors(); }
  uint64_t bytes_on_disk() const override { return m_s.bytes_on_disk(); }
  std::string format() const override { return "forwarded"; }
  std::string dtype() const override { return m_s.dtype(); }
  mutable int blocks_read = 0;

 private:
  const WeightSource& m_s;
};

}  // namespace

class TestGptqExport : public QObject {
  Q_OBJECT

  QTemporaryDir m_tmp;
  std::unique_ptr<HfCheckpoint> m_src;
  std::map<std::string, std::pair<uintmax_t, int64_t>> m_src_before;
  fs::path m_base;  // a 4-bit sym g32 export the damaged-checkpoint tests copy

  fs::path out(const std::string& name) const { return fs::path(m_tmp.path().toStdString()) / name; }

  GptqExportOptions options(const std::string& name, const GptqSettings& s) const {
    GptqExportOptions o;
    o.source_dir = test::stories_dir();
    o.output_dir = out(name);
    o.settings = s;
    return o;
  }

  // No hidden temporary (or old) folder left in the scratch folder.
  void verify_no_temp_left() {
    for (const auto& name : listing(out("")))
      QVERIFY2(name.find(".gptqw-") == std::string::npos, name.c_str());
  }

  // The folder, independently of our reader: files, tensor names, dtypes, shapes, configs.
  void check_folder(const fs::path& dir, const GptqSettings& s, const Layers& layers) {
    const ModelConfig& c = m_src->config();
    const int bits = s.quant.bits, gs = s.quant.group_size;
    QVERIFY(listing(dir) == (std::vector<std::string>{
                                "LICENSE", "config.json", "generation_config.json",
                                "model.safetensors", "quantize_config.json", "tokenizer.json",
                                "tokenizer_config.json"}));
    for (const char* f : {"LICENSE", "generation_config.json", "tokenizer.json",
                          "tokenizer_config.json"})
      QVERIFY2(file_bytes(dir / f) == file_bytes(test::stories_dir() / f), f);

    // quantize_config.json and config.json's quantization_config carry the same keys.
    const json qc = read_json(dir / "quantize_config.json");
    QCOMPARE(qc["bits"].get<int>(), bits);
    QCOMPARE(qc["group_size"].get<int>(), gs > 0 ? gs : -1);
    QCOMPARE(qc["desc_act"].get<bool>(), s.desc_act);
    QCOMPARE(qc["sym"].get<bool>(), s.quant.sym);
    QCOMPARE(qc["true_sequential"].get<bool>(), true);
    QCOMPARE(qc["damp_percent"].get<double>(), 0.01);
    QCOMPARE(qc["static_groups"].get<bool>(), false);
    QCOMPARE(qc["quant_method"].get<std::string>(), std::string("gptq"));
    QCOMPARE(qc["checkpoint_format"].get<std::string>(),
             std::string(s.quant.sym ? "gptq" : "gptq_v2"));
    QCOMPARE(qc["model_file_base_name"].get<std::string>(), std::string("model"));
    // optimum's newer key beside GPTQModel's older one.
    QCOMPARE(qc["format"].get<std::string>(), qc["checkpoint_format"].get<std::string>());
    const json cfg = read_json(dir / "config.json");
    QVERIFY(cfg["quantization_config"] == qc);
    const json src_cfg = read_json(test::stories_dir() / "config.json");
    for (const auto& [key, value] : src_cfg.items())
      if (key != "torch_dtype") QVERIFY2(cfg[key] == value, key.c_str());
    QCOMPARE(cfg["torch_dtype"].get<std::string>(), std::string("float16"));

    SafetensorsFile f(dir / "model.safetensors");
    QCOMPARE(f.metadata().at("format"), std::string("pt"));
    QCOMPARE(f.tensors().size(), size_t(2 + c.num_layers * (2 + 7 * 4)));  // tied: no lm_head
    auto expect = [&](const std::string& name, DType dtype, std::vector<int64_t> shape) {
      const TensorView* t = f.find(name);
      QVERIFY2(t, name.c_str());
      QVERIFY2(t->dtype == dtype, (name + " is " + std::string(dtype_name(t->dtype))).c_str());
      QVERIFY2(t->shape == shape, (name + " is " + shape_str(t->shape)).c_str());
    };
    expect("model.embed_tokens.weight", DType::F16, {c.vocab_size, c.hidden_size});
    expect("model.norm.weight", DType::F16, {c.hidden_size});
    QVERIFY(!f.find("lm_head.weight"));
    const int64_t hidden = c.hidden_size, inter = c.intermediate_size,
                  kv = int64_t(c.num_kv_heads) * c.head_dim;
    const std::map<std::string, std::pair<int64_t, int64_t>> shapes = {  // [N, K]
        {"self_attn.q_proj", {hidden, hidden}}, {"self_attn.k_proj", {kv, hidden}},
        {"self_attn.v_proj", {kv, hidden}},     {"self_attn.o_proj", {hidden, hidden}},
        {"mlp.gate_proj", {inter, hidden}},     {"mlp.up_proj", {inter, hidden}},
        {"mlp.down_proj", {hidden, inter}}};
    for (int b = 0; b < c.num_layers; ++b) {
      const std::string p = "model.layers." + std::to_string(b) + ".";
      expect(p + "input_layernorm.weight", DType::F16, {hidden});
      expect(p + "post_attention_layernorm.weight", DType::F16, {hidden});
      for (const auto& [module, nk] : shapes) {
        const auto [N, K] = nk;
        const int64_t G = gs > 0 ? (K + gs - 1) / gs : 1;
        expect(p + module + ".qweight", DType::I32, {expected_words(K, bits), N});
        expect(p + module + ".qzeros", DType::I32, {G, expected_words(N, bits)});
        expect(p + module + ".scales", DType::F16, {G, N});
        expect(p + module + ".g_idx", DType::I32, {K});
        QVERIFY(!f.find(p + module + ".weight"));
        QVERIFY(!f.find(p + module + ".bias"));
      }
      // Codes decoded here from the raw words at 2/4/8 bits (word k / (32/bits), field
      // k % (32/bits)), for the layer with the ragged K.
      if (bits != 3) {
        const TensorView& t = *f.find(p + "mlp.down_proj.qweight");
        const QuantizedWeights& w = layers.at({b, LinearKind::down});
        const int per = 32 / bits;
        for (int64_t n = 0; n < hidden; ++n)
          for (int64_t k = 0; k < inter; ++k) {
            const uint32_t v = (i32_word(t, (k / per) * hidden + n) >> (bits * (k % per))) &
                               ((1u << bits) - 1);
            if (v != w.codes(n, k))
              QFAIL(qPrintable(QString("code [%1, %2] of %3").arg(n).arg(k).arg(t.name.c_str())));
          }
      }
    }
  }

  // Re-import: codes, zeros and g_idx bit-exact, scales equal after the F16 cast, weights equal
  // to F16 scale * (code - zero) and close to the in-memory Q; the rest F16-rounded source.
  void check_reimport(const fs::path& dir, const GptqSettings& s, const Layers& layers) {
    GptqCheckpoint r(dir);
    QCOMPARE(r.settings().quant.bits, s.quant.bits);
    QCOMPARE(r.settings().quant.group_size, s.quant.group_size > 0 ? s.quant.group_size : -1);
    QCOMPARE(r.settings().quant.sym, s.quant.sym);
    QCOMPARE(r.settings().desc_act, s.desc_act);
    QCOMPARE(r.format(), std::string(s.quant.sym ? "gptq" : "gptq_v2"));
    QVERIFY(is_gptq_checkpoint(dir));
    const ModelConfig& c = r.config();
    for (int b = 0; b < c.num_layers; ++b) {
      const BlockWeights bw = r.block(b);
      const BlockWeights src = m_src->block(b);
      for (LinearKind k : kAllLinears) {
        const QuantizedWeights& w = layers.at({b, k});
        const QuantizedWeights got = r.quantized(b, k);
        QVERIFY(got.codes == w.codes);
        QVERIFY(got.zeros == w.zeros);
        QVERIFY(got.g_idx == w.g_idx);
        const Matrix& W = bw[k].W;
        QCOMPARE(W.rows(), w.Q.rows());
        QCOMPARE(W.cols(), w.Q.cols());
        float max_q = 0, max_diff = 0;
        for (int64_t g = 0; g < w.scales.rows(); ++g)
          for (int64_t n = 0; n < w.scales.cols(); ++n)
            if (got.scales(g, n) != half_round(w.scales(g, n)))  // exact, not QCOMPARE's fuzzy
              QFAIL(qPrintable(QString("scale [%1, %2]").arg(g).arg(n)));
        for (int64_t n = 0; n < W.rows(); ++n)
          for (int64_t kk = 0; kk < W.cols(); ++kk) {
            const int32_t g = w.g_idx[kk];
            const float expected =
                half_round(w.scales(g, n)) * float(int(w.codes(n, kk)) - w.zeros(g, n));
            if (W(n, kk) != expected)
              QFAIL(qPrintable(QString("block %1 %2 W[%3, %4] = %5, expected %6")
                                   .arg(b).arg(linear_name(k).data()).arg(n).arg(kk)
                                   .arg(W(n, kk)).arg(expected)));
            max_q = std::max(max_q, std::abs(w.Q(n, kk)));
            max_diff = std::max(max_diff, std::abs(W(n, kk) - w.Q(n, kk)));
          }
        // The only difference from Q is the F16 rounding of the scale (2^-11 relative).
        QVERIFY2(max_diff <= max_q * 1e-3f, qPrintable(QString::number(max_diff)));
      }
      QVERIFY(bw.attn_norm == src.attn_norm.unaryExpr(&half_round));
      QVERIFY(bw.mlp_norm == src.mlp_norm.unaryExpr(&half_round));
    }
    QVERIFY(r.embedding() == m_src->embedding().unaryExpr(&half_round));
    QVERIFY(r.lm_head() == r.embedding());
    QVERIFY(r.final_norm() == m_src->final_norm().unaryExpr(&half_round));
  }

 private slots:
  void initTestCase() {
    QVERIFY(m_tmp.isValid());
    QVERIFY2(fs::exists(test::stories_dir() / "config.json"), test::stories_dir().c_str());
    m_src = std::make_unique<HfCheckpoint>(test::stories_dir());
    m_src_before = snapshot(test::stories_dir());
  }

  void cleanupTestCase() {
    // Nothing written into (or changed in) the source folder, by any test.
    QVERIFY(snapshot(test::stories_dir()) == m_src_before);
  }

  void roundTrip_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<bool>("sym");
    QTest::addColumn<int>("group_size");
    QTest::addColumn<bool>("permuted");
    for (int bits : {2, 3, 4, 8})
      for (bool sym : {true, false})
        for (int gs : {-1, 32}) {
          const QString name = QString("%1bit-%2-%3").arg(bits).arg(sym ? "sym" : "asym")
                                   .arg(gs > 0 ? "g32" : "row");
          QTest::newRow(qPrintable(name)) << bits << sym << gs << false;
        }
    QTest::newRow("4bit-sym-g32-actorder") << 4 << true << 32 << true;
    QTest::newRow("3bit-asym-g32-actorder") << 3 << false << 32 << true;
    QTest::newRow("8bit-asym-g32-actorder") << 8 << false << 32 << true;
  }

  void roundTrip() {
    QFETCH(int, bits);
    QFETCH(bool, sym);
    QFETCH(int, group_size);
    QFETCH(bool, permuted);
    const QuantConfig qc = test::quant_config(bits, sym, group_size);
    const Layers layers = quantize_all(*m_src, qc, permuted);
    if (permuted) {  // the hand-made g_idx really is not k / gs
      const auto& g = layers.at({0, LinearKind::down}).g_idx;
      bool plain = true;
      for (size_t k = 0; k < g.size(); ++k) plain = plain && g[k] == int32_t(k / group_size);
      QVERIFY(!plain);
    }
    const GptqSettings s = settings_for(qc, permuted);
    const std::string name = QTest::currentDataTag();
    const fs::path dest = export_gptq(*m_src, options(name, s), from_map(layers));
    QVERIFY(dest == fs::weakly_canonical(out(name)));
    check_folder(dest, s, layers);
    if (QTest::currentTestFailed()) return;
    check_reimport(dest, s, layers);
    verify_no_temp_left();
  }

  void symmetricFourBitZerosAreSevens() {
    // spec section 6: symmetric 4-bit under v1 stores 8 - 1 in every nibble: 0x77777777, and
    // for N = 172 the last word holds 4 real nibbles and zero padding.
    const QuantConfig qc = test::quant_config(4, true, 32);
    const Layers layers = quantize_all(*m_src, qc, false);
    const fs::path dest = export_gptq(*m_src, options("sevens", settings_for(qc, false)),
                                      from_map(layers));
    m_base = dest;
    SafetensorsFile f(dest / "model.safetensors");
    int words = 0;
    for (const TensorView& t : f.tensors()) {
      if (t.name.size() < 7 || t.name.compare(t.name.size() - 7, 7, ".qzeros") != 0) continue;
      const bool ragged = t.name.find("gate_proj") != std::string::npos ||
                          t.name.find("up_proj") != std::string::npos;
      const int64_t cols = t.shape[1];
      for (int64_t g = 0; g < t.shape[0]; ++g)
        for (int64_t w = 0; w < cols; ++w, ++words) {
          const uint32_t expected = ragged && w == cols - 1 ? 0x00007777u : 0x77777777u;
          if (i32_word(t, g * cols + w) != expected)
            QFAIL(qPrintable(QString("%1 word [%2, %3] = %4").arg(t.name.c_str()).arg(g).arg(w)
                                 .arg(i32_word(t, g * cols + w), 8, 16, QChar('0'))));
        }
    }
    QVERIFY(words > 0);
  }

  void sharded() {
    // A small shard limit splits the weights as save_pretrained does, with an index.
    const QuantConfig qc = test::quant_config(4, false, 32);
    const Layers layers = quantize_all(*m_src, qc, false);
    GptqExportOptions o = options("sharded", settings_for(qc, false));
    o.max_shard_bytes = 60'000;  // the F16 embedding alone is 64 KiB: a shard of its own
    const fs::path dest = export_gptq(*m_src, o, from_map(layers));
    const json index = read_json(dest / "model.safetensors.index.json");
    QVERIFY(!fs::exists(dest / "model.safetensors"));
    std::set<std::string> files;
    for (const auto& [tensor, file] : index["weight_map"].items()) files.insert(file.get<std::string>());
    QVERIFY2(files.size() >= 3, qPrintable(QString::number(files.size())));
    const size_t n = files.size();
    uint64_t total = 0;
    size_t tensors = 0;
    for (size_t i = 1; i <= n; ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i, n);
      QVERIFY2(files.count(name), name);
      SafetensorsFile f(dest / name);
      for (const TensorView& t : f.tensors()) {
        QCOMPARE(index["weight_map"][t.name].get<std::string>(), std::string(name));
        total += t.nbytes;
        ++tensors;
      }
    }
    QCOMPARE(tensors, index["weight_map"].size());
    QCOMPARE(index["metadata"]["total_size"].get<uint64_t>(), total);
    check_reimport(dest, settings_for(qc, false), layers);
  }

  void pushWriterAndSourceDtype() {
    // The push-style writer (the sequential driver's sink) takes layers in any order; the
    // float tensors can keep the source dtype (F32 here).
    const QuantConfig qc = test::quant_config(8, true, -1);
    const Layers layers = quantize_all(*m_src, qc, false);
    GptqExportOptions o = options("push", settings_for(qc, false));
    o.keep_source_dtype = true;
    o.report = json{{"schema_version", 1}, {"note", "hello"}};
    {
      GptqWriter w(*m_src, o);
      QVERIFY(fs::is_directory(w.temp_dir()));
      QVERIFY(w.temp_dir().filename().string()[0] == '.');
      QVERIFY(w.temp_dir().parent_path() == fs::canonical(out("")));
      for (auto it = layers.rbegin(); it != layers.rend(); ++it)
        w.add(it->first.block, it->first.kind, it->second);
      QVERIFY_THROWS_EXCEPTION(Error, w.add(0, LinearKind::q, layers.at({0, LinearKind::q})));
      QVERIFY(!fs::exists(out("push")));  // nothing visible before finish()
      w.finish();
    }
    QVERIFY(read_json(out("push") / "quantization_report.json")["note"] == "hello");
    QCOMPARE(read_json(out("push") / "config.json")["torch_dtype"].get<std::string>(),
             std::string("float32"));
    SafetensorsFile f(out("push") / "model.safetensors");
    QVERIFY(f.find("model.embed_tokens.weight")->dtype == DType::F32);
    QVERIFY(f.find("model.layers.0.self_attn.q_proj.scales")->dtype == DType::F16);
    GptqCheckpoint r(out("push"));
    QVERIFY(r.embedding() == m_src->embedding());
    QVERIFY(r.final_norm() == m_src->final_norm());
    verify_no_temp_left();

    // A writer dropped before finish(), or whose finish() finds layers missing, leaves nothing.
    {
      GptqWriter w(*m_src, options("push-incomplete", settings_for(qc, false)));
      w.add(0, LinearKind::q, layers.at({0, LinearKind::q}));
      const QString msg = message_of<Error>([&] { w.finish(); });
      QVERIFY2(msg.contains("34 quantized layers were never given") &&
                   msg.contains("model.layers.0.self_attn.k_proj"),
               qPrintable(msg));
    }
    QVERIFY(!fs::exists(out("push-incomplete")));
    verify_no_temp_left();
  }

  void genericSource() {
    // Through the WeightSource accessors the file comes out byte-identical to the export that
    // read the source checkpoint directly, and each block is converted once, not per tensor.
    const QuantConfig qc = test::quant_config(4, true, 32);
    const Layers layers = quantize_all(*m_src, qc, false);
    ForwardingSource fwd(*m_src);
    export_gptq(fwd, options("generic", settings_for(qc, false)), from_map(layers));
    QCOMPARE(fwd.blocks_read, m_src->config().num_layers);
    QVERIFY(!m_base.empty());
    QVERIFY(file_bytes(out("generic") / "model.safetensors") ==
            file_bytes(m_base / "model.safetensors"));
    QVERIFY(file_bytes(out("generic") / "config.json") == file_bytes(m_base / "config.json"));
  }

  void layerChecks() {
    // Shapes that do not match the architecture, and zero 0 under v1, name the layer.
    const QuantConfig qc = test::quant_config(4, false, 32);
    Layers layers = quantize_all(*m_src, qc, false);
    GptqSettings v1 = settings_for(qc, false);
    v1.quant.sym = true;  // declared sym (hence v1) but fed asymmetric zeros, one of them 0
    for (auto& [key, w] : layers) w.zeros = w.zeros.cwiseMax(1);
    layers[{2, LinearKind::v}].zeros(1, 5) = 0;
    QString msg = message_of<Error>(
        [&] { export_gptq(*m_src, options("zero0", v1), from_map(layers)); });
    QVERIFY2(msg.contains("zero point 0") && msg.contains("model.layers.2.self_attn.v_proj") &&
                 msg.contains("gptq_v2"),
             qPrintable(msg));
    QVERIFY(!fs::exists(out("zero0")));

    layers[{1, LinearKind::up}].scales.conservativeResize(3, 172);
    msg = message_of<Error>([&] {
      export_gptq(*m_src, options("badshape", settings_for(qc, false)), from_map(layers));
    });
    QVERIFY2(msg.contains("model.layers.1.mlp.up_proj") && msg.contains("[3, 172]") &&
                 msg.contains("[2, 172]"),
             qPrintable(msg));
    QVERIFY(!fs::exists(out("badshape")));
    verify_no_temp_left();
  }

  void existingDestination() {
    const QuantConfig qc = test::quant_config(4, true, -1);
    const Layers layers = quantize_all(*m_src, qc, false);
    const fs::path dest = out("existing");
    fs::create_directory(dest);
    { std::ofstream(dest / "marker") << "old"; }
    const GptqExportOptions o = options("existing", settings_for(qc, false));
    const QString msg = message_of<IoError>([&] { export_gptq(*m_src, o, from_map(layers)); });
    QVERIFY2(msg.contains("already exists"), qPrintable(msg));
    QVERIFY(listing(dest) == std::vector<std::string>{"marker"});

    // force replaces only an empty folder or an export of this program: a folder of other
    // files is refused, saying why, and left as it was.
    GptqExportOptions forced = o;
    forced.force = true;
    QString why = message_of<IoError>([&] { export_gptq(*m_src, forced, from_map(layers)); });
    QVERIFY2(why.contains("is not replaced") && why.contains("quantize_config.json"), qPrintable(why));
    QVERIFY(listing(dest) == std::vector<std::string>{"marker"});
    verify_no_temp_left();

    // An empty folder is replaced.
    fs::remove(dest / "marker");
    export_gptq(*m_src, forced, from_map(layers));
    QVERIFY(fs::exists(dest / "model.safetensors"));
    const std::string first_config = file_bytes(dest / "quantize_config.json");

    // force on our own export, but cancelled at the last moment: the old folder stays as it was.
    int calls = 0;
    auto cancel_at_end = [&](const Progress& p) { ++calls; return p.fraction < 1.0; };
    const auto before = listing(dest);
    QVERIFY_THROWS_EXCEPTION(Cancelled, export_gptq(*m_src, forced, from_map(layers), cancel_at_end));
    QCOMPARE(calls, 36);  // 35 layers + the final check
    QVERIFY(listing(dest) == before);
    verify_no_temp_left();

    // force: our export is replaced once the new folder is complete.
    GptqExportOptions with_report = forced;
    with_report.report = {{"note", "second export"}};
    export_gptq(*m_src, with_report, from_map(layers));
    QCOMPARE(file_bytes(dest / "quantize_config.json"), first_config);
    QVERIFY(fs::exists(dest / "quantization_report.json"));
    GptqCheckpoint r(dest);
    QCOMPARE(r.settings().quant.bits, 4);
    verify_no_temp_left();

    // ...unless something else was put into it: then it is not ours to delete any more.
    { std::ofstream(dest / "notes.txt") << "mine"; }
    why = message_of<IoError>([&] { export_gptq(*m_src, forced, from_map(layers)); });
    QVERIFY2(why.contains("'notes.txt'"), qPrintable(why));
    QCOMPARE(file_bytes(dest / "notes.txt"), std::string("mine"));
    verify_no_temp_left();

    // force never replaces a file with a folder.
    { std::ofstream(out("plainfile")) << "x"; }
    GptqExportOptions onto_file = forced;
    onto_file.output_dir = out("plainfile");
    QVERIFY_THROWS_EXCEPTION(IoError, export_gptq(*m_src, onto_file, from_map(layers)));
    QCOMPARE(file_bytes(out("plainfile")), std::string("x"));
  }

  void cancelAndFailureLeaveNothing() {
    const QuantConfig qc = test::quant_config(3, false, 32);
    const Layers layers = quantize_all(*m_src, qc, false);
    const GptqExportOptions o = options("cancelled", settings_for(qc, false));

    // Progress callback says stop in block 2: Cancelled, no folder, no temporary folder.
    std::vector<Progress> seen;
    auto stop_in_block_2 = [&](const Progress& p) {
      seen.push_back(p);
      return p.block < 2;
    };
    QVERIFY_THROWS_EXCEPTION(Cancelled, export_gptq(*m_src, o, from_map(layers), stop_in_block_2));
    QVERIFY(!fs::exists(out("cancelled")));
    QCOMPARE(seen.size(), size_t(15));
    QCOMPARE(QString::fromStdString(seen.front().stage), QStringLiteral("export"));
    QCOMPARE(seen.front().n_blocks, 5);
    QCOMPARE(QString::fromStdString(seen[3].module), QStringLiteral("self_attn.o_proj"));
    QVERIFY(seen[7].fraction > seen[6].fraction);
    verify_no_temp_left();

    // The layer source fails half-way (an exception of any kind).
    auto failing = [&](int b, LinearKind k) -> QuantizedLinear {
      if (b == 3) throw std::runtime_error("quantization failed");
      return {layers.at({b, k}), {}};
    };
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, export_gptq(*m_src, o, failing));
    QVERIFY(!fs::exists(out("cancelled")));
    verify_no_temp_left();
  }

  void badDestinationParent() {
    const QuantConfig qc = test::quant_config(4, true, -1);
    const Layers layers = quantize_all(*m_src, qc, false);
    // Parent missing, parent a file.
    GptqExportOptions o = options("no/such/parent", settings_for(qc, false));
    QString msg = message_of<IoError>([&] { export_gptq(*m_src, o, from_map(layers)); });
    QVERIFY2(msg.contains("parent"), qPrintable(msg));
    { std::ofstream(out("afile")) << "x"; }
    o.output_dir = out("afile") / "model";
    QVERIFY_THROWS_EXCEPTION(IoError, export_gptq(*m_src, o, from_map(layers)));
    verify_no_temp_left();

    // Read-only parent: the temporary folder cannot be created; nothing is left.
    const fs::path ro = out("readonly");
    fs::create_directory(ro);
    ::chmod(ro.c_str(), 0555);
    o.output_dir = ro / "model";
    const bool root = ::geteuid() == 0;  // root writes anyway: permissions cannot fail for it
    if (!root) {
      msg = message_of<IoError>([&] { export_gptq(*m_src, o, from_map(layers)); });
      QVERIFY2(msg.contains("cannot export: the temporary folder"), qPrintable(msg));
      QVERIFY(listing(ro).empty());
    }
    ::chmod(ro.c_str(), 0755);
    if (root) QSKIP("running as root: a read-only folder is still writable, not tested");
  }

  void neverWritesIntoSource() {
    const QuantConfig qc = test::quant_config(4, true, -1);
    const Layers layers = quantize_all(*m_src, qc, false);
    const auto before = snapshot(test::stories_dir());
    GptqExportOptions o = options("x", settings_for(qc, false));
    o.output_dir = test::stories_dir() / "quantized";
    QString msg = message_of<ConfigError>([&] { export_gptq(*m_src, o, from_map(layers)); });
    QVERIFY2(msg.contains("inside the source model folder"), qPrintable(msg));
    o.output_dir = test::stories_dir();
    o.force = true;
    QVERIFY_THROWS_EXCEPTION(ConfigError, export_gptq(*m_src, o, from_map(layers)));
    // A destination that contains the source would delete it when replaced.
    o.output_dir = test::stories_dir().parent_path();
    msg = message_of<ConfigError>([&] { export_gptq(*m_src, o, from_map(layers)); });
    QVERIFY2(msg.contains("contains the source"), qPrintable(msg));
    QVERIFY(snapshot(test::stories_dir()) == before);
  }

  void checkExportable() {
    const ModelConfig& c = m_src->config();
    auto errors = [](const std::vector<ExportIssue>& v) {
      int n = 0;
      for (const auto& i : v) n += i.severity == ExportIssue::Severity::error;
      return n;
    };
    auto find = [](const std::vector<ExportIssue>& v, const std::string& module,
                   const std::string& text) {
      for (const auto& i : v)
        if (i.module == module && i.message.find(text) != std::string::npos) return true;
      return false;
    };
    // 4-bit sym g32: exportable; the 172-wide dimensions and Marlin's tile sizes are warned.
    auto v = check_exportable(c, settings_for(test::quant_config(4, true, 32), false));
    QCOMPARE(errors(v), 0);
    QVERIFY(find(v, "mlp.down_proj", "in_features 172 is not a multiple of 32"));
    QVERIFY(find(v, "mlp.down_proj", "not a multiple of group_size 32"));
    QVERIFY(find(v, "mlp.gate_proj", "out_features 172 is not a multiple of 32"));
    QVERIFY(find(v, "mlp.up_proj", "out_features 172"));
    QVERIFY(!find(v, "self_attn.q_proj", "multiple of 32"));
    QVERIFY(find(v, "self_attn.q_proj", "Marlin"));  // K = 64 < 128
    for (const auto& i : v) QVERIFY(!cli::describe(i).empty());
    // 3-bit asym: Marlin cannot take it at all (one model-wide warning), no error.
    v = check_exportable(c, settings_for(test::quant_config(3, false, -1), false));
    QCOMPARE(errors(v), 0);
    QVERIFY(find(v, "", "Marlin"));
    // Errors: v1 with asymmetric grids, bits the packing cannot hold, a bad group size.
    GptqSettings s = settings_for(test::quant_config(4, false, 128), false);
    s.format = ZeroFormat::v1;
    v = check_exportable(c, s);
    QCOMPARE(errors(v), 1);
    QVERIFY(find(v, "", "gptq_v2"));
    QCOMPARE(errors(check_exportable(c, settings_for(test::quant_config(5, true, -1), false))), 1);
    QCOMPARE(errors(check_exportable(c, settings_for(test::quant_config(4, true, 0), false))), 1);
    // Export refuses up front, before creating anything.
    const QString msg = message_of<ConfigError>([&] {
      export_gptq(*m_src, options("refused", s), [](int, LinearKind) -> QuantizedLinear {
        throw std::logic_error("never asked");
      });
    });
    QVERIFY2(msg.contains("refused") && msg.contains("gptq_v2"), qPrintable(msg));
    QVERIFY(!fs::exists(out("refused")));
    verify_no_temp_left();
  }

  // ---------------------------------------------------------------------------------------
  // Modules left unquantized

  void skippedModules_data() {
    QTest::addColumn<int>("bits");
    QTest::addColumn<bool>("sym");
    QTest::addColumn<int>("group_size");
    QTest::addColumn<QStringList>("skip");  // as the caller lists them (any order)
    // K = 172 at 3 bits is not a whole number of 3-word units; N = 172 at 4 bits not of words.
    QTest::newRow("3bit-asym-g32-skip-down") << 3 << false << 32 << QStringList{"mlp.down_proj"};
    QTest::newRow("4bit-sym-row-skip-gate-up")
        << 4 << true << -1 << QStringList{"mlp.up_proj", "mlp.gate_proj"};
  }

  void skippedModules() {
    QFETCH(int, bits);
    QFETCH(bool, sym);
    QFETCH(int, group_size);
    QFETCH(QStringList, skip);
    const ModelConfig& c = m_src->config();
    const QuantConfig qc = test::quant_config(bits, sym, group_size);
    std::vector<std::string> skip_names;
    std::set<LinearKind> skipped;
    for (const QString& m : skip) {
      skip_names.push_back(m.toStdString());
      for (LinearKind k : kAllLinears)
        if (linear_name(k) == m.toStdString()) skipped.insert(k);
    }
    QCOMPARE(skipped.size(), size_t(skip.size()));
    const GptqSettings s = settings_skipping(qc, skip_names);
    const Layers layers = quantize_all(*m_src, qc, false);
    const std::string name = QTest::currentDataTag();
    int progress_calls = 0;
    const fs::path dest =
        export_gptq(*m_src, options(name, s), from_map_except(layers, skipped),
                    [&](const Progress&) { ++progress_calls; return true; });
    const int nq = kNumLinears - int(skipped.size());
    QCOMPARE(progress_calls, c.num_layers * nq + 1);  // quantized layers + the final check

    // The files, read here from the safetensors header: a plain F16 weight for the skipped
    // modules (the source rounded to F16, nothing else), the packed tensors for the rest.
    SafetensorsFile f(dest / "model.safetensors");
    QCOMPARE(f.tensors().size(),
             size_t(2 + c.num_layers * (2 + nq * 4 + int(skipped.size()))));
    for (int b = 0; b < c.num_layers; ++b) {
      const BlockWeights src = m_src->block(b);
      for (LinearKind k : kAllLinears) {
        const auto [N, K] = linear_shape(c, k);
        const std::string p = "model.layers." + std::to_string(b) + "." +
                              std::string(linear_name(k));
        if (skipped.count(k)) {
          for (const char* q : {".qweight", ".qzeros", ".scales", ".g_idx"})
            QVERIFY2(!f.find(p + q), (p + q).c_str());
          const TensorView* t = f.find(p + ".weight");
          QVERIFY2(t, p.c_str());
          QVERIFY(t->dtype == DType::F16);
          QVERIFY(t->shape == (std::vector<int64_t>{N, K}));
          for (int64_t i = 0; i < N * K; ++i) {
            uint16_t h;
            std::memcpy(&h, t->data + i * 2, 2);
            if (h != float_to_half(src[k].W.data()[i]))
              QFAIL(qPrintable(QString("%1.weight value %2").arg(p.c_str()).arg(i)));
          }
        } else {
          QVERIFY2(!f.find(p + ".weight"), p.c_str());
          const TensorView* t = f.find(p + ".qweight");
          QVERIFY2(t, p.c_str());
          QVERIFY(t->shape == (std::vector<int64_t>{expected_words(K, bits), N}));
        }
      }
    }

    // The declarations, in the words each loader reads (canonical order whatever the caller's).
    std::vector<std::string> expected_skip;
    json in_block = json::array();
    for (const auto& group : std::vector<std::vector<LinearKind>>{
             {LinearKind::q, LinearKind::k, LinearKind::v}, {LinearKind::o},
             {LinearKind::gate, LinearKind::up}, {LinearKind::down}}) {
      json names = json::array();
      for (LinearKind k : group)
        if (skipped.count(k)) expected_skip.emplace_back(linear_name(k));
        else names.push_back(std::string(linear_name(k)));
      if (!names.empty()) in_block.push_back(names);
    }
    const json qcj = read_json(dest / "quantize_config.json");
    QVERIFY(qcj["modules_not_quantized"] == json(expected_skip));
    QVERIFY2(qcj["modules_in_block_to_quantize"] == in_block,
             qcj["modules_in_block_to_quantize"].dump().c_str());
    json dynamic = json::object();
    for (const std::string& m : expected_skip) {
      std::string re = "-:.*\\.";
      for (char ch : m) re += ch == '.' ? std::string("\\.") : std::string(1, ch);
      dynamic[re + "$"] = json::object();
    }
    QVERIFY2(qcj["dynamic"] == dynamic, qcj["dynamic"].dump().c_str());
    QCOMPARE(qcj["bits"].get<int>(), bits);
    QCOMPARE(qcj["checkpoint_format"].get<std::string>(), std::string(sym ? "gptq" : "gptq_v2"));
    QVERIFY(read_json(dest / "config.json")["quantization_config"] == qcj);

    // Re-import: the F16 source for the skipped layers, the quantized weights for the rest.
    GptqCheckpoint r(dest);
    QVERIFY(r.settings().modules_not_quantized == expected_skip);
    QCOMPARE(r.dtype(), "int" + std::to_string(bits));
    QCOMPARE(r.tensors().size(), f.tensors().size());
    for (int b = 0; b < c.num_layers; ++b) {
      const BlockWeights bw = r.block(b);
      const BlockWeights src = m_src->block(b);
      for (LinearKind k : kAllLinears) {
        if (skipped.count(k)) {
          QVERIFY(!r.is_quantized(b, k));
          QVERIFY(bw[k].W == src[k].W.unaryExpr(&half_round));
          const QString msg = message_of<Error>([&] { r.quantized(b, k); });
          QVERIFY2(msg.contains(QString("model.layers.%1.%2").arg(b).arg(linear_name(k).data())) &&
                       msg.contains("modules_not_quantized"),
                   qPrintable(msg));
          continue;
        }
        QVERIFY(r.is_quantized(b, k));
        const QuantizedWeights& w = layers.at({b, k});
        const QuantizedWeights got = r.quantized(b, k);
        QVERIFY(got.codes == w.codes);
        QVERIFY(got.zeros == w.zeros);
        QVERIFY(got.g_idx == w.g_idx);
        QVERIFY(bw[k].W == dequantize_as_stored(w));
      }
      QVERIFY(bw.attn_norm == src.attn_norm.unaryExpr(&half_round));
    }

    // check_exportable: the skipped modules are the ones it flagged, and flags no longer.
    auto flagged = [&](const GptqSettings& g, LinearKind k) {
      for (const ExportIssue& i : check_exportable(c, g))
        if (i.module == linear_name(k)) return true;
      return false;
    };
    for (LinearKind k : skipped) {
      QVERIFY2(flagged(settings_for(qc, false), k), linear_name(k).data());
      QVERIFY2(!flagged(s, k), linear_name(k).data());
    }
    verify_no_temp_left();
  }

  void skippedModulesWriter() {
    const QuantConfig qc = test::quant_config(3, true, 32);
    const Layers layers = quantize_all(*m_src, qc, false);
    const GptqSettings s = settings_skipping(qc, {"mlp.down_proj"});

    // Push style: adding the skipped module is an error naming it; finish() does not want it.
    GptqExportOptions o = options("skip-push", s);
    o.keep_source_dtype = true;  // the skipped weight then keeps the source's F32
    {
      GptqWriter w(*m_src, o);
      const QString msg = message_of<Error>(
          [&] { w.add(2, LinearKind::down, layers.at({2, LinearKind::down})); });
      QVERIFY2(msg.contains("model.layers.2.mlp.down_proj") &&
                   msg.contains("modules_not_quantized"),
               qPrintable(msg));
      for (const auto& [key, lw] : layers)
        if (key.kind != LinearKind::down) w.add(key.block, key.kind, lw);
      w.finish();
    }
    SafetensorsFile f(out("skip-push") / "model.safetensors");
    const TensorView* t = f.find("model.layers.4.mlp.down_proj.weight");
    QVERIFY(t && t->dtype == DType::F32);
    GptqCheckpoint r(out("skip-push"));
    QVERIFY(r.block(4)[LinearKind::down].W == m_src->block(4)[LinearKind::down].W);

    // A missing quantized layer is still reported (and counted without the skipped ones).
    {
      GptqWriter w(*m_src, options("skip-incomplete", s));
      w.add(0, LinearKind::q, layers.at({0, LinearKind::q}));
      const QString msg = message_of<Error>([&] { w.finish(); });
      QVERIFY2(msg.contains("29 quantized layers were never given"), qPrintable(msg));
    }
    QVERIFY(!fs::exists(out("skip-incomplete")));

    // Through the generic WeightSource accessors: the same bytes as from the checkpoint.
    export_gptq(*m_src, options("skip-hf", s), from_map_except(layers, {LinearKind::down}));
    ForwardingSource fwd(*m_src);
    export_gptq(fwd, options("skip-generic", s), from_map_except(layers, {LinearKind::down}));
    QVERIFY(file_bytes(out("skip-generic") / "model.safetensors") ==
            file_bytes(out("skip-hf") / "model.safetensors"));

    // A names check before anything is created: unknown module, all seven.
    GptqSettings bad = settings_skipping(qc, {"mlp.fc1"});
    QString msg = message_of<ConfigError>(
        [&] { export_gptq(*m_src, options("skip-bad", bad), from_map(layers)); });
    QVERIFY2(msg.contains("modules_not_quantized") && msg.contains("mlp.fc1") &&
                 msg.contains("mlp.down_proj"),
             qPrintable(msg));
    QVERIFY(!fs::exists(out("skip-bad")));
    verify_no_temp_left();
  }

  void skippedModulesCheckExportable() {
    const ModelConfig& c = m_src->config();
    // The issue's problem and its ways out in the command line's words.
    auto issue = [](const std::vector<ExportIssue>& v, const std::string& module,
                    const std::string& text) -> QString {
      for (const auto& i : v)
        if (i.module == module && i.message.find(text) != std::string::npos)
          return QString::fromStdString(cli::describe(i));
      return {};
    };
    auto find_kind = [](const std::vector<ExportIssue>& v, const std::string& module,
                        ExportIssue::Kind kind) -> const ExportIssue* {
      for (const auto& i : v)
        if (i.module == module && i.kind == kind) return &i;
      return nullptr;
    };
    auto errors = [](const std::vector<ExportIssue>& v) {
      std::string all;
      for (const auto& i : v)
        if (i.severity == ExportIssue::Severity::error) all += i.message + "\n";
      return QString::fromStdString(all);
    };
    // 3 bits g32, nothing skipped: down_proj's problems each name both ways out.
    auto v = check_exportable(c, settings_for(test::quant_config(3, true, 32), false));
    QString m = issue(v, "mlp.down_proj", "in_features 172 is not a multiple of 32");
    QVERIFY2(m.contains("No group size changes this") &&
                 m.contains("--skip-modules mlp.down_proj"),
             qPrintable(m));
    m = issue(v, "mlp.down_proj", "not a multiple of group_size 32");
    QVERIFY2(m.contains("--group-size -1") && m.contains("--skip-modules mlp.down_proj"),
             qPrintable(m));
    m = issue(v, "mlp.gate_proj", "out_features 172");
    QVERIFY2(m.contains("--skip-modules mlp.gate_proj"), qPrintable(m));
    // The same ways out as settings, for the window to word: no group size helps a padded
    // dimension; only one per row gives whole groups everywhere at 172 inputs.
    using Kind = ExportIssue::Kind;
    const ExportIssue* padded = find_kind(v, "mlp.down_proj", Kind::in_features_not_32);
    QVERIFY(padded && padded->fix_group_sizes.empty() && padded->fix_by_keeping_module);
    const ExportIssue* partial = find_kind(v, "mlp.down_proj", Kind::partial_last_group);
    QVERIFY(partial && partial->fix_group_sizes == std::vector<int>{-1});
    QVERIFY(partial->message.find("--") == std::string::npos);  // no command-line words
    // Group size 128 > in_features 64; with down_proj skipped 64 and 32 give whole groups.
    v = check_exportable(c, settings_skipping(test::quant_config(4, true, 128), {"mlp.down_proj"}));
    m = issue(v, "self_attn.q_proj", "smaller than group_size 128");
    QVERIFY2(m.contains("--group-size 64 or 32") && m.contains("--skip-modules self_attn.q_proj"),
             qPrintable(m));
    const ExportIssue* over = find_kind(v, "self_attn.q_proj", Kind::group_over_input);
    QVERIFY(over && over->fix_group_sizes == (std::vector<int>{64, 32}));
    for (const auto& i : v) QVERIFY2(i.module != "mlp.down_proj", cli::describe(i).c_str());
    // Names are checked; all seven is nothing to quantize.
    v = check_exportable(c, settings_skipping(test::quant_config(4, true, 32), {"down_proj"}));
    QVERIFY2(errors(v).contains("modules_not_quantized") && errors(v).contains("'down_proj'"),
             qPrintable(errors(v)));
    std::vector<std::string> all;
    for (LinearKind k : kAllLinears) all.emplace_back(linear_name(k));
    QVERIFY(errors(check_exportable(c, settings_skipping(test::quant_config(4, true, 32), all)))
                .contains("nothing would be quantized"));
    // Half of a fused pair: vLLM refuses it (a warning naming the other half).
    v = check_exportable(c, settings_skipping(test::quant_config(4, true, 32), {"mlp.gate_proj"}));
    QVERIFY(errors(v).isEmpty());
    m = issue(v, "", "fused");
    QVERIFY2(m.contains("vLLM") && m.contains("mlp.up_proj"), qPrintable(m));
    QVERIFY(issue(check_exportable(c, settings_skipping(test::quant_config(4, true, 32),
                                                        {"mlp.gate_proj", "mlp.up_proj"})),
                  "", "fused")
                .isEmpty());
  }

  void skippedModulesBadConfigs() {
    const QuantConfig qc = test::quant_config(4, true, 32);
    const Layers layers = quantize_all(*m_src, qc, false);
    const fs::path base =
        export_gptq(*m_src, options("skip-base", settings_skipping(qc, {"mlp.down_proj"})),
                    from_map_except(layers, {LinearKind::down}));
    int n = 0;
    auto copy = [&]() {
      const fs::path d = out("skipbad" + std::to_string(n++));
      fs::copy(base, d, fs::copy_options::recursive);
      return d;
    };
    auto edit_configs = [](const fs::path& d, const std::function<void(json&)>& f) {
      json qcj = read_json(d / "quantize_config.json"), cfg = read_json(d / "config.json");
      f(qcj);
      f(cfg["quantization_config"]);
      write_json(d / "quantize_config.json", qcj);
      write_json(d / "config.json", cfg);
    };
    auto open_error = [](const fs::path& d) {
      return message_of<FormatError>([&] { GptqCheckpoint r(d); });
    };
    auto skipped_of = [](const fs::path& d) { return GptqCheckpoint(d).settings().modules_not_quantized; };
    const std::vector<std::string> down = {"mlp.down_proj"};

    // Unknown module name, in either key: the file and the field are named.
    fs::path d = copy();
    edit_configs(d, [](json& j) { j["modules_not_quantized"] = {"mlp.fc1"}; });
    QString msg = open_error(d);
    QVERIFY2(msg.contains("modules_not_quantized") && msg.contains("mlp.fc1") &&
                 msg.contains("config.json"),
             qPrintable(msg));
    d = copy();
    edit_configs(d, [](json& j) {
      j.erase("modules_not_quantized");
      j["modules_in_block_to_quantize"][2].push_back("mlp.fc2");
    });
    msg = open_error(d);
    QVERIFY2(msg.contains("modules_in_block_to_quantize") && msg.contains("mlp.fc2"),
             qPrintable(msg));
    d = copy();
    edit_configs(d, [](json& j) { j["modules_not_quantized"] = "mlp.down_proj"; });
    QVERIFY2(open_error(d).contains("modules_not_quantized"), qPrintable(open_error(d)));

    // The two keys disagree.
    d = copy();
    edit_configs(d, [](json& j) { j["modules_not_quantized"] = {"mlp.up_proj"}; });
    msg = open_error(d);
    QVERIFY2(msg.contains("modules_not_quantized") && msg.contains("mlp.up_proj") &&
                 msg.contains("modules_in_block_to_quantize") && msg.contains("mlp.down_proj"),
             qPrintable(msg));
    // The two files disagree.
    d = copy();
    json qcj = read_json(d / "quantize_config.json");
    qcj.erase("modules_not_quantized");
    qcj.erase("modules_in_block_to_quantize");
    write_json(d / "quantize_config.json", qcj);
    msg = open_error(d);
    QVERIFY2(msg.contains("modules_not_quantized") && msg.contains("quantize_config.json"),
             qPrintable(msg));

    // Either key alone is enough; optimum's nested list or vLLM's flat one.
    d = copy();
    edit_configs(d, [](json& j) { j.erase("modules_in_block_to_quantize"); });
    QVERIFY(skipped_of(d) == down);
    d = copy();
    edit_configs(d, [](json& j) {
      j.erase("modules_not_quantized");
      j["modules_in_block_to_quantize"] = {"self_attn.q_proj", "self_attn.k_proj",
                                           "self_attn.v_proj", "self_attn.o_proj",
                                           "mlp.gate_proj",    "mlp.up_proj"};
    });
    QVERIFY(skipped_of(d) == down);
    // None of the keys (GPTQModel's "dynamic" only): its "-:" rule leaves down_proj
    // unquantized in every block (per_module).
    d = copy();
    edit_configs(d, [](json& j) {
      j.erase("modules_not_quantized");
      j.erase("modules_in_block_to_quantize");
    });
    {
      GptqCheckpoint r(d);
      QVERIFY(r.settings().modules_not_quantized.empty());
      QVERIFY(r.settings().per_module.at({1, LinearKind::down}).fp16);
      QVERIFY(!r.is_quantized(1, LinearKind::down));
      QVERIFY(r.block(1)[LinearKind::down].W ==
              m_src->block(1)[LinearKind::down].W.unaryExpr(&half_round));
      QVERIFY_THROWS_EXCEPTION(FormatError, r.quantized(1, LinearKind::down));
    }

    // Declared unquantized but its weight is missing; declared quantized but stored plain.
    d = copy();
    rewrite(d / "model.safetensors", [](const std::string& name, std::vector<int64_t>&,
                                        std::string&) {
      return name != "model.layers.3.mlp.down_proj.weight";
    });
    msg = open_error(d);
    QVERIFY2(msg.contains("model.layers.3.mlp.down_proj.weight") && msg.contains("missing") &&
                 msg.contains("modules_not_quantized"),
             qPrintable(msg));
    d = export_gptq(*m_src,
                    options("skipbad-plain", settings_skipping(qc, {"mlp.up_proj", "mlp.down_proj"})),
                    from_map_except(layers, {LinearKind::up, LinearKind::down}));
    edit_configs(d, [](json& j) {
      j["modules_not_quantized"] = {"mlp.up_proj"};
      j.erase("modules_in_block_to_quantize");
      // "dynamic" is read too: without its rule down_proj is declared quantized.
      j["dynamic"].erase("-:.*\\.mlp\\.down_proj$");
    });
    msg = open_error(d);
    QVERIFY2(msg.contains("model.layers.0.mlp.down_proj.qweight") && msg.contains("missing"),
             qPrintable(msg));
    verify_no_temp_left();
  }

  // Every real quantize config in ../shared/data/configs (AutoGPTQ's six- and eight-key files,
  // optimum's, GPTQModel's with "meta" and "dynamic", and config.json's quantization_config) is
  // read with the values the file states, and the keys this program does not interpret come
  // back unchanged from to_json().
  void realQuantizeConfigs() {
    const std::set<std::string> interpreted = {
        "bits", "group_size", "desc_act", "sym", "true_sequential", "damp_percent",
        "static_groups", "quant_method", "checkpoint_format", "format", "model_file_base_name",
        "lm_head", "meta", "modules_not_quantized", "modules_in_block_to_quantize", "dynamic",
        "pack_dtype", "is_marlin_format"};
    int n = 0;
    for (const auto& e : fs::directory_iterator(test::data("configs"))) {
      const std::string name = e.path().filename().string();
      if (e.path().extension() != ".json") continue;
      json j = read_json(e.path());
      if (name.find("quantize_config") == std::string::npos &&
          name.find("quantization_config") == std::string::npos) {
        if (!j.contains("quantization_config")) continue;
        j = j["quantization_config"];
      }
      GptqSettings s;
      try {
        s = GptqSettings::from_json(j, e.path());
      } catch (const std::exception& err) {
        QFAIL(err.what());
      }
      QCOMPARE(s.quant.bits, j["bits"].get<int>());
      QCOMPARE(s.quant.group_size, j.value("group_size", -1));
      QCOMPARE(s.desc_act, j.value("desc_act", false));
      QCOMPARE(s.quant.sym, j.value("sym", true));
      const std::string fmt = j.contains("checkpoint_format") ? j["checkpoint_format"].get<std::string>()
                              : j.contains("format")         ? j["format"].get<std::string>()
                                                              : "gptq";
      QCOMPARE(std::string(checkpoint_format_name(s.zero_format())), fmt);
      if (j.contains("meta") && j["meta"].contains("damp_percent") && !j.contains("damp_percent"))
        QCOMPARE(s.damp_percent, j["meta"]["damp_percent"].get<double>());
      const json back = s.to_json();
      for (const auto& [key, value] : j.items())
        if (!interpreted.count(key)) QVERIFY2(back.contains(key) && back[key] == value, (name + ": " + key).c_str());
      QVERIFY(back["format"] == back["checkpoint_format"]);
      ++n;
    }
    QCOMPARE(n, 11);
  }

  // Re-exporting a GPTQ checkpoint keeps its quantize_config keys this program does not
  // interpret (here optimum's), and rewrites the ones that describe the tensors.
  void reexportKeepsUnknownKeys() {
    QVERIFY2(!m_base.empty() && fs::exists(m_base), "symmetricFourBitZerosAreSevens runs first");
    const fs::path d = out("with-extras");
    fs::copy(m_base, d, fs::copy_options::recursive);
    const json extras = {{"dataset", "wikitext2"}, {"use_exllama", true},
                         {"exllama_config", {{"version", 1}}}, {"model_seqlen", 4096}};
    json qc = read_json(d / "quantize_config.json"), cfg = read_json(d / "config.json");
    qc.update(extras);
    cfg["quantization_config"].update(extras);
    write_json(d / "quantize_config.json", qc);
    write_json(d / "config.json", cfg);
    GptqCheckpoint src(d);
    QVERIFY(src.settings().extra == extras);
    GptqSettings s;
    s.quant = src.settings().quant;
    GptqExportOptions o;
    o.source_dir = d;
    o.output_dir = out("reexported");
    o.settings = s;
    const fs::path dest = export_gptq(src, o, [&](int b, LinearKind k) {
      return QuantizedLinear{src.quantized(b, k), std::nullopt};
    });
    const json back = read_json(dest / "quantize_config.json");
    for (const auto& [key, value] : extras.items()) QVERIFY2(back[key] == value, key.c_str());
    QCOMPARE(back["meta"]["quantizer"][0].get<std::string>().rfind("gptq_workbench:", 0), size_t(0));
    QVERIFY(read_json(dest / "config.json")["quantization_config"] == back);
  }

  void notGptq() {
    QVERIFY(!is_gptq_checkpoint(test::stories_dir()));
    const QString msg = message_of<FormatError>([] { GptqCheckpoint r(test::stories_dir()); });
    QVERIFY2(msg.contains("not a GPTQ checkpoint"), qPrintable(msg));
  }

  void badCheckpoints() {
    QVERIFY2(!m_base.empty() && fs::exists(m_base), "symmetricFourBitZerosAreSevens runs first");
    int n = 0;
    auto copy = [&]() {
      const fs::path d = out("bad" + std::to_string(n++));
      fs::copy(m_base, d, fs::copy_options::recursive);
      return d;
    };
    auto edit_configs = [](const fs::path& d, const std::function<void(json&)>& f) {
      json qc = read_json(d / "quantize_config.json"), cfg = read_json(d / "config.json");
      f(qc);
      f(cfg["quantization_config"]);
      write_json(d / "quantize_config.json", qc);
      write_json(d / "config.json", cfg);
    };
    auto open_error = [](const fs::path& d) {
      return message_of<FormatError>([&] { GptqCheckpoint r(d); });
    };

    // Wrong qweight shape: one row short.
    fs::path d = copy();
    rewrite(d / "model.safetensors", [](const std::string& name, std::vector<int64_t>& shape,
                                        std::string& bytes) {
      if (name == "model.layers.2.mlp.down_proj.qweight") {
        shape[0] -= 1;
        bytes.resize(bytes.size() - size_t(shape[1]) * 4);
      }
      return true;
    });
    QString msg = open_error(d);
    QVERIFY2(msg.contains("model.layers.2.mlp.down_proj.qweight") && msg.contains("[22, 64]") &&
                 msg.contains("[21, 64]") && msg.contains("model.safetensors"),
             qPrintable(msg));

    // Unknown checkpoint_format.
    d = copy();
    edit_configs(d, [](json& j) { j["checkpoint_format"] = "gptq_v9"; });
    msg = open_error(d);
    QVERIFY2(msg.contains("checkpoint_format") && msg.contains("gptq_v9"), qPrintable(msg));

    // 5 bits.
    d = copy();
    edit_configs(d, [](json& j) { j["bits"] = 5; });
    msg = open_error(d);
    QVERIFY2(msg.contains("'bits'") || msg.contains(".bits'"), qPrintable(msg));
    QVERIFY2(msg.contains("is 5") && msg.contains("config.json"), qPrintable(msg));

    // Not GPTQ at all.
    d = copy();
    edit_configs(d, [](json& j) { j["quant_method"] = "awq"; });
    msg = open_error(d);
    QVERIFY2(msg.contains("quant_method") && msg.contains("awq"), qPrintable(msg));

    // The two files disagree: one was edited, the other not.
    d = copy();
    json qc = read_json(d / "quantize_config.json");
    qc["bits"] = 8;
    write_json(d / "quantize_config.json", qc);
    msg = open_error(d);
    QVERIFY2(msg.contains("quantize_config.json") && msg.contains("bits is 4") &&
                 msg.contains("is 8"),
             qPrintable(msg));

    // quantize_config.json alone is enough (older AutoGPTQ folders have no
    // quantization_config in config.json).
    d = copy();
    json cfg = read_json(d / "config.json");
    cfg.erase("quantization_config");
    write_json(d / "config.json", cfg);
    QVERIFY(is_gptq_checkpoint(d));
    QCOMPARE(GptqCheckpoint(d).settings().quant.bits, 4);

    // Missing g_idx, qzeros, scales.
    for (const std::string& victim : {std::string("model.layers.1.self_attn.k_proj.g_idx"),
                                      std::string("model.layers.4.mlp.gate_proj.qzeros"),
                                      std::string("model.layers.0.self_attn.v_proj.scales")}) {
      d = copy();
      rewrite(d / "model.safetensors",
              [&](const std::string& name, std::vector<int64_t>&, std::string&) {
                return name != victim;
              });
      msg = open_error(d);
      QVERIFY2(msg.contains(QString::fromStdString(victim)) && msg.contains("missing"),
               qPrintable(msg));
    }

    // g_idx entry outside the groups: found when the block is read, named with its value.
    d = copy();
    rewrite(d / "model.safetensors", [](const std::string& name, std::vector<int64_t>&,
                                        std::string& bytes) {
      if (name == "model.layers.3.self_attn.q_proj.g_idx") {
        const int32_t bad = 99;
        std::memcpy(bytes.data() + 5 * 4, &bad, 4);
      }
      return true;
    });
    GptqCheckpoint r(d);
    r.block(2);
    msg = message_of<FormatError>([&] { r.block(3); });
    QVERIFY2(msg.contains("model.layers.3.self_attn.q_proj.g_idx") && msg.contains("entry 5") &&
                 msg.contains("99"),
             qPrintable(msg));
  }
};

QTEST_GUILESS_MAIN(TestGptqExport)
#include "tst_gptq_export.moc"
