// llama2.c tokenizer.bin: the input is the file; an accepted tokenizer then encodes a fixed
// text plus the input's last bytes (any bytes: this tokenizer takes them raw) and decodes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "model/llama2c_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gptqw;
  static const std::filesystem::path file =
      gptqw_fuzz::scratch_dir("llama2c_tokenizer") / "tokenizer.bin";
  gptqw_fuzz::write_file(file, data, size);
  // The first byte picks the vocab_size argument: -1 (read to the end) or an exact count.
  const int32_t vocab = size > 0 && (data[0] & 1) ? 259 + (data[0] >> 1) : -1;
  gptqw_fuzz::expect_rejection([&] {
    Llama2cTokenizer tok(file, vocab);
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string text = "Once upon a time, Lily ü 😀 " +
                       std::string(input.substr(size > 48 ? size - 48 : 0));
    gptqw_fuzz::check_encode_decode(tok, text);
    (void)tok.encode("");
    const int32_t few[] = {-5, 0, 1, 2, 3, 258, 2147483647};
    (void)tok.decode(few);
  });
  return 0;
}
