// Helpers shared by the test suites: where the sample data is, scratch folders, running the
// CLI. Data tests fail (they do not skip) when the sample data is missing: CI always has it.
#pragma once

#include <QProcess>
#include <QTemporaryDir>
#include <QTest>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "common/text_file.h"

namespace gptqw::test {

// A file or folder under the sample data folder (../shared/data or $GPTQW_DATA_DIR).
inline std::filesystem::path data(const std::string& rel) { return gptqw::data_dir() / rel; }

inline std::filesystem::path stories_dir() { return data("models/stories260K"); }

struct CliResult {
  int exit_code = -1;
  QByteArray out, err;
};

// Runs a program with the given arguments and waits (up to timeout_ms).
inline CliResult run_program(const QString& program, const QStringList& args, int timeout_ms = 300000) {
  QProcess p;
  p.start(program, args);
  CliResult r;
  if (!p.waitForFinished(timeout_ms)) {
    p.kill();
    p.waitForFinished();
    r.err = "timed out";
    return r;
  }
  r.exit_code = p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1;
  r.out = p.readAllStandardOutput();
  r.err = p.readAllStandardError();
  return r;
}

// Built with the sanitizers (scripts/sanitize.sh), where numeric code runs about 7x slower.
// The few checks whose point is a number over a whole corpus skip there, saying so; the
// plain build runs them all, and every code path still runs instrumented.
inline constexpr bool sanitized = GPTQW_SANITIZED;
#define GPTQW_SKIP_WHEN_SANITIZED(what)                                                      \
  do {                                                                                       \
    if (gptqw::test::sanitized)                                                              \
      QSKIP("sanitizer build: " what " is checked in the plain build");                     \
  } while (0)

// Runs the gptqw binary with the given arguments and waits (up to timeout_ms).
inline CliResult run_cli(const QStringList& args, int timeout_ms = 300000) {
  return run_program(QStringLiteral(GPTQW_CLI_PATH), args, timeout_ms);
}

inline QString qpath(const std::filesystem::path& p) { return QString::fromStdString(p.string()); }

// The message of the gptqw::Error that f throws; "(no error)" when none is thrown.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const gptqw::Error& e) {
    return e.what();
  }
  return "(no error)";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace gptqw::test
