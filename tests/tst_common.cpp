// Unit tests of core/common: half and bfloat16 casts (checked against values worked out by
// hand from the IEEE formats), UTF-8 validation, and text-file error messages.
#include <QTest>
#include <cmath>
#include <fstream>
#include <limits>

#include "common/error.h"
#include "common/half.h"
#include "common/sha256.h"
#include "common/text_file.h"

using namespace gptqw;

class TestCommon : public QObject {
  Q_OBJECT
 private slots:
  void halfKnownValues() {
    QCOMPARE(float_to_half(1.0f), uint16_t(0x3c00));
    QCOMPARE(float_to_half(-2.0f), uint16_t(0xc000));
    QCOMPARE(float_to_half(65504.0f), uint16_t(0x7bff));    // largest half
    QCOMPARE(float_to_half(65520.0f), uint16_t(0x7c00));    // rounds up to Inf
    QCOMPARE(float_to_half(5.9604645e-8f), uint16_t(0x0001));  // smallest subnormal
    QCOMPARE(float_to_half(2.98e-8f), uint16_t(0x0000));    // below half of it
    QCOMPARE(float_to_half(0.1f), uint16_t(0x2e66));
    // Ties go to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
    QCOMPARE(float_to_half(1.0f + std::ldexp(1.0f, -11)), uint16_t(0x3c00));
    QCOMPARE(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), uint16_t(0x3c02));
    QVERIFY(std::isnan(half_to_float(float_to_half(std::numeric_limits<float>::quiet_NaN()))));
    QCOMPARE(half_to_float(0x3555), 0.333251953125f);
    QCOMPARE(half_to_float(0x0001), std::ldexp(1.0f, -24));
    QCOMPARE(half_to_float(0xfbff), -65504.0f);
  }
  void halfRoundTripAllValues() {
    for (uint32_t h = 0; h < 0x10000; ++h) {
      float f = half_to_float(static_cast<uint16_t>(h));
      if (std::isnan(f)) continue;
      QCOMPARE(float_to_half(f), static_cast<uint16_t>(h));
    }
  }
  // FIPS 180-4's examples, a block-boundary length, and a million 'a's fed in odd pieces.
  void sha256KnownDigests() {
    QCOMPARE(sha256_hex(""), std::string("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    QCOMPARE(sha256_hex("abc"), std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    QCOMPARE(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
             std::string("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    Sha256 h;
    const std::string chunk(997, 'a');
    size_t left = 1000000;
    while (left > 0) {
      const size_t n = std::min(left, chunk.size());
      h.update(chunk.data(), n);
      left -= n;
    }
    QCOMPARE(h.hex(), std::string("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
  }
  void bf16() {
    QCOMPARE(float_to_bf16(1.0f), uint16_t(0x3f80));
    QCOMPARE(bf16_to_float(0x4049), 3.140625f);
    // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even (1).
    QCOMPARE(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), uint16_t(0x3f80));
    QCOMPARE(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), uint16_t(0x3f82));
  }
  void utf8Validation() {
    QCOMPARE(find_invalid_utf8("plain ascii"), std::string::npos);
    QCOMPARE(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string::npos);
    QCOMPARE(find_invalid_utf8("ab\xff"), size_t(2));
    QCOMPARE(find_invalid_utf8("\xc0\xaf"), size_t(0));          // overlong '/'
    QCOMPARE(find_invalid_utf8("x\xed\xa0\x80"), size_t(1));     // surrogate
    QCOMPARE(find_invalid_utf8("xy\xe2\x82"), size_t(2));        // truncated
  }
  void textFileErrors() {
    QTemporaryDir dir;
    auto p = std::filesystem::path(dir.path().toStdString());
    auto expect_error = [](const std::filesystem::path& f, const char* what) {
      try {
        read_text_file(f);
        QFAIL("no error");
      } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find(f.string()) != std::string::npos, e.what());
        QVERIFY2(std::string(e.what()).find(what) != std::string::npos, e.what());
      }
    };
    expect_error(p / "missing.txt", "no such file");
    expect_error(p, "is a directory");
    std::ofstream(p / "empty.txt").close();
    expect_error(p / "empty.txt", "empty");
    std::ofstream(p / "latin1.txt") << "caf\xe9";
    expect_error(p / "latin1.txt", "offset 3");
  }
  void textFilePrefixCutsOnCharacterBoundary() {
    QTemporaryDir dir;
    auto f = std::filesystem::path(dir.path().toStdString()) / "t.txt";
    std::ofstream(f) << "a\xc3\xa9z";  // a é z
    QCOMPARE(read_text_file(f, 2), std::string("a"));
    QCOMPARE(read_text_file(f, 3), std::string("a\xc3\xa9"));
  }
};

QTEST_GUILESS_MAIN(TestCommon)
#include "tst_common.moc"
