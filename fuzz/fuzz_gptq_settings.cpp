// GPTQ quantize_config.json (and config.json's quantization_config): GptqSettings::from_json,
// then what the loader and the exporter do with the settings.
#include <cstdint>

#include "common/json.h"
#include "fuzz_util.h"
#include "io/gptq_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using gptqw::GptqSettings;
  gptqw_fuzz::expect_rejection([&] {
    nlohmann::json j = gptqw::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "input.json");
    gptqw_fuzz::expect_rejection([&] {
      GptqSettings s = GptqSettings::from_json(j, "quantize_config.json");
      (void)s.skipped_kinds();
      (void)s.to_json().dump();
    });
    // The same object nested as config.json's quantization_config.
    if (j.is_object() && j.contains("quantization_config")) {
      GptqSettings s = GptqSettings::from_json(j["quantization_config"], "config.json");
      (void)s.skipped_kinds();
      (void)s.to_json().dump();
    }
  });
  return 0;
}
