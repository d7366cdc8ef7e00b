#include "file_dialogs.h"

#include <QCoreApplication>
#include <QFileDialog>
#include <QSettings>

namespace gptqw::ui {

namespace {

enum class Ask { Folder, Open, Save };

struct Question {
  Ask ask;
  const char* key;  // QSettings key of the folder last used
  const char* title;
  const char* filter;
};

Question question(PathKind kind) {
  // The texts: plain text in its usual suffixes; calibration also reads JSONL.
  static const char* const texts = QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs",
                                                     "Text files (*.txt *.raw *.md);;All files (*)");
  switch (kind) {
    case PathKind::ModelFolder:
      return {Ask::Folder, "paths/model", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Open model folder"), ""};
    case PathKind::ModelFile:
      return {Ask::Open, "paths/model", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Open llama2.c checkpoint"),
              QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "llama2.c (*.bin);;All files (*)")};
    case PathKind::CalibrationText:
      return {Ask::Open, "paths/calib", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Calibration text"),
              QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs",
                                "Texts and JSONL (*.txt *.raw *.md *.jsonl);;All files (*)")};
    case PathKind::CalibrationFolder:
      return {Ask::Folder, "paths/calib", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Calibration folder"), ""};
    case PathKind::EvaluationText:
      return {Ask::Open, "paths/eval", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Evaluation text"), texts};
    case PathKind::ReportToOpen:
      return {Ask::Open, "paths/report", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Open report"),
              QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Reports (*.json);;All files (*)")};
    case PathKind::ReportToSave:
      return {Ask::Save, "paths/report", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Save report"),
              QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Reports (*.json)")};
    case PathKind::ExportFolder:
      // A save dialog: the checkpoint goes to a folder that does not exist yet.
      return {Ask::Save, "paths/export",
              QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Export GPTQ checkpoint to a new folder"), ""};
    case PathKind::TableCsv:
      return {Ask::Save, "paths/csv", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Export layers table"),
              QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "CSV (*.csv)")};
    case PathKind::PromptsText:
      return {Ask::Open, "paths/prompts", QT_TRANSLATE_NOOP("gptqw::ui::FileDialogs", "Prompts (one per line)"), texts};
  }
  return {Ask::Open, "paths/other", "", ""};
}

QString tr(const char* s) { return QCoreApplication::translate("gptqw::ui::FileDialogs", s); }

}  // namespace

QString askForPath(QWidget* parent, PathKind kind) {
  const Question q = question(kind);
  const QString start = QSettings().value(q.key).toString();
  switch (q.ask) {
    case Ask::Folder:
      return QFileDialog::getExistingDirectory(parent, tr(q.title), start);
    case Ask::Open:
      return QFileDialog::getOpenFileName(parent, tr(q.title), start, tr(q.filter));
    case Ask::Save:
      return QFileDialog::getSaveFileName(parent, tr(q.title), start, tr(q.filter));
  }
  return {};
}

}  // namespace gptqw::ui
