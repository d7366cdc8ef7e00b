#include "common/cancel.h"

#include "common/error.h"

namespace gptqw {

namespace {
std::atomic<bool> g_cancel{false};
static_assert(std::atomic<bool>::is_always_lock_free, "request_cancel() runs in signal handlers");
thread_local const std::atomic<bool>* t_token = nullptr;
}  // namespace

void request_cancel() noexcept {
  g_cancel.store(true, std::memory_order_relaxed);
}

void reset_cancel() noexcept {
  g_cancel.store(false, std::memory_order_relaxed);
}

bool cancel_requested() noexcept {
  return g_cancel.load(std::memory_order_relaxed) ||
         (t_token && t_token->load(std::memory_order_relaxed));
}

void check_cancelled() {
  if (cancel_requested()) throw Cancelled();
}

CancelScope::CancelScope(const std::atomic<bool>* flag) noexcept : m_previous(t_token) {
  t_token = flag;
}

CancelScope::~CancelScope() {
  t_token = m_previous;
}

}  // namespace gptqw
