// Round to nearest (RTN): the quantizer applied to W directly, one grid per row or per row and
// group of columns, no use of activations. The baseline GPTQ is measured against.
#pragma once

#include "quant/quantizer.h"

namespace gptqw {

// W is [out_features, in_features]. Groups run over consecutive input channels; g_idx[k] =
// k / group_size (all 0 without groups). Throws ConfigError for a bad config.
QuantizedWeights rtn_quantize(const Eigen::Ref<const Matrix>& W, const QuantConfig& config);

}  // namespace gptqw
