// The workbench window driven as a user drives it, offscreen: load stories260K, run GPTQ and
// RTN at 4-bit g32, watch the layers stream in, check the table, charts and perplexity against
// the engine (the CLI run with the same settings), export and re-import the checkpoint, cancel a
// run, open a saved report, show an error for a corrupt model, calibrate from a folder of .txt
// files and a JSONL file, and show Llama 3's RoPE scaling and Qwen3's q/k norm in the summary.
#include <QAbstractItemModelTester>
#include <QAction>
#include <QClipboard>
#include <QKeyEvent>
#include <QLineEdit>
#include <QScreen>
#include <QDir>
#include <QFile>
#include <QApplication>
#include <QJsonDocument>
#include <QMimeData>
#include <QJsonObject>
#include <QLabel>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableView>
#include <QTimer>
#include <fstream>

#include "backend/backend.h"
#include "io/synthetic_model.h"
#include "layer_filter_model.h"
#include "layer_table_model.h"
#include "main_window.h"
#include "generate_page.h"
#include "calibration_matrix_model.h"
#include "inputs_panel.h"
#include "plots/grouped_bar_chart.h"
#include "quality_page.h"
#include "quality_table_model.h"
#include "results_pages.h"
#include "results_view.h"
#include "run_session.h"
#include "model/model.h"
#include "pipeline/perplexity.h"
#include "plots/error_chart.h"
#include "plots/hessian_chart.h"
#include "plots/memory_chart.h"
#include "plots/perplexity_chart.h"
#include "settings_form.h"
#include "test_support.h"

using namespace gptqw;
using namespace gptqw::ui;
using test::qpath;

namespace {

QString model_dir() { return qpath(test::stories_dir()); }
QString text(const char* name) { return qpath(test::data(std::string("text/") + name)); }

// The small run every test uses: 4-bit g32, 16 x 256 calibration tokens, 24 evaluation windows.
void configure(MainWindow& w) {
  SettingsForm* f = w.inputs()->settingsForm();
  f->setBits(4);
  f->setGroupSize(32);
  f->setActOrder(false);
  f->setSamples(16, 256);
  f->setEvalWindows(512, 24);
  w.setCalibrationFile(text("tinystories-sample.txt"));
  w.setEvalFile(text("tinystories-sample.txt"));
}

void load(MainWindow& w, const QString& dir) {
  QSignalSpy loaded(w.session(), &RunSession::modelLoaded);
  w.openModel(dir);
  QVERIFY(loaded.wait(30000));
}

// A text field that takes every shortcut key for itself.
class ClaimingEdit : public QLineEdit {
 public:
  using QLineEdit::QLineEdit;
  bool event(QEvent* e) override {
    if (e->type() == QEvent::ShortcutOverride) {
      e->accept();
      return true;
    }
    return QLineEdit::event(e);
  }
};

// Closes the error dialogs a test provoked (they are non-modal).
int close_message_boxes(QWidget& w) {
  int n = 0;
  for (QMessageBox* box : w.findChildren<QMessageBox*>()) {
    if (!box->isVisible()) continue;
    ++n;
    box->close();
  }
  return n;
}

}  // namespace

