// Unit tests of core/io/safetensors: writer -> reader round trips for every dtype, the exact
// bytes the writer produces against a file laid out by hand, reading a hand-built file, sharded
// checkpoints, fp32 conversion against hand-computed values, and every kind of corrupt file the
// reader must refuse with a message naming the file and the tensor. Files are built as raw
// bytes here so that the reader is never only checked against our own writer.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <QTest>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include "common/error.h"
#include "io/safetensors.h"
#include "test_support.h"

using namespace gptqw;
namespace fs = std::filesystem;

namespace {

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

// A safetensors image: length prefix, header text as given (not re-serialised), data.
std::string st_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

template <class T>
std::string raw(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof(T));
  return s;
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string bytes_of(const TensorView& t) {
  return std::string(reinterpret_cast<const char*>(t.data), t.nbytes);
}

// Empty when f throws E with a message holding every needle; else what went wrong.
template <class E, class F>
std::string check_throws(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
  } catch (const E& e) {
    std::string what = e.what();
    for (const auto& n : needles)
      if (what.find(n) == std::string::npos) return "message lacks \"" + n + "\": " + what;
    return {};
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception thrown";
}

#define EXPECT_THROW_MSG(E, expr, ...)                                      \
  do {                                                                      \
    std::string problem_ = check_throws<E>([&] { expr; }, {__VA_ARGS__}); \
    QVERIFY2(problem_.empty(), problem_.c_str());                           \
  } while (0)

struct TempDir {
  QTemporaryDir dir;
  fs::path path() const { return fs::path(dir.path().toStdString()); }
};

// A small valid two-tensor file used by several tests.
std::string tiny_file(const std::string& a = "a", const std::string& b = "b") {
  std::string header = "{\"" + a + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"" +
                       b + "\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[8,10]}}";
  return st_bytes(header, raw<float>({1.5f, -2.0f}) + raw<int8_t>({7, -7}));
}

}  // namespace

