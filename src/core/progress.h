// Progress of long work: a bar on a terminal, plain lines otherwise, and events for the work's
// ProgressSink (the server's job worker streams them to the web UI).
//
// How long work is told where to report and when to stop: its options struct carries a
// `ProgressSink progress` and a `StopRequested should_stop` (prepare::PrepareOptions,
// ingest::IngestOptions, say::SayOptions, voice::VoiceTrainOptions, ...). Nothing is global: two
// pieces of work on two threads report to their own sinks. Work asks should_stop between units
// (a source, a step, a file, a frame, a sentence, a download's progress line) and, when it says
// yes, throws Stopped after leaving nothing half-written; a command that records a job marks
// it "interrupted" in the catalog first. The CLI's should_stop is Ctrl-C (SIGINT/SIGTERM); the
// server's is its job's stop flag (POST /api/jobs/ID/stop) or the server stopping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace dself {

// One observation of a task's progress.
struct ProgressEvent {
  std::string task;     // what is being done, e.g. "ingest: download video_000"
  std::string unit;     // what is counted: "frames", "bytes", "videos"
  int64_t done = 0;     // units done so far
  int64_t total = 0;    // units in all; 0 when unknown
  double elapsed_s = 0; // seconds since the task started
  double rate_per_s = 0;// units per second so far
  double eta_s = -1;    // seconds left; -1 when unknown
  bool finished = false;
};

// Where one piece of long work reports its progress: a parameter of the work's options (as
// Rhubarb's ProgressSink), called on the working thread with every event, besides the display.
using ProgressSink = std::function<void(const ProgressEvent&)>;

// Asked by long work between units (a frame, an utterance, a training step): true means stop at
// the next safe point, keeping what is complete (as whisper.cpp's abort_callback). Empty: never.
using StopRequested = std::function<bool()>;

// Thrown by work that stopped because its StopRequested said so; nothing half-written is left.
struct Stopped : std::runtime_error {
  explicit Stopped(const std::string& what) : std::runtime_error(what) {}
};

// Throws Stopped("<what>: stopped") when should_stop (if set) says so.
void stop_if_requested(const StopRequested& should_stop, const std::string& what);

// Turns the stderr display on or off (off with --quiet); sinks are always called.
void set_progress_display(bool enabled);

// Tracks one task. Display goes to stderr: a redrawn bar with count, rate and ETA when stderr
// is a terminal, a plain line every few seconds otherwise. Destruction finishes the task.
class Progress {
 public:
  // `sink`, when given, is called with every event too (at most every few seconds but for the
  // first and last).
  Progress(std::string task, int64_t total, std::string unit, ProgressSink sink = {});
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1);
  void set_done(int64_t done);
  void set_total(int64_t total);
  void finish();

 private:
  void report(bool force);

  ProgressEvent event_;
  ProgressSink sink_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_report_;
};

}  // namespace dself
