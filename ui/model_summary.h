// The model summary panel's text: architecture, size, attention (head dim, RoPE and its scaling,
// Qwen3's q/k norm), dtype, memory of the weights in fp16, config keys not read, and for a GPTQ
// checkpoint the settings it was quantized with.
#pragma once

#include <QString>

#include "format.h"
#include "io/gptq_checkpoint.h"
#include "pipeline/report.h"

namespace gptqw::ui {

// Rich text for a QLabel. settings: the checkpoint's, when the model is a GPTQ checkpoint.
QString modelSummaryHtml(const ModelSummary& m, const GptqSettings* settings);

}  // namespace gptqw::ui
