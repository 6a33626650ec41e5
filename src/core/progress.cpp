#include "core/progress.h"

#include <unistd.h>

#include <cstdio>
#include <atomic>

#include <fmt/format.h>

namespace dself {
namespace {

std::atomic<bool> display_enabled = true;

// A bar is redrawn often; plain lines (logs, CI) only every few seconds to stay readable.
constexpr double terminal_interval_s = 0.1;
constexpr double plain_interval_s = 5.0;

std::string format_duration(double seconds) {
  if (seconds < 0) return "?";
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string format_count(int64_t n, const std::string& unit) {
  if (unit == "bytes") {
    if (n >= (1 << 20)) return fmt::format("{:.1f} MiB", n / 1048576.0);
    if (n >= (1 << 10)) return fmt::format("{:.1f} KiB", n / 1024.0);
    return fmt::format("{} B", n);
  }
  return std::to_string(n);
}

std::string describe_line(const ProgressEvent& e) {
  std::string counts = format_count(e.done, e.unit);
  if (e.total > 0) counts += "/" + format_count(e.total, e.unit);
  if (e.unit != "bytes") counts += " " + e.unit;
  std::string rate = e.unit == "bytes" ? format_count(static_cast<int64_t>(e.rate_per_s), e.unit) + "/s"
                                       : fmt::format("{:.1f} {}/s", e.rate_per_s, e.unit);
  return fmt::format("{} {} {} elapsed {} eta {}", e.task, counts, rate,
                     format_duration(e.elapsed_s), format_duration(e.eta_s));
}

void draw(const ProgressEvent& e) {
  if (isatty(STDERR_FILENO)) {
    constexpr int width = 24;
    int filled = e.total > 0 ? static_cast<int>(width * std::min<double>(1.0, double(e.done) / e.total)) : 0;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r[%s] %s\x1b[K%s", bar.c_str(), describe_line(e).c_str(), e.finished ? "\n" : "");
  } else {
    std::fprintf(stderr, "progress: %s%s\n", describe_line(e).c_str(), e.finished ? " (done)" : "");
  }
  std::fflush(stderr);
}

}  // namespace

void stop_if_requested(const StopRequested& should_stop, const std::string& what) {
  if (should_stop && should_stop()) throw Stopped(what + ": stopped");
}

void set_progress_display(bool enabled) { display_enabled = enabled; }

Progress::Progress(std::string task, int64_t total, std::string unit, ProgressSink sink)
    : sink_(std::move(sink)), start_(std::chrono::steady_clock::now()), last_report_(start_) {
  event_.task = std::move(task);
  event_.total = total;
  event_.unit = std::move(unit);
  report(true);
}

Progress::~Progress() { finish(); }

void Progress::advance(int64_t n) { set_done(event_.done + n); }

void Progress::set_done(int64_t done) {
  event_.done = done;
  report(false);
}

void Progress::set_total(int64_t total) { event_.total = total; }

void Progress::finish() {
  if (event_.finished) return;
  event_.finished = true;
  report(true);
}

void Progress::report(bool force) {
  auto now = std::chrono::steady_clock::now();
  double since_last = std::chrono::duration<double>(now - last_report_).count();
  bool terminal = isatty(STDERR_FILENO);
  if (!force && since_last < (terminal ? terminal_interval_s : plain_interval_s)) return;
  last_report_ = now;
  event_.elapsed_s = std::chrono::duration<double>(now - start_).count();
  event_.rate_per_s = event_.elapsed_s > 0 ? event_.done / event_.elapsed_s : 0;
  event_.eta_s = (event_.total > 0 && event_.rate_per_s > 0)
                     ? std::max<double>(0, (event_.total - event_.done) / event_.rate_per_s)
                     : -1;
  if (display_enabled && (event_.done > 0 || event_.finished || terminal)) draw(event_);
  if (sink_) sink_(event_);
}

}  // namespace dself
