// The report JSON the workbench window opens: report_from_json(); an accepted report must
// survive to_json() and read back.
#include <cstdint>

#include "common/json.h"
#include "fuzz_util.h"
#include "pipeline/report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gptqw_fuzz::expect_rejection([&] {
    nlohmann::json j = gptqw::parse_json(std::string_view(reinterpret_cast<const char*>(data), size), "input.json");
    gptqw::Report r = gptqw::report_from_json(j, "report.json");
    std::string text = gptqw::to_json(r).dump(1);
    // Round trip: what we write from an accepted report must be accepted again.
    try {
      gptqw::Report again = gptqw::report_from_json(gptqw::parse_json(text, "again.json"), "again.json");
      if (again.layers.size() != r.layers.size() || again.calib_offsets != r.calib_offsets)
        gptqw_fuzz::finding("report round trip changed the layers or offsets");
    } catch (const std::exception& e) {
      gptqw_fuzz::finding(std::string("accepted report does not read back: ") + e.what());
    }
  });
  return 0;
}
