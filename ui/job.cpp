#include "job.h"

#include <QThread>
#include <chrono>

#include "common/cancel.h"
#include "common/error.h"

namespace gptqw::ui {

Job::Job(QObject* parent) : QObject(parent) {}

Job::~Job() {
  if (m_thread) {
    m_cancel = true;
    m_thread->wait();
    delete m_thread;
  }
}

void Job::post(std::function<void()> fn) {
  QMetaObject::invokeMethod(this, std::move(fn), Qt::QueuedConnection);
}

bool Job::start(Work work) {
  if (m_thread) return false;
  m_cancel = false;
  m_clock.start();
  m_thread = QThread::create([this, work = std::move(work)] {
    // Progress reaches the window at most every 50 ms, and whenever the stage or module
    // changes, so a fast engine cannot flood the event queue.
    using Clock = std::chrono::steady_clock;
    Clock::time_point last{};
    std::string last_key;
    ProgressFn progress = [&](const Progress& p) {
      std::string key = p.stage + "/" + std::to_string(p.block) + "/" + p.module;
      auto now = Clock::now();
      if (key != last_key || now - last > std::chrono::milliseconds(50)) {
        last = now;
        last_key = key;
        post([this, p] { emit this->progress(p); });
      }
      return !m_cancel.load();
    };
    // The engine's own long loops (parsing, tokenizing, converting) poll this job's flag too.
    CancelScope cancel_scope(&m_cancel);
    try {
      std::function<void()> done = work(progress);
      finish([this, done = std::move(done)] {
        if (done) done();
        emit succeeded();
      });
    } catch (const Cancelled&) {
      finish([this] { emit cancelled(); });
    } catch (const std::exception& e) {
      finish([this, msg = QString::fromStdString(e.what())] { emit failed(msg); });
    }
  });
  m_thread->start();
  return true;
}

void Job::cancel() { m_cancel = true; }

QObject* Job::scope() {
  auto* ctx = new QObject(this);
  connect(this, &Job::ended, ctx, [ctx] { ctx->deleteLater(); });
  return ctx;
}

void Job::finish(std::function<void()> outcome) {
  post([this, outcome = std::move(outcome)] {
    // The thread has returned from the work by now (this is its last post); join it before
    // the outcome handlers may start the next job.
    m_thread->wait();
    delete m_thread;
    m_thread = nullptr;
    outcome();
    emit ended();
  });
}

}  // namespace gptqw::ui
