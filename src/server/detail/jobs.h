// Background jobs (ingest, prepare, report, train): one at a time per avatar, on a worker thread that
// owns them. The worker passes the work its own ProgressSink (the job's progress and log lines)
// and StopRequested (the job's stop flag: POST /api/jobs/ID/stop, or the server stopping).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/progress.h"
#include "server/server.h"

namespace dself::server::detail {

// What a train job trains (`dself train [voice|all] --steps N --time-budget S`).
struct TrainRequest {
  std::string model = "all";  // "voice" or "all"
  int steps = 0;              // 0: the model's default
  double time_budget_s = 0;   // 0: no limit
};

struct JobRecord {
  int64_t id = 0;
  std::string kind;                  // "ingest", "prepare", "report", "train"
  std::vector<std::string> sources;  // ingest: URLs or files inside the workspace
  TrainRequest train;                // train: what to train
  std::string state = "queued";      // "queued", "running", "done", "failed", "interrupted"
  int64_t done = 0;                  // progress of the current task
  int64_t total = 0;
  std::string label;
  double share = -1;  // the whole job's share done (0..1), across its steps; -1 unknown
  double eta_s = -1;  // seconds left for the whole job, from its pace so far; -1 unknown
  std::string started_at;
  std::string finished_at;
  std::string error;
  std::vector<std::string> log;
};

// {"id", "kind", "state", "progress": {"done", "total", "label", "share", "eta_s"}, "started_at",
//  "finished_at", "error", "sources"}, for a train job "train": {"model", "steps", "time_budget_s"}, and,
// with_log, "log".
nlohmann::json to_json(const JobRecord& job, bool with_log);

class JobRunner {
 public:
  using ChangeListener = std::function<void(const JobRecord& job)>;

  // on_change is called (on the worker thread, or the caller's for submit) after each change.
  JobRunner(const ServeOptions& options, ChangeListener on_change);
  ~JobRunner();  // waits for the job in progress
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Ids are the catalog's (its jobs table, command "serve <kind>"), so that they stay the same
  // after a restart; jobs() and job() also answer the earlier ones from there (without their log).
  // Queues a job; HttpError 409 while another is queued or running, 400 for a bad request.
  JobRecord submit(const std::string& kind, const std::vector<std::string>& sources, const TrainRequest& train = {});
  // Asks the queued or running job `id` to stop at its next safe point (it ends "interrupted");
  // HttpError 404 for an unknown job, 409 for one that has ended.
  JobRecord stop(int64_t id);
  bool busy() const;
  std::vector<JobRecord> jobs() const;  // newest first: this run's, then the catalog's earlier ones
  std::optional<JobRecord> job(int64_t id) const;
  int done_count() const;

 private:
  void work();
  void run(JobRecord& job);
  std::string run_train(const JobRecord& job, const ProgressSink& progress, const StopRequested& should_stop,
                        const std::function<void(std::string)>& log);
  void changed(int64_t id, bool force);

  ServeOptions options_;
  ChangeListener on_change_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<JobRecord> jobs_;  // newest first, at most a few dozen kept
  int64_t pending_id_ = 0;      // the queued or running job, 0 when idle
  int done_count_ = 0;
  bool stopping_ = false;
  std::atomic<bool> stop_requested_ = false;  // the pending job is to stop
  std::thread worker_;
};

}  // namespace dself::server::detail
