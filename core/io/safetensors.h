// safetensors: memory-mapped, zero-copy reading of single files and sharded checkpoints, and
// a writer for export. Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data buffer; offsets are relative to the buffer. All tensors are row-major.
// Each part has its own header, all included here: tensor_view.h (dtypes, tensor views and
// their conversion to fp32), safetensors_file.h (one mapped file and the header parser),
// safetensors_checkpoint.h (a file or a sharded folder with its index) and safetensors_writer.h.
#pragma once

#include "io/safetensors_checkpoint.h"
#include "io/safetensors_file.h"
#include "io/safetensors_writer.h"
#include "io/tensor_view.h"