class TestSafetensors : public QObject {
  Q_OBJECT
 private slots:
  void dtypeTable() {
    const char* names[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                           "BF16", "I32", "U32", "F32",     "F64",     "I64", "U64"};
    const size_t sizes[] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};
    for (int i = 0; i < 15; ++i) {
      auto t = parse_dtype(names[i]);
      QVERIFY2(t.has_value(), names[i]);
      QCOMPARE(static_cast<int>(*t), i);  // enum order is the Rust enum's (writer relies on it)
      QCOMPARE(dtype_name(*t), std::string_view(names[i]));
      QCOMPARE(dtype_size(*t), sizes[i]);
    }
    QVERIFY(!parse_dtype("f32").has_value());
    QVERIFY(!parse_dtype("F128").has_value());
    QVERIFY(!parse_dtype("").has_value());
  }

  // Every dtype the writer takes, plus a scalar and zero-size tensors, survive write -> read
  // byte for byte, and every tensor lands aligned to its element size.
  void roundTripAllDtypes() {
    TempDir tmp;
    SafetensorsWriter w;
    std::map<std::string, std::pair<DType, std::string>> expected;
    for (int i = 0; i < 15; ++i) {
      DType t = static_cast<DType>(i);
      std::string name = "t." + std::string(dtype_name(t));
      std::string bytes(6 * dtype_size(t), '\0');
      for (size_t k = 0; k < bytes.size(); ++k) bytes[k] = static_cast<char>(k * 37 + i);
      w.add(name, t, {2, 3}, bytes.data(), bytes.size());
      expected[name] = {t, bytes};
    }
    float scalar = 3.25f;
    w.add_f32("scalar", {}, &scalar);
    w.add_f32("empty.f32", {0, 4}, nullptr);
    w.add("empty.bf16", DType::BF16, {0}, nullptr, 0);
    w.add("odd.i8", DType::I8, {3}, "\x01\x02\x03", 3);  // odd size: must not misalign others
    QCOMPARE(w.size_bytes(), size_t(6 * (5 + 4 * 2 + 3 * 4 + 3 * 8) + 4 + 3));
    w.set_metadata("format", "pt");
    const fs::path file = tmp.path() / "all.safetensors";
    w.write(file);

    SafetensorsFile f(file);
    QCOMPARE(f.tensors().size(), size_t(19));
    QCOMPARE(f.file_size(), size_t(fs::file_size(file)));
    for (const auto& [name, e] : expected) {
      const TensorView* t = f.find(name);
      QVERIFY2(t, name.c_str());
      QCOMPARE(t->dtype, e.first);
      QCOMPARE(t->shape, (std::vector<int64_t>{2, 3}));
      QCOMPARE(t->numel(), int64_t(6));
      QCOMPARE(bytes_of(*t), e.second);
      QCOMPARE(t->file, file);
    }
    for (const TensorView& t : f.tensors())
      QVERIFY2(reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) == 0, t.name.c_str());
    const TensorView* s = f.find("scalar");
    QVERIFY(s);
    QVERIFY(s->shape.empty());
    QCOMPARE(s->numel(), int64_t(1));
    QCOMPARE(to_float(*s), std::vector<float>{3.25f});
    const TensorView* e = f.find("empty.f32");
    QVERIFY(e);
    QCOMPARE(e->shape, (std::vector<int64_t>{0, 4}));
    QCOMPARE(e->nbytes, size_t(0));
    QCOMPARE(e->numel(), int64_t(0));
    QVERIFY(to_float(*e).empty());
    QCOMPARE(f.find("empty.bf16")->shape, std::vector<int64_t>{0});
    QCOMPARE(bytes_of(*f.find("odd.i8")), std::string("\x01\x02\x03"));
    QVERIFY(!f.find("missing"));
    QCOMPARE(f.metadata().at("format"), std::string("pt"));
    // tensors() is in data-offset order.
    for (size_t i = 1; i < f.tensors().size(); ++i)
      QVERIFY(f.tensors()[i - 1].data <= f.tensors()[i].data);
  }

  // The exact bytes of a writer's file, laid out by hand: 8-byte LE length (200 = 0xc8), the
  // JSON in the reference implementation's field order, 7 spaces so that 8 + 200 is a multiple
  // of 8, then data widest dtype first and by name (b, c are F32; a is I8).
  void writerByteLayout() {
    TempDir tmp;
    SafetensorsWriter w;
    w.add("a", DType::I8, {3}, "\x01\x02\xfd", 3);
    const float b[] = {1.0f, -2.5f}, c[] = {0.5f};
    w.add_f32("c", {1}, c);
    w.add_f32("b", {2}, b);
    w.set_metadata("format", "pt");
    const fs::path file = tmp.path() / "layout.safetensors";
    w.write(file);

    std::string expected("\xc8\0\0\0\0\0\0\0", 8);
    expected +=
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
        "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
        "\"a\":{\"dtype\":\"I8\",\"shape\":[3],\"data_offsets\":[12,15]}}"
        "       ";
    expected += std::string("\x00\x00\x80\x3f\x00\x00\x20\xc0", 8);  // 1.0f, -2.5f
    expected += std::string("\x00\x00\x00\x3f", 4);                  // 0.5f
    expected += std::string("\x01\x02\xfd", 3);                      // 1, 2, -3
    const std::string got = read_file(file);
    QCOMPARE(got.size(), size_t(223));
    QCOMPARE(got, expected);

    // Alignment for every header length mod 8: names of length 1..16 shift the JSON length.
    for (int len = 1; len <= 16; ++len) {
      SafetensorsWriter w2;
      float x = 1.0f;
      w2.add_f32(std::string(len, 'n'), {1}, &x);
      const fs::path f2 = tmp.path() / ("align" + std::to_string(len) + ".safetensors");
      w2.write(f2);
      std::string bytes = read_file(f2);
      uint64_t n = 0;
      std::memcpy(&n, bytes.data(), 8);
      QCOMPARE((8 + n) % 8, uint64_t(0));
      QCOMPARE(bytes.size(), size_t(8 + n + 4));
      QVERIFY(n == 0 || bytes[8 + n - 1] == '}' || bytes[8 + n - 1] == ' ');
    }
  }

  // A file laid out by hand (Python-style, offsets not in name order, unpadded header) is read
  // correctly, and the views point into the caller's bytes (zero copy).
  void readHandBuiltFile() {
    const std::string header =
        "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\xc3\xa9\"},"
        "\"z.weight\":{\"dtype\":\"F32\",\"shape\":[2, 2],\"data_offsets\":[0,16]},"
        "\"a.half\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"
        "\"m.bf\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[22,24]}}";
    const std::string data = raw<float>({1.0f, 2.0f, -3.0f, 0.25f}) +
                             raw<uint16_t>({0x3c00, 0xc000, 0x3555}) + raw<uint16_t>({0x4049});
    const std::string image = st_bytes(header, data);
    const auto* base = reinterpret_cast<const std::byte*>(image.data());
    SafetensorsHeader h = parse_safetensors(base, image.size(), "mem.safetensors");
    QCOMPARE(h.tensors.size(), size_t(3));
    QCOMPARE(h.tensors[0].name, std::string("z.weight"));  // data-offset order
    QCOMPARE(h.tensors[1].name, std::string("a.half"));
    QCOMPARE(h.tensors[2].name, std::string("m.bf"));
    QVERIFY(h.tensors[0].data == base + 8 + header.size());  // zero copy
    QVERIFY(h.tensors[1].data == base + 8 + header.size() + 16);
    QCOMPARE(to_float(h.tensors[0]), (std::vector<float>{1.0f, 2.0f, -3.0f, 0.25f}));
    QCOMPARE(to_float(h.tensors[1]), (std::vector<float>{1.0f, -2.0f, 0.333251953125f}));
    QCOMPARE(to_float(h.tensors[2]), std::vector<float>{3.140625f});
    QCOMPARE(h.metadata.size(), size_t(2));
    QCOMPARE(h.metadata.at("note"), std::string("caf\xc3\xa9"));

    // The same bytes through a file.
    TempDir tmp;
    write_file(tmp.path() / "hand.safetensors", image);
    SafetensorsFile f(tmp.path() / "hand.safetensors");
    QCOMPARE(f.tensors().size(), size_t(3));
    QCOMPARE(bytes_of(*f.find("a.half")), data.substr(16, 6));
    QCOMPARE(f.metadata().at("format"), std::string("pt"));
  }

  // Valid edge cases the reader must accept.
  void acceptedEdgeCases() {
    auto parse = [](const std::string& image) {
      return parse_safetensors(reinterpret_cast<const std::byte*>(image.data()), image.size(),
                               "edge.safetensors");
    };
    QVERIFY(parse(st_bytes("{}", "")).tensors.empty());
    QVERIFY(parse(st_bytes("{}      ", "")).tensors.empty());  // padded header
    QVERIFY(parse(st_bytes("{\"__metadata__\":null}", "")).metadata.empty());
    // An empty tensor whose (equal) offsets fall inside another tensor owns no bytes.
    auto h = parse(st_bytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"e\":{\"dtype\":\"F32\",\"shape\":[4,0],\"data_offsets\":[4,4]}}",
                            std::string(8, '\0')));
    QCOMPARE(h.tensors.size(), size_t(2));
    // Unknown extra fields in an entry are ignored, as serde does.
    h = parse(st_bytes("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}",
                       "\x05"));
    QCOMPARE(h.tensors.size(), size_t(1));
  }

  void metadataRoundTrip() {
    TempDir tmp;
    SafetensorsWriter w;
    w.set_metadata("format", "pt");
    w.set_metadata("quant", "{\"bits\": 4, \"group\": 128}");  // JSON inside a string
    w.set_metadata("unicode", "\xe2\x82\xac \"quoted\" \\ \n");
    w.set_metadata("format", "pt2");  // later value wins
    float x = 1.0f;
    w.add_f32("x", {1}, &x);
    w.write(tmp.path() / "m.safetensors");
    SafetensorsFile f(tmp.path() / "m.safetensors");
    QCOMPARE(f.metadata().size(), size_t(3));
    QCOMPARE(f.metadata().at("format"), std::string("pt2"));
    QCOMPARE(f.metadata().at("quant"), std::string("{\"bits\": 4, \"group\": 128}"));
    QCOMPARE(f.metadata().at("unicode"), std::string("\xe2\x82\xac \"quoted\" \\ \n"));

    // Without metadata no __metadata__ key is written at all.
    SafetensorsWriter w2;
    w2.add_f32("x", {1}, &x);
    w2.write(tmp.path() / "n.safetensors");
    QVERIFY(read_file(tmp.path() / "n.safetensors").find("__metadata__") == std::string::npos);
    QVERIFY(SafetensorsFile(tmp.path() / "n.safetensors").metadata().empty());
  }

  // add_f16 rounds to nearest even, bit-exact with PyTorch's cast.
  void writerF16Cast() {
    TempDir tmp;
    SafetensorsWriter w;
    const float v[] = {1.0f, 0.1f, 1.0f + std::ldexp(1.0f, -11), 1.0f + 3 * std::ldexp(1.0f, -11),
                       65520.0f, -2.0f};
    w.add_f16("h", {2, 3}, v);
    QCOMPARE(w.size_bytes(), size_t(12));
    w.write(tmp.path() / "h.safetensors");
    SafetensorsFile f(tmp.path() / "h.safetensors");
    const TensorView* t = f.find("h");
    QVERIFY(t);
    QCOMPARE(t->dtype, DType::F16);
    QCOMPARE(bytes_of(*t), raw<uint16_t>({0x3c00, 0x2e66, 0x3c00, 0x3c02, 0x7c00, 0xc000}));
  }

  // Values worked out by hand from the IEEE formats; data deliberately misaligned.
  void toFloatConversions() {
    auto view = [](DType dt, std::vector<int64_t> shape, const std::string& bytes,
                   std::string& storage) {
      storage = "x" + bytes;  // offset 1: unaligned for every dtype wider than a byte
      TensorView t;
      t.name = "conv." + std::string(dtype_name(dt));
      t.dtype = dt;
      t.shape = std::move(shape);
      t.data = reinterpret_cast<const std::byte*>(storage.data() + 1);
      t.nbytes = bytes.size();
      t.file = "conv.safetensors";
      return t;
    };
    std::string s;
    // F16: 0x3c00 = 1, 0xc000 = -2, 0x3555 = 1 + 341/1024 scaled by 2^-2, 0x7bff = largest,
    // 0x0001 = smallest subnormal 2^-24, 0x8000 = -0.
    auto f16 = to_float(view(DType::F16, {2, 3},
                             raw<uint16_t>({0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x8000}), s));
    QCOMPARE(f16, (std::vector<float>{1.0f, -2.0f, 0.333251953125f, 65504.0f,
                                      std::ldexp(1.0f, -24), -0.0f}));
    // Values that are not finite in fp32 are refused, naming the tensor and the element: -Inf
    // and NaN in F16, a double beyond fp32's range.
    EXPECT_THROW_MSG(FormatError, to_float(view(DType::F16, {3}, raw<uint16_t>({0x3c00, 0x3c00, 0xfc00}), s)),
                     "conv.safetensors", "conv.F16", "-inf at element 2 of 3");
    EXPECT_THROW_MSG(FormatError, to_float(view(DType::F16, {2}, raw<uint16_t>({0x7e00, 0}), s)),
                     "conv.F16", "NaN at element 0");
    EXPECT_THROW_MSG(FormatError, to_float(view(DType::F64, {2}, raw<double>({0.5, -1e300}), s)),
                     "conv.F64", "element 1", "fp32 range");
    // BF16 is the top half of an fp32: 0x3f80 = 1, 0x4049 = 3.140625,
    // 0xc2f7 = -(1 + 119/128) * 2^6 = -123.5, 0x0000 = 0.
    auto bf = to_float(view(DType::BF16, {4}, raw<uint16_t>({0x3f80, 0x4049, 0xc2f7, 0x0000}), s));
    QCOMPARE(bf, (std::vector<float>{1.0f, 3.140625f, -123.5f, 0.0f}));
    QCOMPARE(to_float(view(DType::F64, {2}, raw<double>({0.5, -1e30}), s)),
             (std::vector<float>{0.5f, -1e30f}));
    QCOMPARE(to_float(view(DType::F32, {2}, raw<float>({0.1f, -7.0f}), s)),
             (std::vector<float>{0.1f, -7.0f}));
    QCOMPARE(to_float(view(DType::I8, {2}, raw<int8_t>({-128, 127}), s)),
             (std::vector<float>{-128.0f, 127.0f}));
    QCOMPARE(to_float(view(DType::U8, {2}, raw<uint8_t>({0, 255}), s)),
             (std::vector<float>{0.0f, 255.0f}));
    QCOMPARE(to_float(view(DType::I16, {2}, raw<int16_t>({-32768, 5}), s)),
             (std::vector<float>{-32768.0f, 5.0f}));
    QCOMPARE(to_float(view(DType::U16, {1}, raw<uint16_t>({65535}), s)),
             std::vector<float>{65535.0f});
    QCOMPARE(to_float(view(DType::I32, {2}, raw<int32_t>({INT32_MIN, -3}), s)),
             (std::vector<float>{-2147483648.0f, -3.0f}));
    QCOMPARE(to_float(view(DType::U32, {1}, raw<uint32_t>({4000000000u}), s)),
             std::vector<float>{4.0e9f});
    QCOMPARE(to_float(view(DType::I64, {2}, raw<int64_t>({-(int64_t(1) << 40), 9}), s)),
             (std::vector<float>{-std::ldexp(1.0f, 40), 9.0f}));
    QCOMPARE(to_float(view(DType::U64, {1}, raw<uint64_t>({uint64_t(1) << 63}), s)),
             std::vector<float>{std::ldexp(1.0f, 63)});

    // The pointer overload writes exactly numel floats.
    float out[3] = {0, 0, 42.0f};
    to_float(view(DType::BF16, {2}, raw<uint16_t>({0x3f80, 0xbf80}), s), out);
    QCOMPARE(out[0], 1.0f);
    QCOMPARE(out[1], -1.0f);
    QCOMPARE(out[2], 42.0f);

    for (DType dt : {DType::BOOL, DType::F8_E4M3, DType::F8_E5M2}) {
      std::string name = "conv." + std::string(dtype_name(dt));
      EXPECT_THROW_MSG(FormatError, to_float(view(dt, {2}, std::string("\x01\x00", 2), s)), name,
                       std::string(dtype_name(dt)), "conv.safetensors");
      EXPECT_THROW_MSG(FormatError, to_float(view(dt, {0}, "", s)), name);  // even when empty
    }
    // A hand-made view whose byte count disagrees with its shape.
    EXPECT_THROW_MSG(FormatError, to_float(view(DType::F32, {3}, raw<float>({1, 2}), s)),
                     "conv.F32", "[3]");
  }

  // Every corruption named in the format spec, each in its own file so that the message can be
  // checked for the file name as well as the tensor.
  void corruptFiles() {
    TempDir tmp;
    struct Case {
      const char* file;
      std::string bytes;
      std::vector<std::string> needles;
    };
    const std::string f32x4 = raw<float>({1, 2, 3, 4});
    auto one = [](const std::string& entry) { return "{\"w.bad\":" + entry + "}"; };
    const std::vector<Case> cases = {
        {"short.safetensors", std::string("\x02\0\0\0\0", 5), {"5 bytes", "too short"}},
        {"empty.safetensors", "", {"0 bytes"}},
        {"len_past_end.safetensors", le64(1000) + "{}", {"1000", "past the end"}},
        {"len_huge.safetensors", le64(uint64_t(1) << 40) + "{}", {"1099511627776", "100 MB"}},
        {"len_max.safetensors", le64(UINT64_MAX) + "{}", {"100 MB"}},
        {"bad_json.safetensors", st_bytes("{\"w\": {", ""), {"not valid JSON"}},
        {"not_utf8.safetensors", st_bytes("{\"w\xff\":{}}", ""), {"not valid JSON"}},
        {"not_object.safetensors", st_bytes("[1, 2]", ""), {"header is array"}},
        // Found by fuzzing: quoting this value in an error message overflowed the stack.
        {"deep.safetensors",
         st_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":)" + std::string(300000, '[') +
                      std::string(300000, ']') + "}}",
                  ""),
         {"nested more than 64 levels"}},
        {"dup_key.safetensors",
         st_bytes("{\"w.dup\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                  "\"w.dup\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                  "ab"),
         {"'w.dup'", "twice"}},
        {"entry_not_object.safetensors", st_bytes(one("5"), ""), {"'w.bad'", "number"}},
        {"no_dtype.safetensors", st_bytes(one("{\"shape\":[4],\"data_offsets\":[0,16]}"), f32x4),
         {"'w.bad'", "'dtype'"}},
        {"no_shape.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"data_offsets\":[0,16]}"), f32x4), {"'w.bad'", "'shape'"}},
        {"no_offsets.safetensors", st_bytes(one("{\"dtype\":\"F32\",\"shape\":[4]}"), f32x4),
         {"'w.bad'", "'data_offsets'"}},
        {"dtype_type.safetensors",
         st_bytes(one("{\"dtype\":32,\"shape\":[4],\"data_offsets\":[0,16]}"), f32x4),
         {"'w.bad'", "'dtype'", "string"}},
        {"shape_type.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":\"4\",\"data_offsets\":[0,16]}"), f32x4),
         {"'w.bad'", "'shape'", "array"}},
        {"shape_float.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[4.5],\"data_offsets\":[0,16]}"), f32x4),
         {"'w.bad'", "[4.5]"}},
        {"offsets_type.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":\"0,16\"}"), f32x4),
         {"'w.bad'", "data_offsets"}},
        {"offsets_one.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16]}"), f32x4),
         {"'w.bad'", "[16]"}},
        {"offsets_negative.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-4,12]}"), f32x4),
         {"'w.bad'", "[-4,12]"}},
        {"unknown_dtype.safetensors",
         st_bytes(one("{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}"), f32x4),
         {"'w.bad'", "unknown dtype 'F128'"}},
        {"negative_dim.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}"), f32x4),
         {"'w.bad'", "[-1,4]", "negative"}},
        {"numel_overflow.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
                      "\"data_offsets\":[0,16]}"),
                  f32x4),
         {"'w.bad'", "[4294967296, 4294967296, 4]", "overflows"}},
        {"bytes_overflow.safetensors",
         st_bytes(one("{\"dtype\":\"F64\",\"shape\":[2305843009213693952],"
                      "\"data_offsets\":[0,16]}"),
                  f32x4),
         {"'w.bad'", "[2305843009213693952] x F64", "overflows"}},
        {"dim_past_int64.safetensors",
         st_bytes(one("{\"dtype\":\"U8\",\"shape\":[18446744073709551615],"
                      "\"data_offsets\":[0,16]}"),
                  f32x4),
         {"'w.bad'", "18446744073709551615"}},
        {"offsets_backwards.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}"), f32x4),
         {"'w.bad'", "[16, 0]", "backwards"}},
        {"offsets_past_end.safetensors",
         st_bytes(one("{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}"), f32x4),
         {"'w.bad'", "[0, 32]", "16 bytes"}},
        {"size_mismatch.safetensors",
         st_bytes("{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[64],"
                  "\"data_offsets\":[0,128]}}",
                  std::string(128, '\0')),
         {"size_mismatch.safetensors: tensor 'model.norm.weight': shape [64] x F32 needs 256 "
          "bytes, data_offsets give 128"}},
        {"overlap.safetensors",
         st_bytes("{\"first\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                  "\"second\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                  f32x4),
         {"'second'", "'first'", "[8, 16]", "[0, 16]", "overlap"}},
        {"overlap_inside.safetensors",
         st_bytes("{\"outer\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
                  "\"mid\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},"
                  "\"inner\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}",
                  f32x4),
         {"'outer'", "overlap"}},
        {"metadata_type.safetensors", st_bytes("{\"__metadata__\":\"pt\"}", ""),
         {"__metadata__", "string"}},
        {"metadata_value.safetensors", st_bytes("{\"__metadata__\":{\"format\":1}}", ""),
         {"__metadata__", "'format'", "number"}},
    };
    for (const Case& c : cases) {
      const fs::path p = tmp.path() / c.file;
      write_file(p, c.bytes);
      std::vector<std::string> needles = c.needles;
      needles.push_back(p.string());
      std::string problem = check_throws<FormatError>([&] { SafetensorsFile f(p); }, needles);
      QVERIFY2(problem.empty(), (std::string(c.file) + ": " + problem).c_str());
      // Checkpoint::open goes through the same parser.
      problem = check_throws<FormatError>([&] { Checkpoint::open(p); }, {p.string()});
      QVERIFY2(problem.empty(), (std::string(c.file) + ": " + problem).c_str());
    }
  }

  // Arbitrary damage must give a FormatError (or parse), never a crash or a stray exception
  // type: every truncation of a valid file, then random byte flips.
  void damagedBytesNeverCrash() {
    const std::string good = tiny_file();
    auto attempt = [](const std::string& bytes) -> std::string {
      std::vector<std::byte> copy(bytes.size());  // exact size, so ASan sees over-reads
      if (!bytes.empty()) std::memcpy(copy.data(), bytes.data(), bytes.size());
      try {
        auto h = parse_safetensors(copy.data(), copy.size(), "fuzz.safetensors");
        for (const auto& t : h.tensors) {
          if (t.data < copy.data() || t.data + t.nbytes > copy.data() + copy.size())
            return "view outside the buffer: " + t.name;
          if (t.dtype != DType::BOOL && t.dtype != DType::F8_E4M3 && t.dtype != DType::F8_E5M2)
            to_float(t);
        }
      } catch (const FormatError&) {
      } catch (const std::exception& e) {
        return std::string("unexpected exception: ") + e.what();
      }
      return {};
    };
    for (size_t n = 0; n < good.size(); ++n) {
      std::string problem = attempt(good.substr(0, n));
      QVERIFY2(problem.empty(), problem.c_str());
    }
    std::mt19937 rng(12345);
    for (int i = 0; i < 3000; ++i) {
      std::string bytes = good;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k)
        bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xff);
      std::string problem = attempt(bytes);
      QVERIFY2(problem.empty(), problem.c_str());
    }
  }

  void notARegularFile() {
    TempDir tmp;
    const fs::path dir = tmp.path() / "folder.safetensors";
    fs::create_directory(dir);
    EXPECT_THROW_MSG(IoError, SafetensorsFile f(dir), dir.string(), "directory");
    EXPECT_THROW_MSG(IoError, MappedFile m(dir), dir.string(), "directory");

    // Opening a FIFO for reading would block until a writer comes: it must be refused at once.
    const fs::path fifo = tmp.path() / "pipe.safetensors";
    QCOMPARE(::mkfifo(fifo.c_str(), 0600), 0);
    EXPECT_THROW_MSG(IoError, SafetensorsFile f(fifo), fifo.string(), "FIFO");
    EXPECT_THROW_MSG(IoError, Checkpoint::open(fifo), fifo.string());

    const fs::path missing = tmp.path() / "missing.safetensors";
    EXPECT_THROW_MSG(IoError, SafetensorsFile f(missing), missing.string(), "no such file");
    EXPECT_THROW_MSG(IoError, Checkpoint::open(missing), missing.string());
    EXPECT_THROW_MSG(IoError, SafetensorsFile f(tmp.path() / "missing" / "x.safetensors"),
                     "x.safetensors");

    // An empty regular file maps to size 0 and is then refused by the parser.
    write_file(tmp.path() / "zero", "");
    MappedFile m(tmp.path() / "zero");
    QCOMPARE(m.size(), size_t(0));
    QVERIFY(m.data() == nullptr);
  }

  void checkpointLayouts() {
    TempDir tmp;
    // A file given directly.
    write_file(tmp.path() / "one.safetensors", tiny_file());
    Checkpoint c = Checkpoint::open(tmp.path() / "one.safetensors");
    QCOMPARE(c.names(), (std::vector<std::string>{"a", "b"}));
    QCOMPARE(c.files().size(), size_t(1));
    QCOMPARE(c.bytes_on_disk(), uint64_t(fs::file_size(tmp.path() / "one.safetensors")));
    QCOMPARE(c.get("b").dtype, DType::I8);
    QVERIFY(!c.find("c"));
    EXPECT_THROW_MSG(FormatError, c.get("nope"), "'nope'", "one.safetensors");
    QVERIFY(c.metadata().empty());

    // A folder with model.safetensors wins over other .safetensors files in it.
    fs::create_directory(tmp.path() / "plain");
    write_file(tmp.path() / "plain" / "model.safetensors", tiny_file("m1", "m2"));
    write_file(tmp.path() / "plain" / "other.safetensors", tiny_file());
    c = Checkpoint::open(tmp.path() / "plain");
    QCOMPARE(c.names(), (std::vector<std::string>{"m1", "m2"}));
    QCOMPARE(c.files()[0].filename().string(), std::string("model.safetensors"));

    // A folder with exactly one other .safetensors file.
    fs::create_directory(tmp.path() / "single");
    write_file(tmp.path() / "single" / "weights.safetensors", tiny_file());
    write_file(tmp.path() / "single" / "config.json", "{}");
    c = Checkpoint::open(tmp.path() / "single");
    QCOMPARE(c.files()[0].filename().string(), std::string("weights.safetensors"));

    // Several and no index: which one is meant is unknown.
    fs::create_directory(tmp.path() / "several");
    write_file(tmp.path() / "several" / "x.safetensors", tiny_file());
    write_file(tmp.path() / "several" / "y.safetensors", tiny_file());
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(tmp.path() / "several"), "several",
                     "x.safetensors", "y.safetensors");

    fs::create_directory(tmp.path() / "none");
    write_file(tmp.path() / "none" / "config.json", "{}");
    EXPECT_THROW_MSG(IoError, Checkpoint::open(tmp.path() / "none"), "none",
                     "no .safetensors file");
    EXPECT_THROW_MSG(IoError, Checkpoint::open(tmp.path() / "nowhere"), "nowhere");
  }

  void shardedCheckpoint() {
    TempDir tmp;
    const fs::path dir = tmp.path() / "sharded";
    fs::create_directory(dir);
    SafetensorsWriter w1, w2;
    const float v[] = {1, 2, 3, 4};
    w1.add_f32("layers.0.w", {2, 2}, v);
    w1.add_f32("embed", {4}, v);
    w1.set_metadata("format", "pt");
    w2.add_f16("layers.1.w", {2, 2}, v);
    w1.write(dir / "model-00001-of-00002.safetensors");
    w2.write(dir / "model-00002-of-00002.safetensors");
    const std::string index =
        "{\"metadata\":{\"total_size\":40},\"weight_map\":{"
        "\"embed\":\"model-00001-of-00002.safetensors\","
        "\"layers.0.w\":\"model-00001-of-00002.safetensors\","
        "\"layers.1.w\":\"model-00002-of-00002.safetensors\"}}";
    write_file(dir / "model.safetensors.index.json", index);
    // A stray model.safetensors must not be picked over the index.
    write_file(dir / "model.safetensors", tiny_file());

    Checkpoint c = Checkpoint::open(dir);
    QCOMPARE(c.names(), (std::vector<std::string>{"embed", "layers.0.w", "layers.1.w"}));
    QCOMPARE(c.files().size(), size_t(2));
    QCOMPARE(c.bytes_on_disk(), uint64_t(fs::file_size(dir / "model-00001-of-00002.safetensors") +
                                         fs::file_size(dir / "model-00002-of-00002.safetensors")));
    QCOMPARE(c.get("layers.1.w").file.filename().string(),
             std::string("model-00002-of-00002.safetensors"));
    QCOMPARE(c.get("layers.1.w").dtype, DType::F16);
    QCOMPARE(to_float(c.get("layers.1.w")), (std::vector<float>{1, 2, 3, 4}));
    QCOMPARE(c.metadata().at("format"), std::string("pt"));
    QCOMPARE(c.path(), dir);
    // Views stay valid in a copy of the checkpoint, after the original is gone.
    Checkpoint copy = c;
    c = Checkpoint::open(tmp.path() / "sharded" / "model-00002-of-00002.safetensors");
    QCOMPARE(to_float(copy.get("embed")), (std::vector<float>{1, 2, 3, 4}));
  }

  void shardedCheckpointErrors() {
    TempDir tmp;
    auto make = [&](const std::string& name, const std::map<std::string, std::string>& index,
                    const std::map<std::string, std::vector<std::string>>& shards) {
      const fs::path dir = tmp.path() / name;
      fs::create_directory(dir);
      for (const auto& [file, tensors] : shards) {
        SafetensorsWriter w;
        float x = 1.0f;
        for (const auto& t : tensors) w.add_f32(t, {1}, &x);
        w.write(dir / file);
      }
      std::string json = "{\"weight_map\":{";
      for (const auto& [t, f] : index)
        json += (json.back() == '{' ? "\"" : ",\"") + t + "\":\"" + f + "\"";
      write_file(dir / "model.safetensors.index.json", json + "}}");
      return dir;
    };
    // The index names a shard that is not there.
    fs::path d = make("missing_shard", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}},
                      {{"s1.safetensors", {"a"}}});
    EXPECT_THROW_MSG(IoError, Checkpoint::open(d), "model.safetensors.index.json",
                     "'s2.safetensors'", "'b'", "does not exist");
    // The index puts a tensor in a shard that does not hold it.
    d = make("not_in_shard", {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}},
             {{"s1.safetensors", {"a"}}, {"s2.safetensors", {"b"}}});
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(d), "model.safetensors.index.json", "'b'",
                     "'s1.safetensors'");
    // One tensor stored in two shards.
    d = make("duplicate", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}},
             {{"s1.safetensors", {"a", "b"}}, {"s2.safetensors", {"b"}}});
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(d), "'b'", "two shards", "s1.safetensors",
                     "s2.safetensors");
    // A corrupt shard: its own error, naming the shard.
    d = make("corrupt_shard", {{"a", "s1.safetensors"}}, {});
    write_file(d / "s1.safetensors", le64(999) + "{}");
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(d), "s1.safetensors", "999");
    // Broken indexes.
    fs::create_directory(tmp.path() / "bad_index");
    const fs::path idx = tmp.path() / "bad_index" / "model.safetensors.index.json";
    write_file(idx, "{\"weight_map\": ");
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(tmp.path() / "bad_index"), idx.string(),
                     "not valid JSON");
    write_file(idx, "{\"metadata\": {}}");
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(tmp.path() / "bad_index"), idx.string(),
                     "weight_map");
    write_file(idx, "{\"weight_map\": {\"a\": 3}}");
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(tmp.path() / "bad_index"), idx.string(),
                     "'a'");
    write_file(idx, "{\"weight_map\": {\"a\": \"s.safetensors\", \"a\": \"t.safetensors\"}}");
    EXPECT_THROW_MSG(FormatError, Checkpoint::open(tmp.path() / "bad_index"), idx.string(),
                     "'a'", "twice");
  }

  void writerRejectsBadInput() {
    SafetensorsWriter w;
    float x[4] = {};
    w.add_f32("dup", {4}, x);
    EXPECT_THROW_MSG(FormatError, w.add_f32("dup", {4}, x), "'dup'", "twice");
    EXPECT_THROW_MSG(FormatError, w.add_f16("dup", {4}, x), "'dup'");
    EXPECT_THROW_MSG(FormatError, w.add("size", DType::F32, {3}, x, 16), "'size'", "[3]", "12",
                     "16");
    EXPECT_THROW_MSG(FormatError, w.add_f32("neg", {-1, 4}, x), "'neg'", "[-1, 4]");
    EXPECT_THROW_MSG(FormatError, w.add("big", DType::F32, {INT64_MAX, 2}, x, 16), "'big'");
    EXPECT_THROW_MSG(FormatError, w.add_f32("__metadata__", {1}, x), "__metadata__");
    EXPECT_THROW_MSG(FormatError, w.add_f32("", {1}, x), "empty");
    EXPECT_THROW_MSG(FormatError, w.add_f32("bad\xff", {1}, x), "UTF-8");
    EXPECT_THROW_MSG(FormatError, w.set_metadata("k", "\xc0\xaf"), "'k'", "UTF-8");
    QCOMPARE(w.size_bytes(), size_t(16));  // failed adds left nothing behind
  }

  void writerIoErrors() {
    TempDir tmp;
    SafetensorsWriter w;
    std::vector<float> big(16384, 1.0f);  // 64 KiB
    w.add_f32("w", {16384}, big.data());

    const fs::path no_dir = tmp.path() / "no" / "such" / "out.safetensors";
    EXPECT_THROW_MSG(IoError, w.write(no_dir), no_dir.string());
    EXPECT_THROW_MSG(IoError, w.write(tmp.path()), tmp.path().string(), "directory");

    // A full disk, the portable way: /dev/full fails every write with ENOSPC. It is a device,
    // so the writer must not delete it on failure.
    if (fs::exists("/dev/full")) {
      EXPECT_THROW_MSG(IoError, w.write("/dev/full"), "/dev/full");
      QVERIFY(fs::exists("/dev/full"));
    }

    // A full disk on a regular file: a file-size limit makes write() fail with EFBIG part way
    // through (SIGXFSZ ignored, else it would kill us). The partial file must be removed.
    const fs::path limited = tmp.path() / "limited.safetensors";
    struct rlimit old;
    QCOMPARE(::getrlimit(RLIMIT_FSIZE, &old), 0);
    if (old.rlim_max == RLIM_INFINITY || old.rlim_max > 4096) {
      auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit lim = old;
      lim.rlim_cur = 4096;
      QCOMPARE(::setrlimit(RLIMIT_FSIZE, &lim), 0);
      std::string problem = check_throws<IoError>([&] { w.write(limited); }, {limited.string()});
      ::setrlimit(RLIMIT_FSIZE, &old);
      ::signal(SIGXFSZ, old_handler);
      QVERIFY2(problem.empty(), problem.c_str());
      QVERIFY(!fs::exists(limited));
    }
    // And with the limit lifted the same writer succeeds.
    w.write(limited);
    QCOMPARE(fs::file_size(limited), uintmax_t(8 + 64 + 65536));
  }
};

QTEST_GUILESS_MAIN(TestSafetensors)
#include "tst_safetensors.moc"
