// llama2.c checkpoint (.bin): the input is the file; an accepted checkpoint then hands out
// every tensor (all of them lie inside the file, whose size the header must match).
#include <cstdint>

#include "fuzz_util.h"
#include "io/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace gptqw;
  static const std::filesystem::path file = gptqw_fuzz::scratch_dir("llama2c") / "model.bin";
  gptqw_fuzz::write_file(file, data, size);
  gptqw_fuzz::expect_rejection([&] {
    Llama2cCheckpoint ck(file);
    (void)ck.tensors();
    (void)ck.config().parameter_count();
    (void)ck.embedding();
    (void)ck.final_norm();
    (void)ck.lm_head();
    for (int i = 0; i < ck.config().num_layers; ++i) (void)ck.block(i);
  });
  return 0;
}
