// Unit tests of core/quant/packing (spec section 6): packed words worked out by hand, so that
// they check the layout independently of our unpacker (4-bit codes 0..7 -> 0x76543210; the
// symmetric 4-bit zero 8 under v1 -> 0x77777777; 2, 8 and 3 bits, the 3-bit words derived in
// octal below and cross-checked against AutoGPTQ's 10-1-10-1-10 loop), the zero-padding of
// dimensions that are not whole packing units, v1's wrap of zero 0, and pack/unpack round trips
// for every width over ragged sizes.
#include <QTest>
#include <random>

#include "common/error.h"
#include "quant/packing.h"

using namespace gptqw;

namespace {

// One output channel (a column of qweight) holding the given codes along K.
Codes column(std::initializer_list<int> v) {
  Codes c(1, static_cast<Eigen::Index>(v.size()));
  Eigen::Index i = 0;
  for (int x : v) c(0, i++) = static_cast<uint8_t>(x);
  return c;
}

// One group row of zero points along N.
MatrixI32 zero_row(std::vector<int> v) {
  MatrixI32 z(1, static_cast<Eigen::Index>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) z(0, Eigen::Index(i)) = v[i];
  return z;
}

uint32_t word(const MatrixI32& m, Eigen::Index r, Eigen::Index c) {
  return static_cast<uint32_t>(m(r, c));
}

}  // namespace

class TestPacking : public QObject {
  Q_OBJECT
 private slots:
  void formatNames() {
    QVERIFY(checkpoint_format_name(ZeroFormat::v1) == "gptq");
    QVERIFY(checkpoint_format_name(ZeroFormat::v2) == "gptq_v2");
    QVERIFY(parse_checkpoint_format("gptq") == ZeroFormat::v1);
    QVERIFY(parse_checkpoint_format("gptq_v2") == ZeroFormat::v2);
    QVERIFY(!parse_checkpoint_format("marlin"));
    QVERIFY(!parse_checkpoint_format("GPTQ"));
  }

  void packedWordCounts() {
    // Whole units: 32/bits values per word at 2, 4, 8 bits; 32 values per 3 words at 3 bits.
    QCOMPARE(packed_words(64, 4), int64_t(8));
    QCOMPARE(packed_words(64, 3), int64_t(6));
    QCOMPARE(packed_words(64, 2), int64_t(4));
    QCOMPARE(packed_words(64, 8), int64_t(16));
    // stories260K's intermediate size 172: rounded up to whole units.
    QCOMPARE(packed_words(172, 4), int64_t(22));  // 21.5 -> 22
    QCOMPARE(packed_words(172, 2), int64_t(11));  // 10.75 -> 11
    QCOMPARE(packed_words(172, 8), int64_t(43));  // exact
    QCOMPARE(packed_words(172, 3), int64_t(18));  // 5.375 units of 3 words -> 6 units
    QCOMPARE(packed_words(1, 3), int64_t(3));
    QCOMPARE(packed_words(0, 4), int64_t(0));
    QVERIFY_THROWS_EXCEPTION(ConfigError, packed_words(64, 5));
    QVERIFY_THROWS_EXCEPTION(ConfigError, packed_words(64, 1));
    QVERIFY(packable_bits(2) && packable_bits(3) && packable_bits(4) && packable_bits(8));
    QVERIFY(!packable_bits(5) && !packable_bits(16) && !packable_bits(0));
  }

