// Background jobs: the worker thread runs the stages' libraries and records what they say.
#include "server/detail/jobs.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <system_error>

#include "core/catalog.h"
#include "core/error.h"
#include "core/progress.h"
#include "core/workspace.h"
#include "ingest/ingest.h"
#include "prepare/prepare.h"
#include "server/detail/http.h"
#include "train/train.h"

namespace dself::server::detail {
namespace fs = std::filesystem;

namespace {

constexpr size_t kJobsKept = 50;        // finished jobs remembered (newest first)
constexpr size_t kLogLinesKept = 2000;  // a job's log keeps its last lines
constexpr double kProgressInterval_s = 0.25;
constexpr int kCatalogJobsRead = 60;          // catalog rows read for the job history
const std::string kCatalogPrefix = "serve ";  // the catalog's command for a job of this server

// Prepare's steps for one source, in the order it runs them (prepare.cpp's Progress tasks, each
// "<step> <source title>"): the share of a source done is the step's index plus its own share,
// over the steps. (Every source's face tracks come before any source's face track: who is who
// needs them all.)
const std::vector<std::string> kPrepareSteps = {"audio", "speech recognition", "align", "face tracks", "face track"};

// A job recorded in the catalog by an earlier run (or this one), as the API shows it.
JobRecord from_catalog(const Job& row) {
  JobRecord job;
  job.id = row.id;
  job.kind = row.command.substr(kCatalogPrefix.size());
  job.state = row.state;
  job.error = row.state == "done" ? "" : row.message;
  job.started_at = row.started_at;
  job.finished_at = row.finished_at;
  nlohmann::json arguments = nlohmann::json::parse(row.arguments, nullptr, false);
  if (arguments.is_object() && arguments.contains("sources") && arguments["sources"].is_array()) {
    for (const auto& s : arguments["sources"]) {
      if (s.is_string()) job.sources.push_back(s.get<std::string>());
    }
  }
  return job;
}

// Ingest takes URLs, and files only from the workspace's uploads/ (a client must not make the
// server read its other files).
std::string checked_source(const fs::path& avatar, const std::string& source) {
  if (source.empty() || source.size() > 4096) throw HttpError(400, "a source must be a URL or an uploaded file");
  for (char c : source) {
    if (static_cast<unsigned char>(c) < 0x20) throw HttpError(400, "a source must not contain control characters");
  }
  if (ingest::is_url(source)) return source;
  std::error_code ec;
  fs::path uploads = fs::weakly_canonical(workspace::uploads_dir(avatar), ec);
  fs::path path = fs::path(source).is_absolute() ? fs::path(source) : avatar / source;
  fs::path real = fs::weakly_canonical(path, ec);
  bool inside = !ec && std::mismatch(uploads.begin(), uploads.end(), real.begin(), real.end()).first == uploads.end();
  if (!inside || !fs::is_regular_file(real, ec)) {
    throw HttpError(400, fmt::format("{}: only http(s) URLs and files uploaded with POST /api/uploads "
                                     "(uploads/NAME) can be ingested",
                                     source));
  }
  return real.string();
}

}  // namespace

nlohmann::json to_json(const JobRecord& job, bool with_log) {
  nlohmann::json json = {
      {"id", job.id},
      {"kind", job.kind},
      {"state", job.state},
      {"progress",
       {{"done", job.done}, {"total", job.total}, {"label", job.label}, {"share", job.share}, {"eta_s", job.eta_s}}},
      {"started_at", job.started_at},
      {"finished_at", job.finished_at},
      {"error", job.error},
      {"sources", job.sources}};
  if (job.kind == "train") {
    json["train"] = {{"model", job.train.model}, {"steps", job.train.steps}, {"time_budget_s", job.train.time_budget_s}};
  }
  if (with_log) json["log"] = job.log;
  return json;
}

JobRunner::JobRunner(const ServeOptions& options, ChangeListener on_change)
    : options_(options), on_change_(std::move(on_change)) {
  // A job this server's catalog says is running was ended by a server that stopped (killed, or
  // stopped mid-job): say so in the history.
  Catalog catalog(options_.avatar);
  for (const char* kind : {"ingest", "prepare", "report", "train"}) catalog.interrupt_stale_jobs(kCatalogPrefix + kind);
  worker_ = std::thread([this] { work(); });
}

JobRunner::~JobRunner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_requested_ = true;  // the job in progress stops at its next safe point, marked "interrupted"
  wake_.notify_all();
  if (worker_.joinable()) worker_.join();
}

