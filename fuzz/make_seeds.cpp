// Writes the generated seed inputs of the fuzz targets, so that no model-like file is kept in
// the repository: scripts/fuzz.sh runs it into build-fuzz/ before replaying and fuzzing.
//   make_seeds OUT   ->  OUT/corpus/<target>/...  (seeds)
//                        OUT/regressions/<target>/...  (inputs that once crashed a parser)
// Real files come from the sample data folder at run time (fuzz.sh's data_seeds).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace fs = std::filesystem;
using gptqw::DType;

namespace {

void write_bytes(const fs::path& file, const std::string& bytes) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string le64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char(v >> (8 * i));
  return s;
}

// A safetensors image with the given JSON header and no tensor data.
std::string safetensors_image(const std::string& header) { return le64(header.size()) + header; }

// Every dtype as a [2, 3] tensor of counting bytes, an empty and a scalar tensor, metadata.
void all_dtypes(const fs::path& file) {
  gptqw::SafetensorsWriter w;
  w.set_metadata("format", "pt");
  w.set_metadata("note", "\xc3\xbc");
  for (int d = 0; d <= int(DType::U64); ++d) {
    const DType t = DType(d);
    std::vector<uint8_t> bytes(6 * gptqw::dtype_size(t));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i + 32 + d);
    if (t == DType::BOOL) for (auto& b : bytes) b &= 1;
    w.add("t." + std::string(gptqw::dtype_name(t)), t, {2, 3}, bytes.data(), bytes.size());
  }
  w.add("empty", DType::F32, {0, 4}, nullptr, 0);
  const double scalar = 1.5;
  w.add("scalar", DType::F64, {}, &scalar, sizeof scalar);
  fs::create_directories(file.parent_path());
  w.write(file);
}

// A llama2.c checkpoint: the 7-int header (vocab negative for an untied head), then the
// weights in run.c's order, whose float count is what the reader expects for this header.
void llama2c(const fs::path& file, int dim, int hidden, int layers, int heads, int kv_heads,
             int vocab, int seq_len) {
  const int64_t head_dim = dim / heads, kv = int64_t(kv_heads) * head_dim, v = std::abs(vocab);
  const int64_t per_layer = 2 * dim + 2 * int64_t(dim) * dim + 2 * kv * dim + 3 * int64_t(hidden) * dim;
  const int64_t floats = v * dim * (vocab < 0 ? 2 : 1) + layers * per_layer + dim + seq_len * head_dim;
  std::string bytes;
  for (int x : {dim, hidden, layers, heads, kv_heads, vocab, seq_len})
    bytes.append(reinterpret_cast<const char*>(&x), sizeof x);
  for (int64_t i = 0; i < floats; ++i) {
    const float f = 0.1f * std::sin(float(i));
    bytes.append(reinterpret_cast<const char*>(&f), sizeof f);
  }
  write_bytes(file, bytes);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT\n");
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path corpus = out / "corpus", regressions = out / "regressions";
  all_dtypes(corpus / "safetensors/all_dtypes.safetensors");
  write_bytes(corpus / "safetensors/empty_header.safetensors", safetensors_image("{}"));
  llama2c(corpus / "llama2c/tiny_shared.bin", 8, 16, 2, 2, 1, 16, 4);
  llama2c(corpus / "llama2c/tiny_unshared.bin", 8, 12, 1, 4, 2, -8, 2);
  // Quoting data_offsets nested 300,000 levels deep in an error message overflowed the stack.
  const size_t depth = 300000;
  write_bytes(regressions / "safetensors/stack-overflow-deep-nesting-in-error-message.safetensors",
              safetensors_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":)" +
                                std::string(depth, '[') + std::string(depth, ']') + "}}"));
  // A 70-byte llama2.c file claiming 2^24 layers: the reader built 150 million tensor entries
  // before comparing the file size (a timeout).
  std::string huge;
  for (int x : {8, 12, 1 << 24, 4, 2, -8, 16386}) huge.append(reinterpret_cast<const char*>(&x), 4);
  huge.append(42, '\x3f');
  write_bytes(regressions / "llama2c/timeout-layers-2-to-the-24.bin", huge);

  // Superlinear inputs (issue 13): each took seconds to hours before and must parse well inside
  // the per-input time limit now (fuzz.sh's -timeout).
  // [{},{},...]: the JSON depth-limit callback made nlohmann re-scan; 480 KB took 42 s, so 1 MB
  // about 3 minutes. 1 MB of it for every JSON reader, and in a safetensors header's metadata.
  std::string objects = "[";
  for (size_t i = 0; objects.size() < (size_t(1) << 20); ++i) objects += i ? ",{}" : "{}";
  objects += "]";
  for (const char* t : {"hf_config", "hf_tokenizer", "gptq_settings", "report", "safetensors_index"})
    write_bytes(regressions / t / "timeout-quadratic-json-empty-objects.json", objects);
  write_bytes(regressions / "safetensors/timeout-quadratic-json-metadata.safetensors",
              safetensors_image("{\"__metadata__\":" + objects + "}"));
  // A tokenizer whose one added token is 60,001 "a"s, with 60,000 "a"s elsewhere in the file
  // (the target encodes the file itself): a trie walked from every position costs 60,000^2 / 2.
  const std::string as(60000, 'a');
  write_bytes(regressions / "hf_tokenizer/timeout-quadratic-added-token-match.json",
              R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "<s>": 2}, "merges": []},
"added_tokens": [{"id": 3, "content": ")" + as + R"(a", "special": true}], "padding": ")" +
                  as + "\"}");
  // A llama2.c tokenizer with one 65,536-byte token: cutting it in two at every point and
  // looking both halves up as strings cost O(L^2) (2 * 10^9 bytes hashed).
  {
    std::string tok;
    auto i32 = [&](int32_t v) { tok.append(reinterpret_cast<const char*>(&v), 4); };
    auto record = [&](float score, const std::string& piece) {
      tok.append(reinterpret_cast<const char*>(&score), 4);
      i32(int32_t(piece.size()));
      tok += piece;
    };
    i32(1 << 16);
    record(0, "<unk>");
    record(0, "<s>");
    record(0, "</s>");
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      record(0, name);
    }
    record(-1, "a");
    record(-2, std::string(1 << 16, 'a'));
    write_bytes(regressions / "llama2c_tokenizer/timeout-quadratic-pair-search.bin", tok);
  }
  return 0;
}