  void fourBitHandWords() {
    // Codes 0..7 down one column: code j at bit 4j -> the hex digits read right to left.
    MatrixI32 q = pack_qweight(column({0, 1, 2, 3, 4, 5, 6, 7}), 4);
    QCOMPARE(q.rows(), Eigen::Index(1));
    QCOMPARE(q.cols(), Eigen::Index(1));
    QCOMPARE(word(q, 0, 0), 0x76543210u);
    // 16 codes: word 1 holds codes 8..15. 0xFEDCBA98 has the sign bit set: the I32 tensor
    // holds the same bits (a negative int32), as Python's astype(int32) writes it.
    q = pack_qweight(column({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}), 4);
    QCOMPARE(q.rows(), Eigen::Index(2));
    QCOMPARE(word(q, 0, 0), 0x76543210u);
    QCOMPARE(word(q, 1, 0), 0xFEDCBA98u);
    QVERIFY(q(1, 0) < 0);
    // Two output channels are two columns of qweight, packed independently.
    Codes two(2, 8);
    two.row(0) << 1, 1, 1, 1, 1, 1, 1, 1;
    two.row(1) << 15, 0, 0, 0, 0, 0, 0, 9;
    q = pack_qweight(two, 4);
    QCOMPARE(q.cols(), Eigen::Index(2));
    QCOMPARE(word(q, 0, 0), 0x11111111u);
    QCOMPARE(word(q, 0, 1), 0x9000000Fu);
    // The unpacker reads the hand words back.
    MatrixI32 hand(2, 1);
    hand(0, 0) = static_cast<int32_t>(0x76543210u);
    hand(1, 0) = static_cast<int32_t>(0xFEDCBA98u);
    Codes c = unpack_qweight(hand, 16, 4);
    for (int k = 0; k < 16; ++k) QCOMPARE(int(c(0, k)), k);
  }

  void fourBitZeros() {
    // Symmetric 4-bit: zero (maxq + 1) / 2 = 8 everywhere. v1 stores 8 - 1 = 7 per nibble.
    MatrixI32 z = pack_qzeros(zero_row({8, 8, 8, 8, 8, 8, 8, 8}), 4, ZeroFormat::v1);
    QCOMPARE(z.rows(), Eigen::Index(1));
    QCOMPARE(z.cols(), Eigen::Index(1));
    QCOMPARE(word(z, 0, 0), 0x77777777u);
    // v2 stores it as is.
    z = pack_qzeros(zero_row({8, 8, 8, 8, 8, 8, 8, 8}), 4, ZeroFormat::v2);
    QCOMPARE(word(z, 0, 0), 0x88888888u);
    // Asymmetric zeros 1..8 along N: v1 0..7 -> 0x76543210, v2 -> 0x87654321.
    z = pack_qzeros(zero_row({1, 2, 3, 4, 5, 6, 7, 8}), 4, ZeroFormat::v1);
    QCOMPARE(word(z, 0, 0), 0x76543210u);
    z = pack_qzeros(zero_row({1, 2, 3, 4, 5, 6, 7, 8}), 4, ZeroFormat::v2);
    QCOMPARE(word(z, 0, 0), 0x87654321u);
    // Unpacking the hand words adds 1 back under v1 only.
    MatrixI32 hand(1, 1);
    hand(0, 0) = 0x77777777;
    QVERIFY((unpack_qzeros(hand, 8, 4, ZeroFormat::v1).array() == 8).all());
    QVERIFY((unpack_qzeros(hand, 8, 4, ZeroFormat::v2).array() == 7).all());
  }

  void v1WrapsZeroZero() {
    // Zero 0 under v1: AutoGPTQ packs (0 - 1) as uint32 0xFFFFFFFF, i.e. an all-ones field
    // (maxq). We write the same field without smearing ones into the higher fields, so the
    // neighbours keep their values: zeros 0..7 -> fields F,0,1,...,6 -> 0x6543210F.
    MatrixI32 z = pack_qzeros(zero_row({0, 1, 2, 3, 4, 5, 6, 7}), 4, ZeroFormat::v1);
    QCOMPARE(word(z, 0, 0), 0x6543210Fu);
    // A loader reads that field as maxq + 1 = 16, not 0: v1 cannot hold zero 0.
    MatrixI32 back = unpack_qzeros(z, 8, 4, ZeroFormat::v1);
    QCOMPARE(back(0, 0), 16);
    for (int n = 1; n < 8; ++n) QCOMPARE(back(0, n), n);
    // Same at 2 bits: zero 0 -> field 3 -> read as 4.
    z = pack_qzeros(zero_row({0, 2}), 2, ZeroFormat::v1);
    QCOMPARE(word(z, 0, 0), 0x7u);  // field 0 = 3, field 1 = 1
    QCOMPARE(unpack_qzeros(z, 2, 2, ZeroFormat::v1)(0, 0), 4);
  }