JobRecord JobRunner::submit(const std::string& kind, const std::vector<std::string>& sources, const TrainRequest& train) {
  if (kind != "ingest" && kind != "prepare" && kind != "report" && kind != "train") {
    throw HttpError(400, fmt::format("unknown job kind \"{}\": give \"ingest\", \"prepare\", \"report\" or \"train\"", kind));
  }
  if (kind == "train" && train.model != "voice" && train.model != "stt" && train.model != "all") {
    throw HttpError(400, fmt::format("unknown model \"{}\": give \"voice\", \"stt\" or \"all\"", train.model));
  }
  std::vector<std::string> checked;
  if (kind == "ingest") {
    if (sources.empty()) throw HttpError(400, "an ingest job needs \"sources\": URLs or uploaded files");
    for (const auto& source : sources) checked.push_back(checked_source(options_.avatar, source));
  }
  JobRecord job;
  {
    std::lock_guard lock(mutex_);
    if (pending_id_ != 0) {
      throw HttpError(409, fmt::format("job {} is still running; one job at a time per avatar", pending_id_));
    }
    nlohmann::json arguments = {{"sources", checked}};
    if (kind == "train")
      arguments["train"] = {{"model", train.model}, {"steps", train.steps}, {"time_budget_s", train.time_budget_s}};
    job.id = Catalog(options_.avatar).start_job(kCatalogPrefix + kind, arguments.dump());
    job.kind = kind;
    job.sources = checked;
    job.train = train;
    job.started_at = utc_now();
    pending_id_ = job.id;
    jobs_.push_front(job);
    while (jobs_.size() > kJobsKept) jobs_.pop_back();
  }
  wake_.notify_all();
  on_change_(job);
  return job;
}

JobRecord JobRunner::stop(int64_t id) {
  {
    std::lock_guard lock(mutex_);
    for (auto& j : jobs_) {
      if (j.id != id) continue;
      if (id != pending_id_) {
        throw HttpError(409, fmt::format("job {} is not running (it is {}): nothing to stop", id, j.state));
      }
      stop_requested_ = true;
      j.log.push_back("stop requested");
      return j;
    }
  }
  // Not this run's (job() reads the catalog without the lock held).
  if (job(id)) throw HttpError(409, fmt::format("job {} ended before this server started: nothing to stop", id));
  throw HttpError(404, fmt::format("no job {}", id));
}

bool JobRunner::busy() const {
  std::lock_guard lock(mutex_);
  return pending_id_ != 0;
}

std::vector<JobRecord> JobRunner::jobs() const {
  std::vector<JobRecord> list;
  {
    std::lock_guard lock(mutex_);
    list.assign(jobs_.begin(), jobs_.end());
  }
  for (const Job& row : Catalog(options_.avatar).jobs(kCatalogJobsRead)) {
    if (row.command.rfind(kCatalogPrefix, 0) != 0) continue;
    bool known = std::any_of(list.begin(), list.end(), [&](const JobRecord& j) { return j.id == row.id; });
    if (!known && list.size() < kJobsKept) list.push_back(from_catalog(row));
  }
  std::sort(list.begin(), list.end(), [](const JobRecord& a, const JobRecord& b) { return a.id > b.id; });
  return list;
}

std::optional<JobRecord> JobRunner::job(int64_t id) const {
  {
    std::lock_guard lock(mutex_);
    for (const auto& job : jobs_) {
      if (job.id == id) return job;
    }
  }
  for (const Job& row : Catalog(options_.avatar).jobs(kCatalogJobsRead)) {
    if (row.id == id && row.command.rfind(kCatalogPrefix, 0) == 0) return from_catalog(row);
  }
  return std::nullopt;
}

int JobRunner::done_count() const {
  std::lock_guard lock(mutex_);
  return done_count_;
}

void JobRunner::changed(int64_t id, bool force) {
  static thread_local auto last = std::chrono::steady_clock::time_point{};
  auto now = std::chrono::steady_clock::now();
  if (!force && std::chrono::duration<double>(now - last).count() < kProgressInterval_s) return;
  last = now;
  std::optional<JobRecord> record = job(id);
  if (record) on_change_(*record);
}

void JobRunner::work() {
  while (true) {
    JobRecord job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || pending_id_ != 0; });
      if (stopping_) return;
      for (auto& j : jobs_) {
        if (j.id == pending_id_) {
          j.state = "running";
          job = j;
        }
      }
    }
    changed(job.id, true);
    run(job);
    {
      std::lock_guard lock(mutex_);
      for (auto& j : jobs_) {
        if (j.id == job.id) {
          j.state = job.state;
          j.error = job.error;
          j.finished_at = job.finished_at;
        }
      }
      if (job.state == "done") ++done_count_;
      try {
        Catalog catalog(options_.avatar);
        if (job.state == "interrupted") {
          catalog.interrupt_job(job.id, job.error);
        } else {
          catalog.finish_job(job.id, job.state == "done", job.error);
        }
      } catch (const std::exception& e) {
        spdlog::warn("job {}: cannot record its end in the catalog: {}", job.id, e.what());
      }
      pending_id_ = 0;
      stop_requested_ = stopping_;  // a stop was for this job only
    }
    changed(job.id, true);
  }
}

