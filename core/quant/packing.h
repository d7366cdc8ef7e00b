// Bit packing of the GPTQ checkpoint format (spec section 6), as AutoGPTQ and GPTQModel write it
// and transformers / vLLM / ExLlama read it:
//
//   qweight I32 [words(K), N]  codes packed along the input dimension (each column of the
//                              tensor is one output channel's K codes)
//   qzeros  I32 [G, words(N)]  zero points packed along the output dimension
//
// Bit layout. In both tensors the values of one packed line form a little-endian bit stream of
// 32-bit words: value i sits at stream bit bits*i, lowest bits first. At 2, 4 and 8 bits that
// is "word r holds values r*(32/bits) + j at bit offset bits*j" (4-bit codes 0..7 pack to
// 0x76543210). At 3 bits it is AutoGPTQ's 10-1-10-1-10 layout: 32 values fill exactly 3 words,
//   word 0: values 0..9 at bits 3j,           bits 30-31 = low 2 bits of value 10
//   word 1: bit 0 = high bit of value 10,     values 11..20 at bits 3j+1, bit 31 = low bit of 21
//   word 2: bits 0-1 = high 2 bits of value 21, values 22..31 at bits 3j+2
// which is the same continuous stream (value 10 at stream bit 30, value 21 at bit 63), so one
// packer serves all widths.
//
// Padding (our choice, documented because the loaders do not agree on it): a dimension that is
// not a whole number of packing units is rounded UP to whole units and the unused bits are 0.
// A unit is one word (32/bits values) at 2, 4 and 8 bits and three words (32 values) at 3 bits,
// so that a 3-bit tensor stays a whole number of AutoGPTQ's 3-word groups (its unpackers
// reshape the rows by 3). stories260K's intermediate size 172 at 4 bits gives 22 words
// (21.5 rounded up); nothing is lost, unlike the floor K/32*bits that AutoGPTQ, GPTQModel and
// vLLM allocate, which is why check_exportable() warns that such layers will not load there.
// Padded qzeros fields are 0 in the stored word under both zero formats.
//
// Zero points. Format "gptq" (v1) stores zero - 1 and loaders add 1 back; "gptq_v2" stores the
// zero as is. v1 cannot hold zero 0: AutoGPTQ computes (zero - 1) as uint32, i.e. 0xFFFFFFFF,
// and ORs it in shifted, which sets the field to all ones (and, an AutoGPTQ bug, also every
// higher field of the same word). We wrap within the field only: zero 0 is stored as maxq, the
// same field value AutoGPTQ writes, without touching the neighbours. Every loader reads that
// field back as maxq + 1, which is what unpack_qzeros(v1) returns too; hence asymmetric grids
// (which can have zero 0) are exported as v2 and the exporter refuses zero 0 under v1.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "quant/quantizer.h"

namespace gptqw {

// How qzeros stores a zero point: v1 ("gptq") zero - 1, v2 ("gptq_v2") zero as is.
enum class ZeroFormat { v1, v2 };

// "gptq" / "gptq_v2": the checkpoint_format value of quantize_config.json.
std::string_view checkpoint_format_name(ZeroFormat f);
std::optional<ZeroFormat> parse_checkpoint_format(std::string_view name);

// 2, 3, 4 or 8: the widths the format packs into 32-bit words.
bool packable_bits(int bits);

// Number of 32-bit words holding `count` values of `bits` bits, rounded up to whole packing
// units (see the header comment). Throws ConfigError for bits that cannot be packed.
int64_t packed_words(int64_t count, int bits);

// codes [N, K] (our layout, one row per output channel, values in [0, 2^bits - 1]) ->
// qweight [packed_words(K, bits), N]. Throws Error naming the position of a code out of range.
MatrixI32 pack_qweight(const Eigen::Ref<const Codes>& codes, int bits);

// qweight [packed_words(K, bits), N] -> codes [N, K]. Throws Error when the row count does not
// match K.
Codes unpack_qweight(const Eigen::Ref<const MatrixI32>& qweight, int64_t K, int bits);

// zeros [G, N] (integer zero points in [0, 2^bits - 1]) -> qzeros [G, packed_words(N, bits)].
// v1 stores zero - 1 wrapped within its field (zero 0 becomes maxq, see above).
MatrixI32 pack_qzeros(const Eigen::Ref<const MatrixI32>& zeros, int bits, ZeroFormat format);

// qzeros [G, packed_words(N, bits)] -> zeros [G, N] as a loader sees them: v1 adds 1 back (so
// a field holding maxq reads as maxq + 1), v2 returns the field.
MatrixI32 unpack_qzeros(const Eigen::Ref<const MatrixI32>& qzeros, int64_t N, int bits,
                        ZeroFormat format);

// The weights a loader reads back from the checkpoint: W[n, k] = f16(scales[g, n]) *
// (codes[n, k] - zeros[g, n]) with g = g_idx[k]. The integer difference times an F16 scale is
// exact in fp32 (11 + 9 significant bits), so this is the value every loader means. Evaluating
// this rather than the fp32-scale Q makes the in-memory perplexity the exported model's.
Matrix dequantize_as_stored(const QuantizedWeights& w);

}  // namespace gptqw