class TestMainWindow : public QObject {
  Q_OBJECT
  QTemporaryDir m_tmp;

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);  // QSettings go to a scratch location
    QCoreApplication::setOrganizationName("gptq-workbench-test");
    QSettings().clear();
    QVERIFY(m_tmp.isValid());
  }

  void runStreamsLayersAndMatchesTheEngine() {
    MainWindow w;
    w.show();
    configure(w);
    load(w, model_dir());
    QVERIFY(w.session()->model().has_value());
    QVERIFY(w.inputs()->settingsForm()->runProblems().isEmpty());

    QAbstractItemModelTester table_tester(w.results()->layers()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester filter_tester(w.results()->layers()->filter(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester quality_tester(w.results()->quality()->model(), QAbstractItemModelTester::FailureReportingMode::QtTest);
    // Rows arrive one by one while the run is going, not all at the end.
    int rows_while_running = 0;
    connect(w.results()->layers()->model(), &QAbstractItemModel::rowsInserted, this, [&] {
      if (w.session()->busy()) ++rows_while_running;
    });
    QSignalSpy finished(w.session(), &RunSession::runFinished);
    QVERIFY(w.startRun());
    QVERIFY(w.session()->busy());
    QVERIFY(finished.wait(600000));
    QCOMPARE(rows_while_running, 20);

    // One row per quantized linear layer: 5 blocks x the 4 attention modules (the MLP's
    // 172-wide modules stay in fp16: GPTQ loaders could not load them quantized).
    const int rows = w.results()->layers()->model()->rowCount();
    QCOMPARE(rows, 20);
    QVERIFY(w.session()->report().has_value());
    const Report& r = *w.session()->report();
    QCOMPARE(int(r.layers.size()), 20);
    // Results and form agree; a changed setting marks the results as made with other ones.
    QVERIFY(w.results()->staleText().isEmpty());
    w.inputs()->settingsForm()->setBits(3);
    QVERIFY2(w.results()->staleText().contains("4-bit"), qPrintable(w.results()->staleText()));
    w.inputs()->settingsForm()->setBits(4);
    QVERIFY(w.results()->staleText().isEmpty());
    QCOMPARE(int(r.kept_for_loaders.size()), 3);
    double gptq = 0, rtn = 0;
    for (const LayerReport& l : r.layers) gptq += l.gptq_rel_error, rtn += l.rtn_rel_error;
    QVERIFY2(gptq < rtn, qPrintable(QString("mean GPTQ error %1 vs RTN %2").arg(gptq / 20).arg(rtn / 20)));
    QCOMPARE(w.results()->errors()->chart()->pointCount(), 20);
    QVERIFY(w.results()->memory()->chart()->pointCount() > 0);
    QCOMPARE(w.results()->hessian()->chart()->pointCount(), int(r.layers[0].in_features));

    // Selecting a row selects that layer in the charts.
    const int row = 11;  // block 2, o_proj -> pick via the table
    w.results()->layers()->view()->selectRow(row);
    const LayerReport& picked = w.results()->layers()->model()->layer(w.results()->layers()->filter()->mapToSource(w.results()->layers()->filter()->index(row, 0)).row());
    QCOMPARE(w.results()->hessian()->chart()->pointCount(), int(picked.in_features));

    // Exported charts say what they show: the model and the settings, in their title.
    const QString caption = w.results()->errors()->chart()->exportCaption();
    QVERIFY2(caption.contains("stories260K") && caption.contains(QString::fromStdString(r.options.gptq.quant.describe())) &&
                 caption.contains("16 x 256 tokens of tinystories-sample.txt"),
             qPrintable(caption));
    const QString svg = m_tmp.filePath("errors.svg");
    QVERIFY(w.results()->errors()->chart()->saveSvg(svg));
    QFile svg_file(svg);
    QVERIFY(svg_file.open(QIODevice::ReadOnly));
    QVERIFY(svg_file.readAll().contains("stories260K"));

    // The menus' shortcuts win over a focused text field: Ctrl+E exports wherever the focus is.
    // A field that claims the key for itself (a line edit does, as "end of line", under X11's
    // key bindings) does not get it inside the window, and does outside (the control).
    ClaimingEdit* inside = new ClaimingEdit(w.results()->layers());
    QKeyEvent in_window(QEvent::ShortcutOverride, Qt::Key_E, Qt::ControlModifier);
    in_window.ignore();
    QApplication::sendEvent(inside, &in_window);
    QVERIFY(!in_window.isAccepted());
    ClaimingEdit alone;
    QKeyEvent control(QEvent::ShortcutOverride, Qt::Key_E, Qt::ControlModifier);
    control.ignore();
    QApplication::sendEvent(&alone, &control);
    QVERIFY(control.isAccepted());

    // Perplexity chart: original, RTN, GPTQ, the values of the run...
    QVERIFY(r.perplexity.has_value());
    const QList<double> shown = w.results()->perplexity()->chart()->values();
    QCOMPARE(shown.size(), 3);
    QCOMPARE(shown[0], *r.perplexity->original);
    QCOMPARE(shown[1], *r.perplexity->rtn);
    QCOMPARE(shown[2], *r.perplexity->gptq);
    QVERIFY(*r.perplexity->gptq < *r.perplexity->rtn);
    // The Quality view: the original, RTN and GPTQ rows of the text, the same perplexities, and
    // each quantized model's KL divergence, by percentile and by position.
    QualityTableModel* quality = w.results()->quality()->model();
    QCOMPARE(quality->rowCount(), 3);
    QCOMPARE(quality->index(2, QualityTableModel::Perplexity).data(QualityTableModel::SortRole).toDouble(),
             *r.perplexity->gptq);
    QVERIFY(quality->index(2, QualityTableModel::Perplexity).data().toString().contains(" ± "));
    QCOMPARE(quality->index(1, QualityTableModel::KldMean).data(QualityTableModel::SortRole).toDouble(),
             r.quality[0].find("rtn")->vs_original.kld.value);
    QVERIFY(r.quality[0].find("gptq")->vs_original.kld.value < r.quality[0].find("rtn")->vs_original.kld.value);
    QCOMPARE(w.results()->quality()->distributionChart()->pointCount(), 12);  // 2 models x 6 levels
    QCOMPARE(w.results()->quality()->positionChart()->categories(), (QStringList{"0–127", "128–511"}));
    // ...which are the engine's: the CLI with the same settings prints the same numbers.
    auto cli = test::run_cli({"compare", "--model", model_dir(), "--calib", text("tinystories-sample.txt"),
                              "--bits", "4", "--group-size", "32", "--nsamples", "16", "--seqlen", "256",
                              "--eval", text("tinystories-sample.txt"), "--eval-seqlen", "512",
                              "--eval-max-windows", "24", "--json"});
    QCOMPARE(cli.exit_code, 0);
    QJsonObject ppl = QJsonDocument::fromJson(cli.out).object()["perplexity"].toObject();
    QCOMPARE(ppl["original"].toDouble(), shown[0]);
    QCOMPARE(ppl["rtn"].toDouble(), shown[1]);
    QCOMPARE(ppl["gptq"].toDouble(), shown[2]);

    // Export writes a checkpoint that re-imports and evaluates to the GPTQ perplexity.
    const QString out = m_tmp.filePath("export");
    QSignalSpy exported(w.session(), &RunSession::exportFinished);
    QVERIFY(w.session()->canExport());
    QVERIFY(w.exportCheckpoint(out, false));
    QVERIFY(exported.wait(120000));
    Model back = load_model(out.toStdString());
    QCOMPARE(QString::fromStdString(back.weights->format()), QString("gptq"));
    PerplexityOptions popt;
    popt.seqlen = 512;
    popt.max_windows = 24;
    const double reimported = perplexity_of_file(back, text("tinystories-sample.txt").toStdString(), popt).ppl;
    QVERIFY2(std::abs(reimported / *r.perplexity->gptq - 1) < 1e-4,
             qPrintable(QString("%1 vs %2").arg(reimported).arg(*r.perplexity->gptq)));
    {
      // The exported checkpoint opened in a window: its Run button evaluates it (it cannot be
      // quantized again), to the same perplexity, shown as the GPTQ bar.
      MainWindow ckpt;
      ckpt.show();
      configure(ckpt);
      load(ckpt, out);
      QPushButton* run = nullptr;
      for (QPushButton* b : ckpt.findChildren<QPushButton*>())
        if (b->text().startsWith("Evaluate")) run = b;
      QVERIFY(run && run->isEnabled());
      QSignalSpy evaluated(ckpt.session(), &RunSession::evaluationFinished);
      run->click();
      QVERIFY(evaluated.wait(120000));
      QCOMPARE(evaluated.first().first().toDouble(), reimported);
      QCOMPARE(ckpt.results()->perplexity()->chart()->values(), QList<double>{reimported});
    }

    // No silent overwrite: a second export to the same folder is refused with a dialog.
    QSignalSpy errors(&w, &MainWindow::errorShown);
    QVERIFY(w.exportCheckpoint(out, false));
    QVERIFY(errors.wait(60000));
    QVERIFY2(errors.first().first().toString().contains(out), qPrintable(errors.first().first().toString()));
    QCOMPARE(close_message_boxes(w), 1);
    QTRY_VERIFY(!w.session()->busy());

    // The replace confirmation follows gptqw --force's rule: this export may be replaced; a
    // folder of other files, or a link, may not, and the window says why instead of asking.
    // (`out` itself was opened as a model above, so it is an input of this process now, and
    // never replaced; a copy of it is an export like any other.)
    QVERIFY(w.session()->exportReplaceRefusal(out).contains("source model folder"));
    const QString copy = m_tmp.filePath("export-copy");
    QDir().mkpath(copy);
    for (const QString& f : QDir(out).entryList(QDir::Files)) QVERIFY(QFile::copy(out + "/" + f, copy + "/" + f));
    QVERIFY2(w.session()->exportReplaceRefusal(copy).isEmpty(), qPrintable(w.session()->exportReplaceRefusal(copy)));
    const QString docs = m_tmp.filePath("documents");
    QDir().mkpath(docs);
    { QFile f(docs + "/notes.txt"); QVERIFY(f.open(QIODevice::WriteOnly)); f.write("mine"); }
    QVERIFY2(w.session()->exportReplaceRefusal(docs).contains("is not replaced"), qPrintable(w.session()->exportReplaceRefusal(docs)));
    QVERIFY(QFile::link(out, m_tmp.filePath("link-to-export")));
    QVERIFY(w.session()->exportReplaceRefusal(m_tmp.filePath("link-to-export")).contains("symbolic link"));
    // The window's saves follow the output rules too: nothing is written into the model folder.
    errors.clear();
    QVERIFY(!w.exportTableCsv(model_dir() + "/layers.csv"));
    QVERIFY(errors.count() == 1 && errors.first().first().toString().contains("is inside the source model folder"));
    QVERIFY(!w.saveReport(model_dir() + "/report.json"));
    QVERIFY(errors.count() == 2 && errors.last().first().toString().contains("is inside the source model folder"));
    QCOMPARE(close_message_boxes(w), 2);

    // CSV of the table and the report, then the report opens in a fresh window as if run there.
    QVERIFY(w.exportTableCsv(m_tmp.filePath("layers.csv")));
    const QString report_file = m_tmp.filePath("report.json");
    QSignalSpy saved(w.session(), &RunSession::reportSaved);
    QVERIFY(w.saveReport(report_file));  // written on a worker thread
    QVERIFY(saved.wait(30000));
    MainWindow viewer;
    viewer.show();
    QSignalSpy opened(viewer.session(), &RunSession::reportOpened);
    viewer.openReport(report_file);
    QVERIFY(opened.wait(30000));
    // No model loaded: the summary shows the report's model and says where it comes from.
    QVERIFY2(viewer.inputs()->modelSummaryText().contains("From the report report.json"),
             qPrintable(viewer.inputs()->modelSummaryText()));
    QCOMPARE(viewer.results()->layers()->model()->rowCount(), 20);
    QCOMPARE(viewer.results()->errors()->chart()->pointCount(), 20);
    QCOMPARE(int(viewer.session()->report()->kept_for_loaders.size()), 3);
    QCOMPARE(viewer.results()->perplexity()->chart()->values(), shown);
    QVERIFY(!viewer.session()->canExport());  // a report holds no weights
  }

  // A report's windows run again in another window, whatever that window's sample settings say.
  void rerunOnAReportsWindows() {
    MainWindow w;
    w.show();
    configure(w);
    w.inputs()->settingsForm()->setSamples(8, 128);
    w.inputs()->settingsForm()->setSeed(5);
    QVERIFY(w.inputs()->settingsForm()->setDevice(Device::cpu));
    load(w, model_dir());
    QSignalSpy finished(w.session(), &RunSession::runFinished);
    QVERIFY(w.startRun());
    QVERIFY(finished.wait(300000));
    // The Device box reached the run: asked for and used.
    QCOMPARE(w.session()->report()->options.device, Device::cpu);
    QCOMPARE(w.session()->report()->backend, std::string("cpu"));
    const QString report_file = m_tmp.filePath("rerun-report.json");
    QSignalSpy saved(w.session(), &RunSession::reportSaved);
    QVERIFY(w.saveReport(report_file));
    QVERIFY(saved.wait(30000));

    MainWindow again;
    again.show();
    configure(again);
    again.inputs()->settingsForm()->setSamples(4, 64);
    again.inputs()->settingsForm()->setSeed(99);
    load(again, model_dir());
    QSignalSpy opened(again.session(), &RunSession::reportOpened);
    again.openReport(report_file);
    QVERIFY(opened.wait(30000));
    QTRY_VERIFY(!again.session()->busy());
    QSignalSpy again_finished(again.session(), &RunSession::runFinished);
    QVERIFY(again.rerunOnReportWindows());
    QVERIFY(again_finished.wait(300000));
    QCOMPARE(again.session()->report()->calib_offsets, w.session()->report()->calib_offsets);
    QCOMPARE(again.session()->report()->seqlen, 128);
    QCOMPARE(again.session()->report()->calib_sha256, w.session()->report()->calib_sha256);
    QCOMPARE(again.inputs()->settingsForm()->spec().seqlen, 128);  // the form shows what ran
    QCOMPARE(again.session()->report()->perplexity->gptq, w.session()->report()->perplexity->gptq);
  }

  void cancelLeavesTheWindowUsable() {
    MainWindow w;
    w.show();
    configure(w);
    w.inputs()->settingsForm()->setSamples(128, 256);  // long enough to cancel in the middle
    load(w, model_dir());
    QSignalSpy cancelled(w.session(), &RunSession::runCancelled);
    QSignalSpy inserted(w.results()->layers()->model(), &QAbstractItemModel::rowsInserted);
    QVERIFY(w.startRun());
    QVERIFY(inserted.wait(120000));  // the first layer is in
    QElapsedTimer t;
    t.start();
    w.cancel();
    QVERIFY(cancelled.wait(10000));
    QVERIFY2(t.elapsed() < 5000, qPrintable(QString("cancel took %1 ms").arg(t.elapsed())));
    QVERIFY(!w.session()->busy());
    QCOMPARE(w.results()->layers()->model()->rowCount(), 0);  // nothing half-shown is kept
    QVERIFY(!w.session()->report().has_value());
    QVERIFY(!w.session()->canExport());
    // Usable: a new run starts (and is cancelled again at once to keep the test short).
    QVERIFY(w.startRun());
    w.cancel();
    QVERIFY(cancelled.wait(30000));
    QVERIFY(!w.session()->busy());
  }

  // One bar for the whole run: it never goes back when a stage ends and the next begins
  // (calibration, GPTQ, the perplexity passes). A cancel during the perplexity passes keeps
  // the finished quantization (exportable, no perplexity). The next run leaves these results
  // on screen until its own first layer arrives.
  void oneProgressAndCancelKeepsTheQuantization() {
    MainWindow w;
    w.show();
    configure(w);
    w.inputs()->settingsForm()->setEvalWindows(512, 0);  // the whole text: a long evaluation to cancel
    load(w, model_dir());
    QProgressBar* bar = w.findChild<QProgressBar*>();
    QVERIFY(bar);
    QList<int> values;
    connect(bar, &QProgressBar::valueChanged, this, [&](int v) { values << v; });
    QSignalSpy finished(w.session(), &RunSession::runFinished);
    QVERIFY(w.startRun());
    QTRY_VERIFY_WITH_TIMEOUT(w.statusText().startsWith("evaluate"), 300000);
    const int at_eval = values.isEmpty() ? 0 : values.last();
    // The quantization's share is already on the bar (small here: the evaluation of the whole
    // text is most of this run's work).
    QVERIFY2(at_eval > 0 && at_eval < 1000, qPrintable(QString::number(at_eval)));
    w.cancel();
    QVERIFY(finished.wait(60000));
    for (int i = 1; i < values.size(); ++i)
      QVERIFY2(values[i] >= values[i - 1],
               qPrintable(QString("the bar went back from %1 to %2").arg(values[i - 1]).arg(values[i])));
    QVERIFY(w.session()->report().has_value());
    QVERIFY(w.session()->report()->evaluation_cancelled && !w.session()->report()->perplexity);
    QCOMPARE(int(w.session()->report()->layers.size()), 20);
    QVERIFY(w.session()->canExport());
    QVERIFY2(w.statusText().contains("evaluation skipped"), qPrintable(w.statusText()));

    w.setEvalFile(QString());
    QVERIFY(w.startRun());
    QCOMPARE(w.results()->layers()->model()->rowCount(), 20);  // still the previous run's rows
    QVERIFY(w.session()->report().has_value());
    QVERIFY(finished.wait(300000));
    QCOMPARE(w.results()->layers()->model()->rowCount(), 20);
    QVERIFY(!w.session()->report()->evaluation_cancelled);
  }

  void sessionRunsWithoutAWindow() {
    // The session owns the data and the jobs and needs no widget: it runs, streams its layers
    // and hands the report over through signals alone.
    RunSession session;
    QSignalSpy loaded(&session, &RunSession::modelLoaded);
    session.openModel(model_dir());
    QVERIFY(loaded.wait(30000));
    session.setCalibrationFile(text("tinystories-sample.txt"));
    QSignalSpy layers(&session, &RunSession::layerAdded);
    QSignalSpy ready(&session, &RunSession::reportReady);
    QSignalSpy cleared(&session, &RunSession::resultsCleared);
    QSignalSpy finished(&session, &RunSession::runFinished);
    RunSpec spec;
    spec.options.gptq.quant.group_size = 32;
    spec.nsamples = 8;
    spec.seqlen = 128;
    QVERIFY(session.startRun(spec));
    QVERIFY(!session.startRun(spec));  // one run at a time
    QVERIFY(finished.wait(300000));
    QCOMPARE(layers.count(), 20);
    QCOMPARE(ready.count(), 1);
    QVERIFY(session.report() && session.canExport());
    QCOMPARE(int(session.report()->layers.size()), 20);
    // A second run clears the first's results at its first layer, not before.
    const int cleared_before = cleared.count();
    QVERIFY(session.startRun(spec));
    QCOMPARE(cleared.count(), cleared_before);
    QVERIFY(session.report().has_value());
    QVERIFY(finished.wait(300000));
    QCOMPARE(cleared.count(), cleared_before + 1);
    QCOMPARE(layers.count(), 40);
  }

  // The Generate view continues prompts with the run's original, RTN and GPTQ models, side by
  // side; the original's greedy text is the engine's.
  void generateViewComparesTheRunsModels() {
    MainWindow w;
    w.show();
    configure(w);
    w.setEvalFile(QString());
    load(w, model_dir());
    GeneratePage* page = w.results()->generate();
    QCOMPARE(w.session()->generationModels(), QStringList{"stories260K"});  // before a run
    QSignalSpy finished(w.session(), &RunSession::runFinished);
    QVERIFY(w.startRun());
    QVERIFY(finished.wait(300000));
    QCOMPARE(w.session()->generationModels(), (QStringList{"original", "RTN", "GPTQ"}));
    page->setPrompts("Once upon a time\nThe dog");
    QSignalSpy ready(w.session(), &RunSession::generationsReady);
    QVERIFY(page->generate());
    QVERIFY(ready.wait(120000));
    QCOMPARE(w.results()->tabs()->currentIndex(), int(ResultsView::GenerateTab));
    const auto& g = page->generations();
    QCOMPARE(int(g.size()), 4);  // 2 prompts x greedy, sampled
    for (const PromptGenerations& p : g) {
      QCOMPARE(int(p.continuations.size()), 3);
      QCOMPARE(QString::fromStdString(p.continuations[2].model), QString("GPTQ"));
    }
    const Model& m = *w.session()->model();
    const auto ids = m.tokenizer->encode("Once upon a time", true);
    const auto greedy = generate(*m.weights, ids, page->spec().new_tokens, stop_tokens(*m.tokenizer, m.config()));
    QCOMPARE(g[0].continuations[0].tokens, std::vector<int32_t>(greedy.begin() + ids.size(), greedy.end()));
    const QString html = page->resultsHtml();
    QVERIFY(html.contains("reference") && html.contains("Once upon a time"));
    bool parted = false;
    for (const PromptGenerations& p : g)
      for (const Continuation& c : p.continuations) parted |= c.diverges_at_token >= 0;
    // Where a continuation parts from the original's, the view says at which token.
    if (parted) QVERIFY(html.contains("parts at token"));
  }

  // A report of gptqw calibration-matrix opens with its heat map: a row per corpus, a column per
  // text, white for each text's best corpus.
  void qualityViewShowsTheCalibrationMatrix() {
    const QString report = m_tmp.filePath("matrix.json");
    auto m = test::run_cli({"calibration-matrix", "--model", model_dir(), "--calib", text("tinystories-sample.txt"),
                            "--calib", text("code-sample.txt"), "--nsamples", "8", "--seqlen", "128",
                            "--group-size", "32", "--eval", text("tinystories-sample.txt"), "--eval",
                            text("code-sample.txt"), "--eval-seqlen", "256", "--eval-max-windows", "4",
                            "--report", report, "--quiet"});
    QVERIFY2(m.exit_code == 0, m.err.constData());
    MainWindow w;
    QSignalSpy opened(w.session(), &RunSession::reportOpened);
    w.openReport(report);
    QVERIFY(opened.wait(30000));
    CalibrationMatrixModel* heat = w.results()->quality()->matrix();
    QAbstractItemModelTester tester(heat, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(heat->rowCount(), 2);
    QCOMPARE(heat->columnCount(), 2);
    QVERIFY(heat->headerData(1, Qt::Vertical).toString().contains("code-sample.txt"));
    const CalibrationMatrix& cm = *w.session()->report()->calibration_matrix;
    for (int t = 0; t < 2; ++t) {
      const double a = heat->index(0, t).data(CalibrationMatrixModel::ValueRole).toDouble();
      const double b = heat->index(1, t).data(CalibrationMatrixModel::ValueRole).toDouble();
      QCOMPARE(a, cm.values("gptq", "kld")[0][size_t(t)]);
      // The better corpus of the text is white (shade 0), the other shaded by how much worse.
      QCOMPARE(heat->index(a <= b ? 0 : 1, t).data(CalibrationMatrixModel::ShadeRole).toDouble(), 0.0);
      QVERIFY(heat->index(a <= b ? 1 : 0, t).data(CalibrationMatrixModel::ShadeRole).toDouble() > 0);
    }
    heat->setQuantity(CalibrationMatrixModel::Quantity::GptqPerplexity);
    QCOMPARE(heat->index(1, 1).data(CalibrationMatrixModel::ValueRole).toDouble(),
             cm.cells[1][1].find("gptq")->ppl.value);
    // The first corpus's run is the report's: its per-text table is there too.
    QCOMPARE(w.results()->quality()->model()->rowCount(), 6);
  }

  // The path fields take typing and pasting: the path is used when editing ends.
  void pathFieldsAcceptTyping() {
    MainWindow w;
    w.show();
    QLineEdit* model_field = nullptr;
    for (QLineEdit* e : w.inputs()->findChildren<QLineEdit*>())
      if (e->placeholderText().startsWith("Hugging Face folder")) model_field = e;
    QVERIFY(model_field);
    QVERIFY(!model_field->isReadOnly());
    QSignalSpy loaded(w.session(), &RunSession::modelLoaded);
    model_field->setFocus();
    QTest::keyClicks(model_field, model_dir());
    QTest::keyClick(model_field, Qt::Key_Return);
    QVERIFY(loaded.wait(30000));
    QCOMPARE(QString::fromStdString(w.session()->model()->path.string()), model_dir());
    // Pasted text is used the same way.
    QLineEdit* calib_field = nullptr;
    for (QLineEdit* e : w.inputs()->findChildren<QLineEdit*>())
      if (e->placeholderText().startsWith("text or JSONL")) calib_field = e;
    QVERIFY(calib_field);
    calib_field->setFocus();
    QApplication::clipboard()->setText(text("tinystories-sample.txt"));
    calib_field->paste();
    QTest::keyClick(calib_field, Qt::Key_Return);
    QCOMPARE(w.session()->calibrationFile(), text("tinystories-sample.txt"));
    QTRY_VERIFY_WITH_TIMEOUT(w.inputs()->calibrationInfo().contains("tokens"), 30000);
  }

  // The window fits the screen it opens on, a geometry saved on a larger screen included.
  void windowFitsTheScreen() {
    {
      MainWindow big;
      big.resize(5000, 4000);
      big.close();  // saves the geometry
    }
    MainWindow w;
    w.show();
    const QRect avail = w.screen()->availableGeometry();
    QVERIFY2(w.width() <= avail.width() && w.height() <= avail.height(),
             qPrintable(QString("%1x%2 on a %3x%4 screen").arg(w.width()).arg(w.height())
                            .arg(avail.width()).arg(avail.height())));
  }

  // The lines under the texts follow the form: the calibration windows when seqlen changes, the
  // evaluation's size, tokens, windows and estimated time; an empty file is called empty.
  void infoLinesFollowTheForm() {
    MainWindow w;
    w.show();
    configure(w);
    load(w, model_dir());
    auto line = [&](const QString& needle) {
      for (QLabel* l : w.findChildren<QLabel*>())
        if (l->text().contains(needle)) return l->text();
      return QString();
    };
    QTRY_VERIFY_WITH_TIMEOUT(!line("windows of 256").isEmpty(), 30000);
    QTRY_VERIFY_WITH_TIMEOUT(!line("perplexity passes, about").isEmpty(), 30000);
    QVERIFY2(line("perplexity passes").contains("24 windows of 512; 3 perplexity passes"),
             qPrintable(line("perplexity passes")));
    w.inputs()->settingsForm()->setSamples(16, 128);
    QTRY_VERIFY(!line("windows of 128").isEmpty());
    w.inputs()->settingsForm()->setEvalWindows(256, 10);
    QTRY_VERIFY(!line("10 windows of 256").isEmpty());
    const QString empty = m_tmp.filePath("empty.txt");
    { QFile f(empty); QVERIFY(f.open(QIODevice::WriteOnly)); }
    QSignalSpy errors(&w, &MainWindow::errorShown);
    w.setCalibrationFile(empty);
    QVERIFY(errors.wait(30000));
    QTRY_VERIFY(!line("file is empty").isEmpty());
    QVERIFY(line("unreadable").isEmpty());
    close_message_boxes(w);
  }

  // The GPU probe (it creates a CUDA context, seconds) runs off the GUI thread: the form exists
  // at once, and the GPU entry becomes selectable only where a CUDA device answered.
  void deviceProbeAnswersLater() {
    SettingsForm f;
    QTRY_VERIFY(f.gpuProbed());
    const bool gpu = cuda_backend_or_null(nullptr) != nullptr;
    QCOMPARE(f.setDevice(Device::cuda), gpu);
    QCOMPARE(f.spec().options.device, gpu ? Device::cuda : Device::auto_);
    QVERIFY(f.setDevice(Device::cpu));
    QCOMPARE(f.spec().options.device, Device::cpu);
  }

  // The notes under the form are one line per kind of problem, in the window's words (no
  // command-line flags), the modules behind "details"; Run and Cancel stay in view at
  // 1024 x 700 however long the notes are.
  void notesAreOneLinePerKindAndRunStaysInView() {
    MainWindow w;
    w.resize(1024, 700);
    w.show();
    configure(w);
    load(w, model_dir());
    SettingsForm* f = w.inputs()->settingsForm();
    // Group size 128 (the default): no module of the sample model could be loaded quantized;
    // the form says so with its own controls, not the command line's flags.
    f->setGroupSize(128);
    QTRY_VERIFY(!f->runProblems().isEmpty());
    const QString stop = f->runProblems().join("\n");
    QVERIFY2(stop.contains("Quantize modules loaders cannot read") && !stop.contains("--"),
             qPrintable(stop));
    f->setGroupSize(48);  // splits every module's groups: a note for most of the seven
    f->setPadUnloadable(true);
    QTRY_VERIFY(!f->warnings().isEmpty());
    const QStringList notes = f->warnings();
    for (const QString& n : notes) QVERIFY2(!n.contains("--"), qPrintable(n));
    // Kinds, not modules: fewer lines than the modules they concern.
    QVERIFY2(notes.size() <= 6, qPrintable(notes.join("\n")));
    const QString partial = [&] {
      for (const QString& n : notes)
        if (n.contains("multiple of the group size")) return n;
      return QString();
    }();
    QVERIFY2(!partial.isEmpty(), qPrintable(notes.join("\n")));
    QVERIFY(partial.contains("q_proj") && partial.contains("set Group size to per row"));
    // All seven concerned: keeping them all in fp16 is no way out, and is not offered.
    QVERIFY2(!partial.contains("Keep in fp16"), qPrintable(partial));
    QLabel* label = nullptr;
    for (QLabel* l : f->findChildren<QLabel*>())
      if (l->text().contains("details")) label = l;
    QVERIFY(label);
    QVERIFY(!label->text().contains("self_attn.q_proj ["));
    const QString key = [&] {
      const QString t = label->text();
      const int a = t.indexOf("href='") + 6;
      return t.mid(a, t.indexOf('\'', a) - a);
    }();
    emit label->linkActivated(key);
    QVERIFY(label->text().contains("hide"));
    QVERIFY(label->text().contains(" ["));  // the modules with their shapes
    QPushButton* run = nullptr;
    for (QPushButton* b : w.findChildren<QPushButton*>())
      if (b->text().startsWith(tr("Run"))) run = b;
    QVERIFY(run && run->isVisible());
    QVERIFY(!run->visibleRegion().isEmpty());
    const QRect in_window(run->mapTo(&w, QPoint(0, 0)), run->size());
    QVERIFY2(w.rect().contains(in_window), "the Run button is outside the window");
  }

  void invalidSettingsAreFlaggedBeforeRun() {
    MainWindow w;
    configure(w);
    load(w, model_dir());
    SettingsForm* f = w.inputs()->settingsForm();
    QVERIFY(f->runProblems().isEmpty());
    f->setGroupSize(0);
    QVERIFY(!f->runProblems().isEmpty());
    QVERIFY(!w.startRun());
    QCOMPARE(close_message_boxes(w), 1);
    f->setGroupSize(32);
    f->setSamples(100000, 256);  // more windows than the text has
    QTRY_VERIFY(!f->runProblems().isEmpty());
    QVERIFY(f->runProblems().join(" ").contains("windows"));
  }

  // Dropping a model folder on the window opens it, and it joins the recent-models list that
  // the next session's File > Open Recent shows.
  void dropFolderOpensModelAndRemembersIt() {
    MainWindow w;
    w.show();
    QSignalSpy loaded(w.session(), &RunSession::modelLoaded);
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(model_dir())});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &drop);
    QVERIFY(loaded.wait(30000));
    QCOMPARE(w.session()->model()->config().num_layers, 5);
    QCOMPARE(QSettings().value("recentModels").toStringList().value(0), model_dir());
  }

  // Calibration documents as users keep them: a folder of .txt files, a JSONL file with the
  // text under a named field; the window counts them as the run reads them, and the run's
  // report records how.
  void calibrationFolderAndJsonl() {
    const std::string story = test::data("text/tinystories-sample.txt").string();
    std::ifstream in(story);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    // Two documents cut at line ends (the text has multi-byte characters).
    const size_t cut1 = all.rfind('\n', 60000) + 1, cut2 = all.rfind('\n', 120000) + 1;
    const std::string a = all.substr(0, cut1), b = all.substr(cut1, cut2 - cut1);
    const QString folder = m_tmp.filePath("calib-folder");
    QDir().mkpath(folder);
    std::ofstream(qPrintable(folder + "/b.txt")) << b;  // read in name order: a.txt first
    std::ofstream(qPrintable(folder + "/a.txt")) << a;
    std::ofstream(qPrintable(folder + "/notes.md")) << "not a .txt: not read";
    const QString jsonl = m_tmp.filePath("calib.jsonl");
    {
      std::ofstream j(qPrintable(jsonl));
      j << nlohmann::json({{"story", a}, {"id", 1}}).dump() << "\n\n"
        << nlohmann::json({{"story", b}, {"id", 2}}).dump() << "\n";
    }
    MainWindow w;
    w.show();
    configure(w);
    w.inputs()->settingsForm()->setSamples(8, 128);
    load(w, model_dir());
    w.setCalibrationFile(folder);
    QTRY_VERIFY_WITH_TIMEOUT(w.inputs()->calibrationInfo().contains("tokens:"), 30000);
    QVERIFY2(w.inputs()->calibrationInfo().contains("2 documents"), qPrintable(w.inputs()->calibrationInfo()));
    const QString folder_info = w.inputs()->calibrationInfo();
    QSignalSpy finished(w.session(), &RunSession::runFinished);
    QVERIFY(w.startRun());
    QVERIFY(finished.wait(600000));
    QCOMPARE(QString::fromStdString(w.session()->report()->calib_format), QString("folder"));
    QCOMPARE(w.session()->report()->calib_documents, int64_t(2));
    QCOMPARE(w.session()->report()->calib_files, (std::vector<std::string>{"a.txt", "b.txt"}));

    w.inputs()->settingsForm()->setCalibrationField("story");
    w.setCalibrationFile(jsonl);
    QTRY_VERIFY_WITH_TIMEOUT(w.inputs()->calibrationInfo().contains("tokens:"), 30000);
    QVERIFY2(w.inputs()->calibrationInfo().contains("JSONL field \"story\""), qPrintable(w.inputs()->calibrationInfo()));
    // The same two documents, joined the same way: the same token count.
    const auto tokens = [](const QString& info) { return info.section(", ", 1, 1); };
    QCOMPARE(tokens(w.inputs()->calibrationInfo()), tokens(folder_info));
  }

  // The summary names what sets Llama 3.x and Qwen3 apart: RoPE scaling, q/k norm, head_dim.
  void summaryShowsRopeScalingAndQkNorm() {
    for (const auto& [file, expect] : {std::pair{"meta-llama__Llama-3.2-1B.config.json",
                                                  QStringList{"llama3 scaling (factor 32", "head dim 16"}},
                                        std::pair{"Qwen__Qwen3-0.6B.config.json",
                                                  QStringList{"q/k norm", "theta 1000000", "head dim 16"}}}) {
      // The real config, made small: 64 wide, 1 block, the full vocabulary and tokenizer.
      nlohmann::json c;
      std::ifstream(test::data(std::string("configs/") + file)) >> c;
      c.update({{"hidden_size", 64}, {"intermediate_size", 128}, {"num_attention_heads", 4},
                {"num_key_value_heads", 2}, {"head_dim", 16}});
      const std::string cfg = m_tmp.filePath(QString(file)).toStdString();
      std::ofstream(cfg) << c.dump();
      SyntheticModelOptions o;
      o.config_file = cfg;
      o.layers = 1;
      const QString dir = m_tmp.filePath(QString(file) + ".model");
      write_synthetic_model(dir.toStdString(), o);
      MainWindow w;
      load(w, dir);
      for (const QString& part : expect)
        QVERIFY2(w.inputs()->modelSummaryText().contains(part), qPrintable(w.inputs()->modelSummaryText()));
    }
  }

  void aboutShowsTheVersion() {
    // Help > About names the version that `--version` prints and the Debian package carries
    // (all three come from the CMake project version).
    MainWindow w;
    w.show();
    QAction* about = nullptr;
    for (QAction* a : w.findChildren<QAction*>())
      if (a->text() == "&About GPTQ Workbench") about = a;
    QVERIFY(about);
    QString shown;
    QTimer::singleShot(0, [&] {  // the box is modal: read and close it from the event loop
      if (auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget())) {
        shown = box->text();
        box->accept();
      }
    });
    about->trigger();
    QVERIFY2(shown.contains(QStringLiteral("GPTQ Workbench " GPTQW_VERSION)), qPrintable(shown));
    QVERIFY2(shown.contains("CUDA"), qPrintable(shown));
  }

  void corruptModelShowsAnErrorDialog() {
    // A copy of the sample model whose weights file is cut short.
    const QString dir = m_tmp.filePath("corrupt");
    QDir().mkpath(dir);
    for (const char* f : {"config.json", "tokenizer.json"})
      QFile::copy(model_dir() + "/" + f, dir + "/" + f);
    QFile src(model_dir() + "/model.safetensors");
    QVERIFY(src.open(QIODevice::ReadOnly));
    QFile dst(dir + "/model.safetensors");
    QVERIFY(dst.open(QIODevice::WriteOnly));
    dst.write(src.read(src.size() / 2));
    dst.close();

    MainWindow w;
    w.show();
    QSignalSpy errors(&w, &MainWindow::errorShown);
    w.openModel(dir);
    QVERIFY(errors.wait(30000));
    const QString message = errors.first().first().toString();
    QVERIFY2(message.contains("model.safetensors"), qPrintable(message));
    QVERIFY(!w.session()->model().has_value());
    QCOMPARE(close_message_boxes(w), 1);
    // Still usable: the real model loads afterwards.
    load(w, model_dir());
    QVERIFY(w.session()->model().has_value());
    // A failed open leaves the field on the model that is still loaded, as the summary is.
    const QString summary = w.inputs()->modelSummaryText();
    w.openModel(dir);
    QVERIFY(errors.wait(30000));
    QCOMPARE(close_message_boxes(w), 1);
    QTRY_VERIFY(!w.session()->busy());
    QCOMPARE(w.inputs()->modelPathText(), model_dir());
    QCOMPARE(w.inputs()->modelSummaryText(), summary);
  }
};

QTEST_MAIN(TestMainWindow)
#include "tst_main_window.moc"
