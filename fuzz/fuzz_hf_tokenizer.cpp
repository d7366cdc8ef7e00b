// Hugging Face tokenizer.json: the input is the file (in a scratch folder, with a fixed
// tokenizer_config.json beside it); an accepted tokenizer then encodes a fixed text and the
// input's last bytes, then the whole input, and decodes what it produced.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "model/hf_tokenizer.h"
#include "model/unicode.h"

namespace {

const std::filesystem::path& file() {
  static const std::filesystem::path f = [] {
    const std::filesystem::path& d = gptqw_fuzz::scratch_dir("hf_tokenizer");
    gptqw_fuzz::write_file(d / "tokenizer_config.json",
                           R"({"bos_token": "<s>", "eos_token": {"content": "</s>"}})");
    return d / "tokenizer.json";
  }();
  return f;
}

constexpr std::string_view kFixed =
    "Once upon a time,  there was a <s> cat\n\t named Lily. 123456 it's ü é 日本 😀 </s> \xc2\xa0";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gptqw;
  gptqw_fuzz::write_file(file(), data, size);
  gptqw_fuzz::expect_rejection([&] {
    HfTokenizer tok(file());
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::string_view tail = input.substr(size > 48 ? size - 48 : 0);
    // Made valid (U+FFFD for bad bytes): encode() refuses invalid UTF-8, which is tested apart.
    std::string text = std::string(kFixed) + unicode::to_valid_utf8(tail);
    gptqw_fuzz::check_encode_decode(tok, text);
    // The whole input as text too: added-token matching, normalizers and pre-tokenizers then
    // run on up to max_len bytes, where a superlinear step shows (the per-input time limit).
    gptqw_fuzz::check_encode_decode(tok, unicode::to_valid_utf8(input));
    gptqw_fuzz::expect_rejection([&] { (void)tok.encode("bad \xff utf8"); });
    (void)tok.encode("");
    (void)tok.bos_id();
    (void)tok.eos_id();
    (void)tok.kind();
    for (int32_t id : {0, 1, 2, tok.vocab_size() - 1, tok.vocab_size(), -1})
      (void)tok.token_to_id(tok.id_to_token(id));
    const int32_t few[] = {-5, 0, 3, 2147483647};
    (void)tok.decode(few);
  });
  return 0;
}
