// The ingest stage: brings a person's videos into the avatar's workspace (<avatar>/sources/) and
// its catalog, from URLs (through yt-dlp: single videos and whole playlists) and from video
// files or directories of them. Idempotent: a source already in the catalog is not added again;
// a failed or interrupted download is never registered and is resumed by the next run.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/progress.h"

namespace dself::ingest {

// How to ingest; `dself ingest`'s flags fill it, and its help shows these defaults.
struct IngestOptions {
  std::filesystem::path avatar = "avatar";  // the avatar's workspace directory
  std::string yt_dlp = "yt-dlp";            // yt-dlp program: a name looked up in PATH, or a path
  int max_height = 720;                     // pixels; a download takes the best format up to this height
  bool link = false;                        // import files as hard links (symlinks across file systems)
  ProgressSink progress;                    // every download's and import's progress (besides the display)
  // Asked between sources and files and while yt-dlp runs: when it says so, yt-dlp is ended,
  // the job is marked "interrupted" and ingest throws Stopped. Nothing unfinished is registered;
  // the next run resumes the download.
  StopRequested should_stop;
};

// What ingesting one source came to.
enum class Outcome {
  added,            // now in the catalog, its files in sources/
  already_present,  // the catalog had it already; nothing changed
  failed,           // not ingested; SourceResult::message says why
};

// What happened to one source (one video: a playlist gives one result per entry).
struct SourceResult {
  std::string input;  // the URL, file or directory it came from, as given
  Outcome outcome = Outcome::failed;
  std::string key;  // the catalog's source key; empty when it failed before one was known
  std::string title;
  std::string video_path;  // the video in the workspace, relative to the avatar (added only)
  double duration_s = 0;   // seconds of video (added only)
  std::string message;     // why it failed; for the others a note, often empty
};

// Every result of one ingest run, in the order they happened.
struct IngestReport {
  std::vector<SourceResult> results;
  int count(Outcome outcome) const;  // how many results have this outcome
};

// Called with each result as soon as it is known, so that a CLI can print as it goes.
using ResultListener = std::function<void(const SourceResult&)>;

// Ingests every input in order: http(s) URLs through yt-dlp, files by import, directories by
// importing the video files directly in them (not in subdirectories). A bad source becomes a
// failed result and the rest go on; nothing already in the catalog is changed by a failure.
// Records the run as an "ingest" job. Throws EnvironmentError when a URL is given and yt-dlp
// cannot be found, when another ingest holds the workspace, or when the workspace cannot be
// written.
IngestReport ingest(const std::vector<std::string>& inputs, const IngestOptions& options,
                    const ResultListener& on_result = {});

// True for the inputs that ingest downloads (http:// and https:// URLs) rather than imports.
bool is_url(const std::string& input);

}  // namespace dself::ingest
