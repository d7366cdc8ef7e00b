// A long engine call (load a model, quantize, export) on a worker thread, so that the window
// never blocks. The work runs on its own QThread and talks back to the GUI thread only through
// queued calls: progress (throttled), results it posts, and how it ended. Cancel sets a flag the
// engine's progress callback reads between modules, and that the engine's long loops (loading,
// parsing, tokenizing) poll as the worker thread's cancel token (common/cancel.h); the engine
// then throws Cancelled, which ends the job as cancelled rather than failed.
#pragma once

#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <atomic>
#include <functional>

#include "common/progress.h"

class QThread;

namespace gptqw::ui {

class Job : public QObject {
  Q_OBJECT
 public:
  // Runs on the worker thread. Returns what to do on the GUI thread once it succeeded.
  using Work = std::function<std::function<void()>(const ProgressFn& progress)>;

  explicit Job(QObject* parent = nullptr);
  ~Job() override;  // cancels a running job and waits for its thread

  // False (and nothing started) when a job is already running.
  bool start(Work work);
  void cancel();
  bool running() const { return m_thread != nullptr; }
  bool cancelRequested() const { return m_cancel.load(); }
  // Seconds since start() of the running (or last) job.
  double elapsed() const { return m_clock.isValid() ? m_clock.elapsed() / 1000.0 : 0.0; }

  // Thread-safe: runs fn on the GUI thread (for results streamed while the job runs).
  void post(std::function<void()> fn);

  // A context object for connections that concern the job just started only: it is deleted
  // when that job has ended, and its connections with it.
  QObject* scope();

 signals:
  void progress(const gptqw::Progress& p);
  void succeeded();
  void failed(const QString& message);
  void cancelled();
  void ended();  // after any of the three above

 private:
  void finish(std::function<void()> outcome);

  QThread* m_thread = nullptr;
  std::atomic<bool> m_cancel{false};
  QElapsedTimer m_clock;
};

}  // namespace gptqw::ui
