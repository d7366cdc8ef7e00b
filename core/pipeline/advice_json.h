// The advisor's findings in a report (report.advice): the candidates, each unit's sensitivity
// (a KL divergence of null where a loader refuses the setting), the plans and the uniform
// settings with what checking them measured. Read back field by field through JsonFields, so
// that a damaged file is named with the field.
#pragma once

#include <nlohmann/json.hpp>

#include "common/json_fields.h"
#include "pipeline/advice.h"

namespace gptqw {

nlohmann::json to_json(const Advice& a);
Advice advice_from_json(const JsonFields& f);

// A setting as written in reports and on the command line: "4:128", "3:-1", "fp16".
std::string choice_text(const PrecisionChoice& c);
// Throws ConfigError naming the text for anything else (bits 2, 3, 4, 8; group -1 or 16..4096).
PrecisionChoice parse_choice(const std::string& text);

}  // namespace gptqw