  void twoBitHandWords() {
    // 16 codes per word at bits 2j. Codes 0,1,2,3 repeated: one byte is
    // 0 | 1 << 2 | 2 << 4 | 3 << 6 = 0b11100100 = 0xE4.
    MatrixI32 q =
        pack_qweight(column({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}), 2);
    QCOMPARE(q.rows(), Eigen::Index(1));
    QCOMPARE(word(q, 0, 0), 0xE4E4E4E4u);
    // Symmetric 2-bit zero is 2; v1 stores 1 in each of the 16 fields: 0x55555555.
    MatrixI32 z = pack_qzeros(MatrixI32::Constant(1, 16, 2), 2, ZeroFormat::v1);
    QCOMPARE(word(z, 0, 0), 0x55555555u);
    QCOMPARE(word(pack_qzeros(MatrixI32::Constant(1, 16, 2), 2, ZeroFormat::v2), 0, 0),
             0xAAAAAAAAu);
  }

  void eightBitHandWords() {
    // 4 codes per word, byte j = code j.
    MatrixI32 q = pack_qweight(column({0x10, 0x20, 0x30, 0x40, 1, 2, 3, 255}), 8);
    QCOMPARE(q.rows(), Eigen::Index(2));
    QCOMPARE(word(q, 0, 0), 0x40302010u);
    QCOMPARE(word(q, 1, 0), 0xFF030201u);
    // Symmetric 8-bit zero 128: v1 stores 127 = 0x7F per byte.
    MatrixI32 z = pack_qzeros(MatrixI32::Constant(1, 4, 128), 8, ZeroFormat::v1);
    QCOMPARE(word(z, 0, 0), 0x7F7F7F7Fu);
    z = pack_qzeros(MatrixI32::Constant(1, 4, 255), 8, ZeroFormat::v2);
    QCOMPARE(word(z, 0, 0), 0xFFFFFFFFu);
    QVERIFY((unpack_qzeros(z, 4, 8, ZeroFormat::v2).array() == 255).all());
  }

  void threeBitHandWords() {
    // AutoGPTQ's 3-bit layout, 32 codes c0..c31 in 3 words:
    //   w0 = c0..c9 at bits 3j (bits 0-29), bits 30-31 = c10 & 3
    //   w1 = bit 0 = c10 >> 2, c11..c20 at bits 3j + 1 (bits 1-30), bit 31 = c21 & 1
    //   w2 = bits 0-1 = c21 >> 1, c22..c31 at bits 3j + 2 (bits 2-31)
    // 3-bit fields are octal digits, so with c_i = i % 8:
    //   w0: c9..c0 = 1 0 7 6 5 4 3 2 1 0 -> 0o1076543210 = 0x08FAC688; c10 = 2 = 0b010 puts
    //       bit 1 of c10 at bit 31 -> 0x88FAC688
    //   w1: c20..c11 = 4 3 2 1 0 7 6 5 4 3 -> 0o4321076543 << 1 = 0x4688FAC6; bit 0 = c10 >> 2
    //       = 0; bit 31 = c21 & 1 = 5 & 1 = 1 -> 0xC688FAC6
    //   w2: c31..c22 = 7 6 5 4 3 2 1 0 7 6 -> 0o7654321076 << 2 = 0xFAC688F8; bits 0-1 =
    //       c21 >> 1 = 0b10 -> 0xFAC688FA
    // (The same three words come out of a literal transcription of AutoGPTQ's pack loop.)
    Codes c(1, 32);
    for (int i = 0; i < 32; ++i) c(0, i) = static_cast<uint8_t>(i % 8);
    MatrixI32 q = pack_qweight(c, 3);
    QCOMPARE(q.rows(), Eigen::Index(3));
    QCOMPARE(word(q, 0, 0), 0x88FAC688u);
    QCOMPARE(word(q, 1, 0), 0xC688FAC6u);
    QCOMPARE(word(q, 2, 0), 0xFAC688FAu);

    // The two split codes alone. c10 = 7: bits 30-31 of w0 and bit 0 of w1.
    c.setZero();
    c(0, 10) = 7;
    q = pack_qweight(c, 3);
    QCOMPARE(word(q, 0, 0), 0xC0000000u);
    QCOMPARE(word(q, 1, 0), 0x00000001u);
    QCOMPARE(word(q, 2, 0), 0x00000000u);
    // c21 = 7: bit 31 of w1 and bits 0-1 of w2.
    c.setZero();
    c(0, 21) = 7;
    q = pack_qweight(c, 3);
    QCOMPARE(word(q, 0, 0), 0x00000000u);
    QCOMPARE(word(q, 1, 0), 0x80000000u);
    QCOMPARE(word(q, 2, 0), 0x00000003u);

    // Symmetric 3-bit zero is 4; v1 stores 3 = 0b011 in each of 32 fields: the repeating
    // stream ...011011 gives 0xDB6DB6DB, 0xB6DB6DB6, 0x6DB6DB6D; v2 stores 4 = 0b100:
    // 0x24924924, 0x49249249, 0x92492492.
    MatrixI32 z = pack_qzeros(MatrixI32::Constant(1, 32, 4), 3, ZeroFormat::v1);
    QCOMPARE(z.cols(), Eigen::Index(3));
    QCOMPARE(word(z, 0, 0), 0xDB6DB6DBu);
    QCOMPARE(word(z, 0, 1), 0xB6DB6DB6u);
    QCOMPARE(word(z, 0, 2), 0x6DB6DB6Du);
    z = pack_qzeros(MatrixI32::Constant(1, 32, 4), 3, ZeroFormat::v2);
    QCOMPARE(word(z, 0, 0), 0x24924924u);
    QCOMPARE(word(z, 0, 1), 0x49249249u);
    QCOMPARE(word(z, 0, 2), 0x92492492u);

    // The unpacker reads the hand words back.
    MatrixI32 hand(3, 1);
    hand(0, 0) = static_cast<int32_t>(0x88FAC688u);
    hand(1, 0) = static_cast<int32_t>(0xC688FAC6u);
    hand(2, 0) = static_cast<int32_t>(0xFAC688FAu);
    Codes back = unpack_qweight(hand, 32, 3);
    for (int i = 0; i < 32; ++i) QCOMPARE(int(back(0, i)), i % 8);
  }

