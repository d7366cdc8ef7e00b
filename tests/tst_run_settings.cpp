// Unit tests of the run's settings in core (pipeline/run_settings.h): the defaults both front
// ends start from, and the check of a combination against a model's shapes and a calibration
// text's length, problem by problem: kind, severity, modules and ways out as settings, in no
// front end's words. Then the command line's wording of the same problems (app/cli), with its
// flags. The model is stories260K's shape (hidden 64, intermediate 172), built in memory.
#include <QTest>

#include "pipeline/calibration.h"
#include "pipeline/run_settings.h"
#include "settings_words.h"

using namespace gptqw;
using Kind = SettingsProblem::Kind;
using Severity = SettingsProblem::Severity;
using Remedy = SettingsRemedy;

namespace {

ModelConfig stories_shape() {
  ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = 64;
  c.num_layers = 5;
  c.num_heads = 8;
  c.num_kv_heads = 4;
  c.head_dim = 8;
  c.intermediate_size = 172;
  c.vocab_size = 512;
  c.max_position_embeddings = 512;
  return c;
}

RunSpec with_group(int group_size) {
  RunSpec s;
  s.options.gptq.quant.group_size = group_size;
  return s;
}

const SettingsProblem* find(const RunSettingsCheck& c, Kind kind,
                            ExportIssue::Kind export_kind = ExportIssue::Kind::invalid_settings) {
  for (const SettingsProblem& p : c.problems)
    if (p.kind == kind && (kind != Kind::export_issue || p.export_kind == export_kind)) return &p;
  return nullptr;
}

const std::vector<LinearKind> kAttention = {LinearKind::q, LinearKind::k, LinearKind::v,
                                            LinearKind::o};
const std::vector<LinearKind> kAll(kAllLinears.begin(), kAllLinears.end());

}  // namespace

class TestRunSettings : public QObject {
  Q_OBJECT
 private slots:
  // The defaults of both front ends: AutoGPTQ's 4-bit, groups of 128, 1% damping, and the
  // reference's 128 windows of 2048 tokens.
  void defaults() {
    const RunSpec s;
    QCOMPARE(s.options.gptq.quant.bits, 4);
    QCOMPARE(s.options.gptq.quant.group_size, 128);
    QVERIFY(s.options.gptq.quant.sym && !s.options.gptq.quant.mse);
    QCOMPARE(s.options.gptq.damp_fraction, 0.01);
    QCOMPARE(s.options.gptq.blocksize, 128);
    QVERIFY(!s.options.gptq.act_order && s.options.true_sequential);
    QVERIFY(s.options.run_gptq && s.options.run_rtn && s.options.skip.empty());
    QCOMPARE(s.nsamples, 128);
    QCOMPARE(s.seqlen, 2048);
    QCOMPARE(s.eval.seqlen, 2048);
    QCOMPARE(s.eval.max_windows, 0);
    QVERIFY(!s.pad_unloadable);
    // Without a model or a text, the defaults have nothing against them.
    QVERIFY(check_run_settings(s, nullptr, -1).problems.empty());
  }

  void invalidOptionsStopEverythingElse() {
    RunSpec s;
    s.options.gptq.damp_fraction = -1;
    s.options.skip = {kAllLinears.begin(), kAllLinears.end()};
    const ModelConfig c = stories_shape();
    const RunSettingsCheck check = check_run_settings(s, &c, 10);
    QCOMPARE(check.problems.size(), size_t(1));
    const SettingsProblem& p = check.problems.front();
    QCOMPARE(p.kind, Kind::invalid_options);
    QCOMPARE(p.severity, Severity::blocks_run);
    QVERIFY2(p.message.find("damp_fraction") != std::string::npos, p.message.c_str());
    QVERIFY(check.blocks(Severity::blocks_run) && !check.blocks(Severity::blocks_export));
  }

  // The calibration text against nsamples x seqlen, with sample_calibration's own sentence and
  // the settings that would fit the text.
  void calibrationLength() {
    RunSpec s;
    s.nsamples = 4;
    s.seqlen = 64;
    RunSettingsCheck check = check_run_settings(s, nullptr, 100);
    const SettingsProblem* p = find(check, Kind::too_few_windows);
    QVERIFY(p && p->severity == Severity::blocks_run);
    QCOMPARE(p->tokens, int64_t(100));
    QCOMPARE(p->windows, int64_t(1));
    QCOMPARE(p->message, calibration_shortfall(100, 4, 64).message);
    QCOMPARE(p->remedies, (std::vector<Remedy>{{Remedy::Kind::fewer_samples, 1, {}},
                                               {Remedy::Kind::shorter_windows, 25, {}}}));
    check = check_run_settings(s, nullptr, 50);
    p = find(check, Kind::calibration_too_short);
    QVERIFY(p && !find(check, Kind::too_few_windows));
    QCOMPARE(p->remedies, (std::vector<Remedy>{{Remedy::Kind::shorter_windows, 12, {}}}));
    QVERIFY(check_run_settings(s, nullptr, 256).problems.empty());
    QVERIFY(check_run_settings(s, nullptr, -1).problems.empty());  // unknown: not checked
  }

  void everyModuleKept() {
    RunSpec s = with_group(32);
    s.options.skip = {kAllLinears.begin(), kAllLinears.end()};
    const ModelConfig c = stories_shape();
    const RunSettingsCheck check = check_run_settings(s, &c, -1);
    QCOMPARE(check.problems.size(), size_t(1));
    QCOMPARE(check.problems.front().kind, Kind::every_module_kept);
  }

