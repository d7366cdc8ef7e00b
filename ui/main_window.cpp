#include "main_window.h"

#include <QLabel>

namespace gptqw::ui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle(tr("GPTQ Workbench"));
  setCentralWidget(new QLabel(tr("GPTQ Workbench"), this));
  setMinimumSize(800, 500);
}

}  // namespace gptqw::ui
