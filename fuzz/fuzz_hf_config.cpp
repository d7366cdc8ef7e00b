// Hugging Face config.json: nlohmann parse, parse_hf_config(), and what callers compute from
// the result (parameter_count() feeds the model summary and the report).
#include <cstdint>

#include "common/json.h"
#include "fuzz_util.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gptqw_fuzz::expect_rejection([&] {
    nlohmann::json j = gptqw::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "input.json");
    gptqw::ModelConfig c = gptqw::parse_hf_config(j, "config.json");
    (void)c.parameter_count();
    (void)c.raw.dump();
  });
  return 0;
}
