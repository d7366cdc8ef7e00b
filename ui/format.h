// Numbers as the window shows them: sizes in binary units, counts with a unit suffix.
#pragma once

#include <QString>
#include <cstdint>

namespace gptqw::ui {

// "1.23 MiB", "17 B" (binary units, as the CLI prints sizes).
QString formatBytes(uint64_t bytes);
// "6.74 B", "260.0 K".
QString formatCount(int64_t n);

}  // namespace gptqw::ui