// A train job: `dself train` on the worker thread. A model that stops checkpoints and the job ends
// "interrupted" (the next train job resumes it); one whose data is not ready, or that fails,
// fails the job with its reason. Returns the failure ("" when every model trained or was up to
// date).
std::string JobRunner::run_train(const JobRecord& job, const ProgressSink& progress, const StopRequested& should_stop,
                                 const std::function<void(std::string)>& log) {
  train::TrainOptions options;
  options.avatar = options_.avatar;
  if (job.train.model == "voice") options.models = {train::Model::voice};
  if (job.train.model == "stt") options.models = {train::Model::stt};
  options.steps = job.train.steps;
  options.time_budget_s = job.train.time_budget_s;
  options.threads = std::max(1u, std::thread::hardware_concurrency());
  options.progress = progress;
  options.should_stop = should_stop;
  std::string failure, stopped;
  for (const train::ModelOutcome& outcome : train::train(options)) {
    const char* name = train::model_name(outcome.model);
    log(fmt::format("{}: {}: {}", name, outcome.state, outcome.message));
    for (const auto& warning : outcome.warnings) log(fmt::format("{}: warning: {}", name, warning));
    std::string line = fmt::format("{} {}: {}", name, outcome.state == "not_ready" ? "not ready" : outcome.state,
                                   outcome.message);
    if (outcome.state == "stopped") stopped += (stopped.empty() ? "" : "; ") + line;
    if (outcome.state == "not_ready" || outcome.state == "failed") failure += (failure.empty() ? "" : "; ") + line;
  }
  if (!stopped.empty()) return "interrupted: " + stopped + (failure.empty() ? "" : "; " + failure);
  return failure;
}