  // Groups of 128 divide none of the inputs (64, 172): no module could be loaded quantized.
  // The ways out: a group size that leaves q/k/v/o loadable (gate/up have 172 outputs and
  // down 172 inputs under any), or quantizing them anyway.
  void nothingLoadable() {
    const ModelConfig c = stories_shape();
    const RunSettingsCheck check = check_run_settings(with_group(128), &c, -1);
    QCOMPARE(check.problems.size(), size_t(1));
    const SettingsProblem& p = check.problems.front();
    QCOMPARE(p.kind, Kind::nothing_loadable);
    QCOMPARE(p.severity, Severity::blocks_run);
    QCOMPARE(p.modules, kAll);
    QCOMPARE(p.unloadable.size(), size_t(7));
    QCOMPARE(p.remedies, (std::vector<Remedy>{{Remedy::Kind::use_group_size, 64, {}},
                                              {Remedy::Kind::use_group_size, 32, {}},
                                              {Remedy::Kind::use_group_size, -1, {}},
                                              {Remedy::Kind::quantize_padded, 0, {}}}));
  }

  // Groups of 32: gate, up and down stay in fp16 for the loaders (a note, with its way out),
  // and the attention modules left quantized miss Marlin's shapes (a note without a way out:
  // keeping all four in fp16 would leave nothing to quantize).
  void keptForLoadersAndExportNotes() {
    const ModelConfig c = stories_shape();
    const RunSettingsCheck check = check_run_settings(with_group(32), &c, -1);
    QVERIFY(!check.blocks(Severity::blocks_run) && !check.blocks(Severity::blocks_export));
    QCOMPARE(check.problems.front().kind, Kind::kept_for_loaders);
    const SettingsProblem& kept = check.problems.front();
    QCOMPARE(kept.severity, Severity::note);
    QCOMPARE(kept.modules,
             (std::vector<LinearKind>{LinearKind::gate, LinearKind::up, LinearKind::down}));
    QCOMPARE(kept.remedies, (std::vector<Remedy>{{Remedy::Kind::quantize_padded, 0, {}}}));
    QCOMPARE(check.effective.skip.size(), size_t(3));
    const SettingsProblem* marlin = find(check, Kind::export_issue, ExportIssue::Kind::no_marlin_shape);
    QVERIFY(marlin && marlin->severity == Severity::note);
    QCOMPARE(marlin->modules, kAttention);
    QCOMPARE(marlin->issues.size(), size_t(4));
    QVERIFY(marlin->remedies.empty());
  }

  // Quantizing everything padded at groups of 48: one problem per kind of issue, gathering its
  // modules; the group size that helps them all, and keeping the modules in fp16 only where
  // some others would still be quantized.
  void exportIssuesGatheredByKind() {
    RunSpec s = with_group(48);
    s.pad_unloadable = true;
    const ModelConfig c = stories_shape();
    const RunSettingsCheck check = check_run_settings(s, &c, -1);
    QVERIFY(!find(check, Kind::kept_for_loaders));
    const SettingsProblem* partial =
        find(check, Kind::export_issue, ExportIssue::Kind::partial_last_group);
    QVERIFY(partial);
    QCOMPARE(partial->modules, kAll);
    QCOMPARE(partial->remedies, (std::vector<Remedy>{{Remedy::Kind::use_group_size, -1, {}}}));
    const SettingsProblem* padded =
        find(check, Kind::export_issue, ExportIssue::Kind::in_features_not_32);
    QVERIFY(padded);
    QCOMPARE(padded->modules, std::vector<LinearKind>{LinearKind::down});
    QCOMPARE(padded->remedies,
             (std::vector<Remedy>{{Remedy::Kind::keep_in_fp16, 0, {LinearKind::down}}}));
    const SettingsProblem* settings =
        find(check, Kind::export_issue, ExportIssue::Kind::no_marlin_settings);
    QVERIFY(settings && settings->modules.empty() && !settings->message.empty());
    int kinds = 0;
    for (const SettingsProblem& p : check.problems)
      kinds += p.kind == Kind::export_issue && !p.modules.empty();
    QCOMPARE(kinds, 3);  // partial groups, inputs not x32 (down), outputs not x32 (gate, up)
  }

  // The command line words the same problems with its flags.
  void commandLineWords() {
    const ModelConfig c = stories_shape();
    RunSettingsCheck check = check_run_settings(with_group(128), &c, -1);
    const std::string stop = cli::describe(check.problems.front()).front();
    QVERIFY2(stop.find("no linear module") != std::string::npos &&
                 stop.find("--group-size 64, 32 or -1") != std::string::npos &&
                 stop.find("--pad-unloadable") != std::string::npos,
             stop.c_str());
    check = check_run_settings(with_group(32), &c, -1);
    const std::vector<std::string> notes = cli::describe(check.problems.front());
    QCOMPARE(notes.size(), size_t(3));  // one per module kept
    QVERIFY2(notes.back().find("note: mlp.down_proj [64, 172] stays in fp16") == 0,
             notes.back().c_str());
    RunSpec s;
    s.nsamples = 4;
    s.seqlen = 64;
    check = check_run_settings(s, nullptr, 100);
    const std::string windows = cli::describe(check.problems.front()).front();
    QVERIFY2(windows.find("--nsamples 1 or fewer") != std::string::npos &&
                 windows.find("--seqlen 25") != std::string::npos,
             windows.c_str());
  }
};

QTEST_GUILESS_MAIN(TestRunSettings)
#include "tst_run_settings.moc"
