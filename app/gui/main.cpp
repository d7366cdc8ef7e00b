// gptq-workbench: the desktop application.
#include <QApplication>

#include "main_window.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("GPTQ Workbench");
  QApplication::setOrganizationName("gptq-workbench");
  QApplication::setApplicationVersion(GPTQW_VERSION);
  gptqw::ui::MainWindow w;
  w.show();
  return app.exec();
}