  void paddingAlongK() {
    // K = 5 at 4 bits: one word, the three unused nibbles are 0.
    MatrixI32 q = pack_qweight(column({1, 2, 3, 4, 5}), 4);
    QCOMPARE(q.rows(), Eigen::Index(1));
    QCOMPARE(word(q, 0, 0), 0x00054321u);
    // K = 9: two words, the second holds code 8 only.
    q = pack_qweight(column({1, 1, 1, 1, 1, 1, 1, 1, 15}), 4);
    QCOMPARE(q.rows(), Eigen::Index(2));
    QCOMPARE(word(q, 0, 0), 0x11111111u);
    QCOMPARE(word(q, 1, 0), 0x0000000Fu);
    // 3 bits, K = 33: two whole 3-word units; the second holds c32 at bits 0-2 of its first
    // word and nothing else.
    Codes c = Codes::Constant(1, 33, 7);
    q = pack_qweight(c, 3);
    QCOMPARE(q.rows(), Eigen::Index(6));
    for (int r = 0; r < 3; ++r) QCOMPARE(word(q, r, 0), 0xFFFFFFFFu);
    QCOMPARE(word(q, 3, 0), 0x00000007u);
    QCOMPARE(word(q, 4, 0), 0u);
    QCOMPARE(word(q, 5, 0), 0u);
    // 2 bits, K = 17; 8 bits, K = 5.
    q = pack_qweight(Codes::Constant(1, 17, 3), 2);
    QCOMPARE(q.rows(), Eigen::Index(2));
    QCOMPARE(word(q, 1, 0), 0x00000003u);
    q = pack_qweight(Codes::Constant(1, 5, 0xAB), 8);
    QCOMPARE(q.rows(), Eigen::Index(2));
    QCOMPARE(word(q, 1, 0), 0x000000ABu);
  }

