// Cancellation that reaches every long loop, loaders and tokenizers included: one process-wide
// flag (set from a signal handler by the CLI on SIGINT / SIGTERM) and one flag per worker
// thread (set by the window's Cancel button), both read by check_cancelled(), which throws
// Cancelled. The progress callbacks (common/progress.h) are the other way to stop; they only
// run between modules and windows, whereas parsing a 100 MB tokenizer.json or tokenizing a
// 200 MB text has no such points, so those loops poll here instead, every few thousand items
// (CancelPoll), which costs a counter increment per item.
#pragma once

#include <atomic>
#include <cstdint>

namespace gptqw {

// Asks every long loop of the process to stop. Async-signal-safe (a lock-free atomic store).
void request_cancel() noexcept;
// Clears the process-wide request (tests; the CLI never clears it).
void reset_cancel() noexcept;
// True once request_cancel() was called, or the calling thread's token (below) is set.
bool cancel_requested() noexcept;
// Throws Cancelled when cancel_requested().
void check_cancelled();

// Installs `flag` as the calling thread's cancel token for the lifetime of the scope (the
// window's worker threads: each job has its own flag, so cancelling one job stops only it).
class CancelScope {
 public:
  explicit CancelScope(const std::atomic<bool>* flag) noexcept;
  ~CancelScope();
  CancelScope(const CancelScope&) = delete;
  CancelScope& operator=(const CancelScope&) = delete;

 private:
  const std::atomic<bool>* m_previous;
};

// A counter for hot loops: tick() checks for cancellation every `every` calls (a power of two),
// so a loop over 10^8 bytes or tokens polls a few ten thousand times.
class CancelPoll {
 public:
  explicit CancelPoll(uint32_t every = 4096) : m_mask(every - 1) {}
  void tick() {
    if ((++m_count & m_mask) == 0) check_cancelled();
  }

 private:
  uint32_t m_mask;
  uint32_t m_count = 0;
};

}  // namespace gptqw
