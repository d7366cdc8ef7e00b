// gptq-workbench: the desktop application.
//   gptq-workbench [--model DIR|FILE.bin] [--calib FILE] [--eval FILE] [--report FILE.json] [--run]
// opens with those inputs loaded; --run starts the GPTQ/RTN comparison once the model is loaded.
#include <QApplication>
#include <QBuffer>
#include <QCommandLineParser>
#include <QDir>
#include <QIcon>
#include <QThread>
#include <cstdio>

#include "common/error.h"
#include "common/output_file.h"
#include "main_window.h"
#include "advisor_page.h"
#include "generate_page.h"
#include "results_view.h"
#include "run_session.h"
#include "palette.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("GPTQ Workbench");
  QApplication::setOrganizationName("gptq-workbench");
  QApplication::setApplicationVersion(GPTQW_VERSION);
  QApplication::setWindowIcon(QIcon::fromTheme("gptq-workbench"));
  QApplication::setDesktopFileName("gptq-workbench");

  QCommandLineParser cli;
  cli.setApplicationDescription("GPTQ Workbench: post-training quantization of Llama-family models");
  cli.addHelpOption();
  cli.addVersionOption();
  const QCommandLineOption model({"m", "model"}, "Model folder (Hugging Face) or llama2.c .bin.", "path");
  const QCommandLineOption calib({"c", "calib"}, "Calibration text file.", "file");
  const QCommandLineOption eval({"e", "eval"}, "Evaluation text file (perplexity).", "file");
  const QCommandLineOption report("report", "Open a report written by gptqw.", "file");
  const QCommandLineOption run("run", "Start the GPTQ/RTN comparison once the model is loaded.");
  const QCommandLineOption shots("screenshots",
                                 "When the run (or the report) is shown, save a PNG of every view "
                                 "into this folder and quit (tools/screenshots.sh).", "dir");
  const QCommandLineOption exit_loaded("exit-after-load",
                                       "Quit once the model (or report) is loaded: exit code 0, "
                                       "or 1 after an error (for scripted checks).");
  cli.addOptions({model, calib, eval, report, run, shots, exit_loaded});
  cli.process(app);

  gptqw::ui::MainWindow w;
  w.show();
  if (cli.isSet(calib)) w.setCalibrationFile(cli.value(calib));
  if (cli.isSet(eval)) w.setEvalFile(cli.value(eval));
  if (cli.isSet(model)) w.openModel(cli.value(model));
  else if (cli.isSet(report)) w.openReport(cli.value(report));
  if (cli.isSet(run)) w.runWhenReady();
  if (cli.isSet(exit_loaded)) {
    QObject::connect(w.session(), &gptqw::ui::RunSession::modelLoaded, &app, [] { QApplication::exit(0); });
    QObject::connect(w.session(), &gptqw::ui::RunSession::reportOpened, &app, [] { QApplication::exit(0); });
    QObject::connect(&w, &gptqw::ui::MainWindow::errorShown, &app, [](const QString& message) {
      std::fprintf(stderr, "gptq-workbench: %s\n", qPrintable(message));
      QApplication::exit(1);
    });
  }
  if (cli.isSet(shots)) {
    const QString dir = cli.value(shots);
    auto save_all = [&w, &app, dir] {
      QDir().mkpath(dir);
      auto shoot = [&](const QString& name) {
        QApplication::processEvents();
        QThread::msleep(200);
        QApplication::processEvents();
        // Through the output rules (common/output_file.h): never through a link, never over an
        // input, a temporary beside the file renamed into place.
        const QString file = QDir(dir).filePath(name + ".png");
        QByteArray png;
        QBuffer buffer(&png);
        buffer.open(QIODevice::WriteOnly);
        try {
          if (!w.grab().save(&buffer, "PNG")) throw gptqw::Error("cannot encode the picture");
          gptqw::write_file_atomically(file.toStdString(),
                                       std::string_view(png.constData(), size_t(png.size())));
        } catch (const gptqw::Error& e) {
          qWarning("cannot write %s: %s", qPrintable(file), e.what());
        }
      };
      // Each view in turn: switch, let it paint, grab the whole window.
      const QStringList names = {"layers",  "error",    "hessian", "memory", "perplexity",
                                 "quality", "generate", "advisor", "log"};
      for (int i = 0; i < names.size(); ++i) {
        w.results()->tabs()->setCurrentIndex(i);
        shoot(names[i]);
      }
      // A small screen (Run and Cancel must stay in view) and a dark palette.
      w.results()->tabs()->setCurrentIndex(0);
      w.resize(1024, 700);
      shoot("small-1024x700");
      app.setPalette(gptqw::ui::darkPalette());
      w.resize(1600, 1000);
      w.results()->tabs()->setCurrentIndex(4);
      shoot("perplexity-dark");
      QApplication::quit();
    };
    // Queued: the pictures are taken once the job has ended and the window is idle again.
    // After a run, the Generate view gets its side-by-side continuations first.
    QObject::connect(w.session(), &gptqw::ui::RunSession::runFinished, &w, [&w] {
      w.results()->generate()->setPrompts("Once upon a time\nThe little dog");
      w.results()->generate()->generate();
    }, Qt::QueuedConnection);
    // Then the Advisor view measures each unit's sensitivity and checks its plans.
    QObject::connect(w.session(), &gptqw::ui::RunSession::generationsReady, &w, [&w] {
      w.results()->advisor()->setMeasureOptions("3.5, 4, 5", "2:32 3:32 4:32 8:32", 8, true, true);
      if (!w.startAdvice()) QApplication::exit(1);
    }, Qt::QueuedConnection);
    QObject::connect(w.session(), &gptqw::ui::RunSession::adviceReady, &w, save_all, Qt::QueuedConnection);
    QObject::connect(w.session(), &gptqw::ui::RunSession::reportOpened, &w, [&w, save_all] {
      if (!w.session()->advice()) save_all();  // else once adviceReady (emitted with it) is handled
    }, Qt::QueuedConnection);
    QObject::connect(w.session(), &gptqw::ui::RunSession::runFailed, &app, [] { QApplication::exit(1); });
  }
  return app.exec();
}