  void paddingAlongN() {
    // N = 3 at 4 bits, symmetric zero 8 under v1: 0x777 and zero-valued padding fields (not
    // 0xF: padding is 0 in the stored word under both formats).
    MatrixI32 z = pack_qzeros(zero_row({8, 8, 8}), 4, ZeroFormat::v1);
    QCOMPARE(z.cols(), Eigen::Index(1));
    QCOMPARE(word(z, 0, 0), 0x00000777u);
    // stories260K's N = 172 at 4 bits: 22 columns, the last holding 4 zero points.
    z = pack_qzeros(MatrixI32::Constant(2, 172, 8), 4, ZeroFormat::v1);
    QCOMPARE(z.rows(), Eigen::Index(2));
    QCOMPARE(z.cols(), Eigen::Index(22));
    for (int g = 0; g < 2; ++g) {
      for (int w = 0; w < 21; ++w) QCOMPARE(word(z, g, w), 0x77777777u);
      QCOMPARE(word(z, g, 21), 0x00007777u);
    }
    // qweight is padded along K only: N stays the column count whatever it is.
    QCOMPARE(pack_qweight(Codes::Zero(172, 64), 4).cols(), Eigen::Index(172));
    // Unpack ignores the padding fields.
    MatrixI32 back = unpack_qzeros(z, 172, 4, ZeroFormat::v1);
    QCOMPARE(back.cols(), Eigen::Index(172));
    QVERIFY((back.array() == 8).all());
  }

  void roundTrips() {
    std::mt19937 rng(1234);
    for (int bits : {2, 3, 4, 8}) {
      const int maxq = (1 << bits) - 1;
      std::uniform_int_distribution<int> code(0, maxq), zero1(1, maxq);
      for (int64_t K : {1, 7, 8, 15, 16, 31, 32, 33, 64, 95, 100, 172}) {
        const int64_t N = 1 + (K * 7) % 45;  // ragged N as well
        Codes c(N, K);
        for (int64_t i = 0; i < c.size(); ++i) c.data()[i] = static_cast<uint8_t>(code(rng));
        MatrixI32 q = pack_qweight(c, bits);
        QCOMPARE(int64_t(q.rows()), packed_words(K, bits));
        QCOMPARE(int64_t(q.cols()), N);
        Codes back = unpack_qweight(q, K, bits);
        QVERIFY2(back == c, qPrintable(QString("qweight round trip, %1 bits, K %2").arg(bits).arg(K)));

        // Zeros: v2 holds [0, maxq]; v1 holds [1, maxq] (zero 0 wraps, see v1WrapsZeroZero).
        MatrixI32 z2(3, K), z1(3, K);
        for (int64_t i = 0; i < z2.size(); ++i) {
          z2.data()[i] = code(rng);
          z1.data()[i] = zero1(rng);
        }
        QCOMPARE(int64_t(pack_qzeros(z2, bits, ZeroFormat::v2).cols()), packed_words(K, bits));
        QVERIFY(unpack_qzeros(pack_qzeros(z2, bits, ZeroFormat::v2), K, bits, ZeroFormat::v2) == z2);
        QVERIFY(unpack_qzeros(pack_qzeros(z1, bits, ZeroFormat::v1), K, bits, ZeroFormat::v1) == z1);
      }
    }
  }

  void rejectsBadInput() {
    // A code or zero that does not fit is an error, not a silent wrap into the neighbour.
    QVERIFY_THROWS_EXCEPTION(Error, pack_qweight(column({0, 16}), 4));
    QVERIFY_THROWS_EXCEPTION(Error, pack_qweight(column({8}), 3));
    QVERIFY_THROWS_EXCEPTION(Error, pack_qzeros(zero_row({16}), 4, ZeroFormat::v2));
    QVERIFY_THROWS_EXCEPTION(Error, pack_qzeros(zero_row({-1}), 4, ZeroFormat::v1));
    QVERIFY_THROWS_EXCEPTION(ConfigError, pack_qweight(column({0}), 5));
    // Row / column counts that do not match the stated dimension.
    try {
      unpack_qweight(MatrixI32::Zero(2, 4), 24, 4);  // 24 inputs need 3 words
      QFAIL("no exception");
    } catch (const Error& e) {
      QVERIFY2(QString(e.what()).contains("2 rows") && QString(e.what()).contains("need 3"),
               e.what());
    }
    QVERIFY_THROWS_EXCEPTION(Error, unpack_qzeros(MatrixI32::Zero(1, 2), 8, 4, ZeroFormat::v1));
  }
};

QTEST_GUILESS_MAIN(TestPacking)
#include "tst_packing.moc"
