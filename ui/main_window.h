// The workbench's main window.
#pragma once

#include <QMainWindow>

namespace gptqw::ui {

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
};

}  // namespace gptqw::ui
