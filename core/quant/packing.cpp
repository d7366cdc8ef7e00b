// GPTQ bit packing (see packing.h for the layout, the padding and the zero formats).
#include "quant/packing.h"

#include "common/half.h"

#include <string>

#include "common/error.h"

namespace gptqw {

namespace {

void check_bits(int bits) {
  if (!packable_bits(bits))
    throw ConfigError("GPTQ packing: " + std::to_string(bits) +
                      " bits cannot be packed (the format holds 2, 3, 4 or 8 bits)");
}

// Writes value v (< 2^bits) at stream bit bits*i of the line whose word w sits at
// word(w) = base[w * stride]. A value may straddle two words only at 3 bits.
template <class WordAt>
inline void put(WordAt word, int64_t i, uint32_t v, int bits) {
  const int64_t bit = i * bits;
  const int64_t w = bit / 32;
  const int off = static_cast<int>(bit % 32);
  word(w) |= v << off;  // bits shifted past 31 are the part that goes to the next word
  if (off + bits > 32) word(w + 1) |= v >> (32 - off);
}

template <class WordAt>
inline uint32_t get(WordAt word, int64_t i, int bits) {
  const int64_t bit = i * bits;
  const int64_t w = bit / 32;
  const int off = static_cast<int>(bit % 32);
  uint32_t v = word(w) >> off;
  if (off + bits > 32) v |= word(w + 1) << (32 - off);
  return v & ((1u << bits) - 1u);
}

}  // namespace

std::string_view checkpoint_format_name(ZeroFormat f) {
  return f == ZeroFormat::v1 ? "gptq" : "gptq_v2";
}

std::optional<ZeroFormat> parse_checkpoint_format(std::string_view name) {
  if (name == "gptq") return ZeroFormat::v1;
  if (name == "gptq_v2") return ZeroFormat::v2;
  return std::nullopt;
}

bool packable_bits(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

int64_t packed_words(int64_t count, int bits) {
  check_bits(bits);
  if (count < 0) throw Error("GPTQ packing: negative dimension " + std::to_string(count));
  // A unit is the smallest run of whole values that fills whole words: one word of 32/bits
  // values, or at 3 bits 32 values in 3 words.
  const int64_t values_per_unit = bits == 3 ? 32 : 32 / bits;
  const int64_t words_per_unit = bits == 3 ? 3 : 1;
  return (count + values_per_unit - 1) / values_per_unit * words_per_unit;
}

MatrixI32 pack_qweight(const Eigen::Ref<const Codes>& codes, int bits) {
  const int64_t N = codes.rows(), K = codes.cols();
  const int64_t rows = packed_words(K, bits);
  const uint32_t maxq = (1u << bits) - 1u;
  // Built as uint32 bit patterns; the I32 tensor is the same bits (Python writes the uint32
  // array through astype(int32), a bit-preserving cast).
  Eigen::Matrix<uint32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> q =
      Eigen::Matrix<uint32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Zero(rows, N);
  for (int64_t n = 0; n < N; ++n) {
    auto word = [&](int64_t w) -> uint32_t& { return q(w, n); };
    for (int64_t k = 0; k < K; ++k) {
      const uint32_t v = codes(n, k);
      if (v > maxq)
        throw Error("GPTQ packing: code " + std::to_string(v) + " at [" + std::to_string(n) +
                    ", " + std::to_string(k) + "] of a [" + std::to_string(N) + ", " +
                    std::to_string(K) + "] matrix does not fit in " + std::to_string(bits) +
                    " bits");
      put(word, k, v, bits);
    }
  }
  return q.cast<int32_t>();
}

Codes unpack_qweight(const Eigen::Ref<const MatrixI32>& qweight, int64_t K, int bits) {
  const int64_t rows = packed_words(K, bits), N = qweight.cols();
  if (qweight.rows() != rows)
    throw Error("GPTQ unpacking: qweight has " + std::to_string(qweight.rows()) + " rows, " +
                std::to_string(K) + " inputs at " + std::to_string(bits) + " bits need " +
                std::to_string(rows));
  Codes codes(N, K);
  for (int64_t n = 0; n < N; ++n) {
    auto word = [&](int64_t w) { return static_cast<uint32_t>(qweight(w, n)); };
    for (int64_t k = 0; k < K; ++k) codes(n, k) = static_cast<uint8_t>(get(word, k, bits));
  }
  return codes;
}

MatrixI32 pack_qzeros(const Eigen::Ref<const MatrixI32>& zeros, int bits, ZeroFormat format) {
  const int64_t G = zeros.rows(), N = zeros.cols();
  const int64_t cols = packed_words(N, bits);
  const int32_t maxq = (1 << bits) - 1;
  Eigen::Matrix<uint32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> q =
      Eigen::Matrix<uint32_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>::Zero(G, cols);
  for (int64_t g = 0; g < G; ++g) {
    auto word = [&](int64_t w) -> uint32_t& { return q(g, w); };
    for (int64_t n = 0; n < N; ++n) {
      const int32_t z = zeros(g, n);
      if (z < 0 || z > maxq)
        throw Error("GPTQ packing: zero point " + std::to_string(z) + " at [" +
                    std::to_string(g) + ", " + std::to_string(n) + "] is outside [0, " +
                    std::to_string(maxq) + "] for " + std::to_string(bits) + " bits");
      // v1: zero - 1, wrapped within the field (zero 0 -> maxq; see packing.h).
      const uint32_t v = format == ZeroFormat::v1 ? static_cast<uint32_t>((z - 1) & maxq)
                                                  : static_cast<uint32_t>(z);
      put(word, n, v, bits);
    }
  }
  return q.cast<int32_t>();
}

MatrixI32 unpack_qzeros(const Eigen::Ref<const MatrixI32>& qzeros, int64_t N, int bits,
                        ZeroFormat format) {
  const int64_t cols = packed_words(N, bits), G = qzeros.rows();
  if (qzeros.cols() != cols)
    throw Error("GPTQ unpacking: qzeros has " + std::to_string(qzeros.cols()) + " columns, " +
                std::to_string(N) + " outputs at " + std::to_string(bits) + " bits need " +
                std::to_string(cols));
  MatrixI32 zeros(G, N);
  const int32_t add = format == ZeroFormat::v1 ? 1 : 0;
  for (int64_t g = 0; g < G; ++g) {
    auto word = [&](int64_t w) { return static_cast<uint32_t>(qzeros(g, w)); };
    for (int64_t n = 0; n < N; ++n) zeros(g, n) = static_cast<int32_t>(get(word, n, bits)) + add;
  }
  return zeros;
}

Matrix dequantize_as_stored(const QuantizedWeights& w) {
  const int64_t N = w.codes.rows(), K = w.codes.cols();
  Matrix Q(N, K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const int32_t g = w.g_idx[k];
      const float scale = half_to_float(float_to_half(w.scales(g, n)));
      Q(n, k) = scale * static_cast<float>(int32_t(w.codes(n, k)) - w.zeros(g, n));
    }
  return Q;
}

}  // namespace gptqw
