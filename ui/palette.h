// The window's dark palette: for the screenshots' dark variant and the tests that check the
// views follow the palette.
#pragma once

#include <QPalette>

namespace gptqw::ui {

QPalette darkPalette();

}  // namespace gptqw::ui
