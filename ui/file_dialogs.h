// Every file and folder the window asks for, in one table: its title, its filter and the
// settings key that remembers where the user last looked. The inputs panel's browse buttons
// and the menus ask through here, so the same question always shows the same filter.
#pragma once

#include <QString>

class QWidget;

namespace gptqw::ui {

enum class PathKind {
  ModelFolder,        // a Hugging Face folder
  ModelFile,          // a llama2.c .bin
  CalibrationText,    // a text or JSONL file
  CalibrationFolder,  // a folder of .txt files, each one document
  EvaluationText,
  ReportToOpen,
  ReportToSave,
  ExportFolder,  // a new folder for a GPTQ checkpoint
  TableCsv,
  PromptsText,  // one prompt per line
};

// Asks the user; empty when cancelled.
QString askForPath(QWidget* parent, PathKind kind);

}  // namespace gptqw::ui
