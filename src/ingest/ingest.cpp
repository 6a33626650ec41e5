// The ingest stage's orchestration: sort the inputs, then download or import each in turn.
#include "ingest/ingest.h"

#include <memory>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/subprocess.h"
#include "core/workspace.h"
#include "ingest/detail/run.h"

namespace dself::ingest {
namespace {

namespace fs = std::filesystem;
using detail::Run;

// One input as given on the command line, sorted: a URL, a file, a directory's files, or an
// input that is wrong before anything is tried.
struct PlannedInput {
  std::string input;
  bool url = false;
  std::vector<fs::path> files;  // one for a file, the video files for a directory
  bool directory = false;
  std::string error;  // set when the input is unusable as given
};

PlannedInput plan_input(const std::string& input) {
  PlannedInput plan;
  plan.input = input;
  if (is_url(input)) {
    plan.url = true;
    return plan;
  }
  if (input.find("://") != std::string::npos) {
    plan.error = "is not an http:// or https:// URL, nor a file; dself downloads only from http(s)";
    return plan;
  }
  std::error_code ec;
  fs::path path(input);
  if (!fs::exists(path, ec)) {
    plan.error = "no such file or directory";
  } else if (fs::is_directory(path, ec)) {
    plan.directory = true;
    try {
      plan.files = detail::list_videos(path);
    } catch (const InputError& e) {
      plan.error = e.what();
    }
    if (plan.error.empty() && plan.files.empty()) {
      plan.error =
          fmt::format("has no video files ({}); subdirectories are not searched", detail::video_extensions_text());
    }
  } else {
    plan.files.push_back(path);
  }
  return plan;
}

fs::path find_yt_dlp(const std::string& program) {
  auto found = find_executable(program);
  if (!found) {
    throw EnvironmentError(fmt::format(
        "cannot find yt-dlp ('{}'), which dself needs to download URLs: install it (sudo apt install yt-dlp, or "
        "`pip install yt-dlp` for a newer one, as sites change faster than Debian's package), or give its path with "
        "--yt-dlp PATH or $DSELF_YTDLP",
        program));
  }
  return *found;
}

std::string join(const std::vector<std::string>& inputs) {
  std::string text;
  for (const auto& input : inputs) text += (text.empty() ? "" : " ") + input;
  return text;
}

std::string summary(const IngestReport& report) {
  return fmt::format("{} new, {} already present, {} failed", report.count(Outcome::added),
                     report.count(Outcome::already_present), report.count(Outcome::failed));
}

void import_files(Run& run, const PlannedInput& plan) {
  std::unique_ptr<Progress> progress;
  if (plan.files.size() > 1) {
    progress = std::make_unique<Progress>(fmt::format("ingest: import {}", plan.input),
                                          static_cast<int64_t>(plan.files.size()), "files", run.options.progress);
  }
  for (const fs::path& file : plan.files) {
    stop_if_requested(run.options.should_stop, "ingest");
    detail::import_file(run, plan.directory ? file.string() : plan.input, file);
    if (progress) progress->advance();
  }
}

void run_inputs(Run& run, const std::vector<PlannedInput>& plans) {
  bool any_url = false;
  for (const auto& plan : plans) any_url = any_url || plan.url;
  // Checked before anything is done: a run that cannot download should not half-happen.
  fs::path yt_dlp = any_url ? find_yt_dlp(run.options.yt_dlp) : fs::path();

  detail::clean_import_staging(run);
  detail::recover_downloads(run);
  for (const PlannedInput& plan : plans) {
    stop_if_requested(run.options.should_stop, "ingest");
    if (!plan.error.empty()) {
      SourceResult result;
      result.input = plan.input;
      result.outcome = Outcome::failed;
      result.message = plan.error;
      run.add(result);
    } else if (plan.url) {
      detail::download_url(run, plan.input, yt_dlp);
    } else {
      import_files(run, plan);
    }
  }
}

}  // namespace

int IngestReport::count(Outcome outcome) const {
  int n = 0;
  for (const auto& result : results) n += result.outcome == outcome;
  return n;
}

bool is_url(const std::string& input) { return input.starts_with("http://") || input.starts_with("https://"); }

IngestReport ingest(const std::vector<std::string>& inputs, const IngestOptions& given,
                    const ResultListener& on_result) {
  // Every workspace path is built from one absolute avatar path, so that the catalog's
  // relative paths come out the same whatever the working directory.
  IngestOptions options = given;
  options.avatar = fs::absolute(given.avatar).lexically_normal();
  std::vector<PlannedInput> plans;
  for (const auto& input : inputs) plans.push_back(plan_input(input));

  // The lock first: two ingests creating a new avatar at once must not both create its catalog.
  workspace::Lock lock(options.avatar, "ingest");
  Catalog catalog(options.avatar);
  // Holding the lock, no other ingest is running: one still marked so was killed.
  catalog.interrupt_stale_jobs("ingest");
  IngestReport report;
  Run run{options, catalog, report, on_result};
  int64_t job = catalog.start_job("ingest", join(inputs));
  try {
    run_inputs(run, plans);
  } catch (const Stopped& e) {
    catalog.interrupt_job(job, fmt::format("interrupted: {} ({})", e.what(), summary(report)));
    throw;
  } catch (const std::exception& e) {
    catalog.finish_job(job, false, describe(e));
    throw;
  }
  // The job's message is for failures (catalog.h): the summary and each failure with its reason.
  bool succeeded = report.count(Outcome::failed) == 0;
  std::string message;
  if (!succeeded) {
    message = summary(report);
    for (const auto& result : report.results) {
      if (result.outcome == Outcome::failed) message += fmt::format("\n{}: {}", result.input, result.message);
    }
  }
  catalog.finish_job(job, succeeded, message);
  return report;
}

}  // namespace dself::ingest
