#include "cli_common.h"

#include <csignal>
#include <cstdio>
#include <unistd.h>

#include "common/cancel.h"
#include "common/threads.h"

namespace gptqw::cli {

Model open_model(const Args& args, bool with_tokenizer) {
  std::string model = args.require("--model");
  Model m;
  if (!with_tokenizer) {
    m.path = model;
    m.weights = open_weights(model);
  } else {
    m = load_model(model, args.get_or("--tokenizer", ""));
  }
  // Keys this program does not know may change the model: say so, every time.
  const auto& unknown = m.config().unrecognized_keys;
  if (!unknown.empty() && !args.flag("--quiet")) {
    std::string keys;
    for (const auto& k : unknown) keys += (keys.empty() ? "" : ", ") + k;
    std::fprintf(stderr, "warning: %s: config.json keys not read by gptqw (ignored): %s\n",
                 model.c_str(), keys.c_str());
  }
  return m;
}

int apply_threads(const Args& args) {
  // Beyond kMaxThreads, OpenMP's runtime fails to create its threads and aborts the process.
  long n = args.get_int("--threads", 0, 0, kMaxThreads);
  return set_threads(static_cast<int>(n));
}

std::string format_duration(double s) {
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

TerminalProgress::TerminalProgress(bool quiet)
    : m_quiet(quiet), m_tty(isatty(fileno(stderr))), m_start(std::chrono::steady_clock::now()) {}

namespace {
extern "C" void on_interrupt(int) { request_cancel(); }
}  // namespace

void install_interrupt_handler() {
  // SA_RESETHAND: the first Ctrl+C asks every long loop to stop (common/cancel.h: loaders,
  // tokenizers and parsers poll it every few thousand items, the engine between modules); the
  // work throws Cancelled, exports and reports remove their temporaries. A second one kills at
  // once.
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return cancel_requested(); }

ProgressFn TerminalProgress::callback() {
  return [this](const Progress& p) {
    if (interrupted()) return false;
    if (m_quiet) return true;
    auto now = std::chrono::steady_clock::now();
    // The whole run's fraction where the stage is part of one (quantize, then perplexity).
    const double f = p.run_fraction >= 0 ? p.run_fraction : p.fraction;
    int decile = static_cast<int>(f * 10);
    if (m_tty ? now - m_last_draw < std::chrono::milliseconds(100) && f < 1
              : decile == m_last_decile)
      return true;
    m_last_draw = now;
    m_last_decile = decile;
    double elapsed = std::chrono::duration<double>(now - m_start).count();
    std::string where;
    if (p.block >= 0 && p.n_blocks > 0)
      where = "block " + std::to_string(std::min(p.block + 1, p.n_blocks)) + "/" +
              std::to_string(p.n_blocks);
    if (!p.module.empty()) where += (where.empty() ? "" : " ") + p.module;
    std::string eta = f > 0.01 && f < 1
                          ? ", ~" + format_duration(elapsed * (1 - f) / f) + " left"
                          : "";
    std::fprintf(stderr, "%s%-12s %-28s %3d%%  %s elapsed%s%s", m_tty ? "\r" : "", p.stage.c_str(),
                 where.c_str(), static_cast<int>(f * 100), format_duration(elapsed).c_str(),
                 eta.c_str(), m_tty ? "\033[K" : "\n");
    m_drawn = true;
    return true;
  };
}

void TerminalProgress::finish() {
  if (m_drawn && m_tty) std::fprintf(stderr, "\n");
  m_drawn = false;
}

std::vector<std::string> prompts_of(const Args& args) {
  std::vector<std::string> prompts = args.get_all("--prompt");
  if (auto file = args.get("--prompts"))
    for (std::string& p : read_prompts(*file)) prompts.push_back(std::move(p));
  return prompts;
}

void print_generations(const PromptGenerations& g) {
  std::printf("prompt \"%s\" (%s)\n", g.prompt.c_str(), g.sampling.describe().c_str());
  for (const Continuation& c : g.continuations) {
    const std::string where = &c == &g.continuations.front() ? "reference"
                              : c.diverges_at_token < 0     ? "same as " + g.continuations.front().model
                                                            : "leaves it at token " + std::to_string(c.diverges_at_token + 1);
    std::printf("  %-12s (%s)\n    %s\n", c.model.c_str(), where.c_str(), marked_text(c).c_str());
  }
}

}  // namespace gptqw::cli
