#include "palette.h"

#include <QColor>

namespace gptqw::ui {

QPalette darkPalette() {
  QPalette p;
  p.setColor(QPalette::Window, QColor(0x2b, 0x2b, 0x2b));
  p.setColor(QPalette::WindowText, QColor(0xe0, 0xe0, 0xe0));
  p.setColor(QPalette::Base, QColor(0x1e, 0x1e, 0x1e));
  p.setColor(QPalette::Text, QColor(0xe0, 0xe0, 0xe0));
  p.setColor(QPalette::Button, QColor(0x35, 0x35, 0x35));
  p.setColor(QPalette::ButtonText, QColor(0xe0, 0xe0, 0xe0));
  p.setColor(QPalette::Highlight, QColor(0x3d, 0xae, 0xe9));
  return p;
}

}  // namespace gptqw::ui