// Runs one job on this (the worker) thread. Nothing escapes: a failure becomes the job's error.
void JobRunner::run(JobRecord& job) {
  auto with_job = [this, id = job.id](const std::function<void(JobRecord&)>& change) {
    std::lock_guard lock(mutex_);
    for (auto& j : jobs_) {
      if (j.id == id) change(j);
    }
  };
  std::function<void(std::string)> log = [&](std::string line) {
    with_job([&](JobRecord& j) {
      j.log.push_back(std::move(line));
      if (j.log.size() > kLogLinesKept) j.log.erase(j.log.begin(), j.log.begin() + (j.log.size() - kLogLinesKept));
    });
  };
  // The work reports here (its options' ProgressSink): the job's progress, and a log line when a
  // task starts and when it ends.
  // The whole job's share done: for ingest and prepare, sources done plus the share of the one in
  // progress (for prepare, its step's place among kPrepareSteps); otherwise the task's own share.
  int64_t units_total = 0, units_done = 0;
  std::map<std::string, double> prepared_share;  // prepare: each source's share done, by its title
  bool in_report = false;
  auto units_share = [&](const ProgressEvent& event) {
    double task_share = event.total > 0 ? std::clamp(static_cast<double>(event.done) / event.total, 0.0, 1.0) : 0.0;
    if (event.finished) task_share = 1;
    if (job.kind == "prepare" && in_report) return 0.97 + 0.03 * task_share;
    if (units_total <= 0) return event.total > 0 ? task_share : -1.0;
    double current = task_share;
    if (job.kind == "prepare") {
      for (size_t i = 0; i < kPrepareSteps.size(); ++i) {
        if (event.task.rfind(kPrepareSteps[i] + " ", 0) == 0) {
          double& source = prepared_share[event.task.substr(kPrepareSteps[i].size() + 1)];
          source = std::max(source, (static_cast<double>(i) + task_share) / static_cast<double>(kPrepareSteps.size()));
        }
      }
      double sum = 0;
      for (const auto& [title, share] : prepared_share) sum += share;
      return std::min(sum / static_cast<double>(units_total), 0.97);
    }
    double share =
        (static_cast<double>(std::min(units_done, units_total)) + current) / static_cast<double>(units_total);
    return std::min(share, job.kind == "prepare" ? 0.97 : 1.0);
  };
  const auto job_start = std::chrono::steady_clock::now();
  ProgressSink progress = [&, task = std::string()](const ProgressEvent& event) mutable {
    bool started = event.task != task;
    task = event.task;
    double share = units_share(event);
    double elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - job_start).count();
    with_job([&](JobRecord& j) {
      j.done = event.done;
      j.total = event.total;
      j.label = event.task;
      if (share >= 0) j.share = std::max(j.share, share);  // never backwards
      // The pace so far, once there is enough of it to go by.
      j.eta_s = j.share >= 0.02 && j.share < 1 && elapsed_s >= 2 ? elapsed_s * (1 - j.share) / j.share : -1;
    });
    if (started && !event.finished) log(fmt::format("{}: started", event.task));
    if (event.finished) {
      log(fmt::format("{}: {}{} {} in {:.1f} s", event.task, event.done,
                      event.total > 0 ? fmt::format("/{}", event.total) : "", event.unit, event.elapsed_s));
    }
    changed(job.id, event.finished);
  };
  StopRequested should_stop = [this] { return stop_requested_.load(); };
  log(fmt::format("job {}: {} started", job.id, job.kind));
  if (job.kind == "prepare") {
    units_total = static_cast<int64_t>(Catalog(options_.avatar).sources().size());
  } else if (job.kind == "ingest") {
    units_total = static_cast<int64_t>(job.sources.size());
  }
  spdlog::info("job {}: {} started", job.id, job.kind);
  std::string failure;
  bool interrupted = false;
  try {
    if (job.kind == "ingest") {
      ingest::IngestOptions options;
      options.avatar = options_.avatar;
      options.yt_dlp = options_.yt_dlp;
      options.link = true;  // an upload is already in the workspace: link it into sources/, no second copy
      options.progress = progress;
      options.should_stop = should_stop;
      ingest::IngestReport report = ingest::ingest(job.sources, options, [&](const ingest::SourceResult& r) {
        ++units_done;
        switch (r.outcome) {
          case ingest::Outcome::added:
            log(fmt::format("added {} as {}", r.title, r.video_path));
            break;
          case ingest::Outcome::already_present:
            log(fmt::format("present {}", r.title.empty() ? r.input : r.title));
            break;
          case ingest::Outcome::failed:
            log(fmt::format("failed {}: {}", r.input, r.message));
            break;
        }
      });
      int failed = report.count(ingest::Outcome::failed);
      log(fmt::format("ingest: {} new, {} already present, {} failed", report.count(ingest::Outcome::added),
                      report.count(ingest::Outcome::already_present), failed));
      if (failed > 0) failure = fmt::format("{} source{} could not be ingested", failed, failed == 1 ? "" : "s");
      for (const auto& r : report.results) {
        if (r.outcome == ingest::Outcome::failed) failure += fmt::format("; {}: {}", r.input, r.message);
      }
    } else if (job.kind == "prepare") {
      prepare::PrepareOptions options;
      options.avatar = options_.avatar;
      options.progress = progress;
      options.should_stop = should_stop;
      prepare::PrepareReport report = prepare::prepare(options, [&](const prepare::SourceOutcome& outcome) {
        ++units_done;
        prepared_share[outcome.title] = 1;  // also a source whose steps were all up to date
        if (outcome.succeeded) {
          log(fmt::format("prepared {}", outcome.title));
        } else {
          log(fmt::format("failed {}: {}", outcome.title, outcome.error));
        }
      });
      int failed = report.failed_count();
      log(fmt::format("prepare: {} prepared, {} failed", report.sources.size() - failed, failed));
      if (failed > 0) failure = fmt::format("{} source{} could not be prepared", failed, failed == 1 ? "" : "s");
      for (const auto& s : report.sources) {
        if (!s.succeeded) failure += fmt::format("; {}: {}", s.title, s.error);
      }
      // The report is the next thing a person looks at: written as the last step of prepare.
      if (failed < static_cast<int>(report.sources.size())) {
        in_report = true;
        try {
          log(fmt::format("wrote {}", prepare::write_report(options).string()));
        } catch (const Stopped&) {
          throw;
        } catch (const std::exception& e) {
          log(fmt::format("report: not written: {}", describe(e)));
        }
      }
    } else if (job.kind == "report") {
      prepare::PrepareOptions options;
      options.avatar = options_.avatar;
      options.progress = progress;
      options.should_stop = should_stop;
      fs::path page = prepare::write_report(options);
      log(fmt::format("wrote {}", page.string()));
    } else if (job.kind == "train") {
      failure = run_train(job, progress, should_stop, log);
      interrupted = failure.rfind("interrupted", 0) == 0;
    }
  } catch (const Stopped& e) {
    interrupted = true;
    failure = fmt::format("interrupted: {}", e.what());
  } catch (const std::exception& e) {
    failure = describe(e);
  } catch (...) {
    failure = "internal error";
  }
  if (failure.empty()) {
    log(fmt::format("job {}: {} done", job.id, job.kind));
    spdlog::info("job {}: {} done", job.id, job.kind);
  } else {
    log(fmt::format("job {}: {} {}", job.id, job.kind, failure));
    spdlog::warn("job {}: {} {}", job.id, job.kind, failure);
  }
  job.state = interrupted ? "interrupted" : failure.empty() ? "done" : "failed";
  if (job.state == "done") {
    with_job([](JobRecord& j) {
      j.share = 1;
      j.eta_s = 0;
    });
  }
  job.error = failure;
  job.finished_at = utc_now();
}

}  // namespace dself::server::detail
