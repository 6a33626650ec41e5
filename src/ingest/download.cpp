// Downloading with yt-dlp (a subprocess) into a staging area, and registering what completed.
//
// Layout: yt-dlp writes each video into its own directory under
//   sources/.downloading/<hash of the URL given>/<extractor>-<id>/video.{mp4,info.json,en.vtt}
// and resumes from its .part files there (--continue) when a run was interrupted. A download
// whose final video file exists is complete (yt-dlp renames onto that name only when the
// download, and any merge, finished); its directory is then moved into sources/ with one
// rename and registered in the catalog. Nothing under .downloading is ever registered.
//
// The crash window. yt-dlp's download archive (sources/yt-dlp-archive.txt) lets a re-run skip
// what is done without fetching it again, but yt-dlp appends to it as soon as a video is
// downloaded, before dself has registered it. So the archive is not trusted: before every run
// it is rewritten from the catalog, which is the one record of what is done. A video that
// yt-dlp finished but dself never registered is then not in the archive; its complete files
// are still in the staging area, where the next run registers them first (recover_downloads)
// and where yt-dlp, asked again, finds them "already downloaded" without fetching them.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <deque>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/subprocess.h"
#include "ingest/detail/run.h"

namespace dself::ingest::detail {
namespace {

namespace fs = std::filesystem;

constexpr const char* progress_marker = "dself-progress";
constexpr size_t output_tail_lines = 20;

// yt-dlp's ids are global for a site (a YouTube video id) except from its generic extractors,
// which number the videos of the page they found them on ("playlist-1"): those are only
// unique together with the page.
bool ids_are_per_page(const std::string& extractor) { return extractor == "generic" || extractor == "html5mediaembed"; }

// '%' and '@' escaped so that "<id>@<page>" splits at the first '@'.
std::string escape_id(const std::string& id) {
  std::string escaped;
  for (char c : id) {
    if (c == '%') {
      escaped += "%25";
    } else if (c == '@') {
      escaped += "%40";
    } else {
      escaped += c;
    }
  }
  return escaped;
}

std::string unescape_id(const std::string& escaped) {
  std::string id;
  for (size_t i = 0; i < escaped.size(); ++i) {
    if (escaped.compare(i, 3, "%25") == 0) {
      id += '%';
      i += 2;
    } else if (escaped.compare(i, 3, "%40") == 0) {
      id += '@';
      i += 2;
    } else {
      id += escaped[i];
    }
  }
  return id;
}

// A downloaded video's identity: "url:<extractor>:<id>", or "url:<extractor>:<id>@<page URL>"
// for per-page ids. <extractor> <id> is yt-dlp's own archive identity
// (ref: yt_dlp/YoutubeDL.py, _make_archive_id: extractor_key lowercased, a space, the id), so
// the archive can be rebuilt from the catalog's keys.
std::string source_key(const std::string& extractor, const std::string& id, const std::string& page) {
  if (ids_are_per_page(extractor)) return fmt::format("url:{}:{}@{}", extractor, escape_id(id), page);
  return fmt::format("url:{}:{}", extractor, id);
}

// The archive line for a registered download, when a run on `url` could meet it.
std::optional<std::string> archive_line(const std::string& key, const std::string& url) {
  if (!key.starts_with("url:")) return std::nullopt;
  size_t colon = key.find(':', 4);
  if (colon == std::string::npos) return std::nullopt;
  std::string extractor = key.substr(4, colon - 4);
  std::string id = key.substr(colon + 1);
  if (ids_are_per_page(extractor)) {
    size_t at = id.find('@');
    if (at == std::string::npos || id.substr(at + 1) != url) return std::nullopt;
    id = unescape_id(id.substr(0, at));
  }
  return extractor + " " + id;
}

void write_archive(const Run& run, const fs::path& archive, const std::string& url) {
  std::string text;
  for (const Source& source : run.catalog.sources()) {
    if (auto line = archive_line(source.key, url)) text += *line + "\n";
  }
  write_file_atomic(archive, text);
}

fs::path staging_root(const Run& run) { return sources_dir(run) / ".downloading"; }

fs::path staging_for(const Run& run, const std::string& url) {
  return staging_root(run) / hash_bytes(url).substr(0, 16);
}

// The finished video of a download directory: "video.<ext>"; never "video.mp4.part", an
// unmerged "video.f137.mp4" or a merge's "video.temp.mp4".
std::optional<fs::path> finished_video(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path& path = entry.path();
    if (path.stem() == "video" && has_video_extension(path) && entry.is_regular_file(ec)) return path;
  }
  return std::nullopt;
}

// What dself reads from yt-dlp's info JSON (the whole file is kept as the source's "info").
struct DownloadInfo {
  std::string extractor;  // extractor_key, lowercased: "youtube", "html5mediaembed"
  std::string id;
  std::string title;
  std::string webpage_url;
  std::string media_url;  // "url": the file itself, when it was one file
};

DownloadInfo read_info(const fs::path& path) {
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("has an unreadable yt-dlp info file {}: {}", path.string(), e.what()));
  }
  auto text = [&](const char* field) {
    auto it = json.find(field);
    return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  DownloadInfo info;
  info.extractor = text("extractor_key").empty() ? text("extractor") : text("extractor_key");
  for (char& c : info.extractor) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  info.id = text("id");
  info.title = text("title");
  info.webpage_url = text("webpage_url");
  info.media_url = text("url");
  if (info.extractor.empty() || info.id.empty()) {
    throw InputError(fmt::format("has a yt-dlp info file without extractor and id: {}", path.string()));
  }
  return info;
}

// The captions yt-dlp wrote beside the video: "video.en.vtt", "video.en-US.vtt"...
std::vector<fs::path> downloaded_captions(const fs::path& dir) {
  return valid_captions_in(dir, [](const std::string& name) {
    return name.starts_with("video.") && (name.ends_with(".vtt") || name.ends_with(".srt"));
  });
}

// Removes what a finished download no longer needs before it moves into sources/: the
// separate video and audio of a merge, when yt-dlp died before deleting them, and the like.
void remove_leftovers(const fs::path& dir, const fs::path& video, const std::vector<fs::path>& captions) {
  std::error_code ec;
  std::vector<fs::path> leftovers;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const fs::path& path = entry.path();
    bool kept = path == video || path.filename() == "video.info.json" ||
                std::find(captions.begin(), captions.end(), path) != captions.end();
    if (!kept) leftovers.push_back(path);
  }
  for (const fs::path& path : leftovers) fs::remove_all(path, ec);
}

// Checks, places and registers one complete download; its staging directory is gone after.
SourceResult register_download(Run& run, const fs::path& dir, const fs::path& video, const std::string& input) {
  SourceResult result;
  result.input = input;
  DownloadInfo info = read_info(dir / "video.info.json");
  if (result.input.empty()) result.input = info.webpage_url;
  result.title = info.title.empty() ? info.id : info.title;
  result.key = source_key(info.extractor, info.id, info.webpage_url);
  std::error_code ec;
  if (auto existing = run.catalog.find_source(result.key)) {
    fs::remove_all(dir, ec);
    result.outcome = Outcome::already_present;
    result.message = fmt::format("already in the catalog as source {}", existing->id);
    return result;
  }
  media::MediaInfo media_info;
  try {
    media_info = check_video(video);
  } catch (const InputError& e) {
    // A complete download that dself cannot use: drop it; the next run fetches it afresh.
    fs::remove_all(dir, ec);
    throw InputError(fmt::format("'{}' {}", result.title, e.what()));
  }
  std::vector<fs::path> captions = downloaded_captions(dir);
  remove_leftovers(dir, video, captions);

  std::string name = safe_name(info.extractor + "-" + info.id);
  if (ids_are_per_page(info.extractor)) name += "-" + hash_bytes(info.webpage_url).substr(0, 8);
  fs::path placed = place_in_sources(run, dir, name);
  std::vector<MediaFile> files = {describe_video(run, placed / video.filename(), media_info),
                                  describe_file(run, placed / "video.info.json", "info")};
  for (const fs::path& caption : captions) files.push_back(describe_file(run, placed / caption.filename(), "captions"));
  Source source;
  source.key = result.key;
  source.kind = "url";
  source.origin = ids_are_per_page(info.extractor) && !info.media_url.empty() ? info.media_url : info.webpage_url;
  source.title = result.title;
  register_source(run, source, files, placed);

  result.outcome = Outcome::added;
  result.video_path = files.front().path;
  result.duration_s = media_info.duration_s;
  if (!captions.empty()) result.message = fmt::format("with {} captions file(s)", captions.size());
  return result;
}

// Registers every complete download under one URL's staging directory; leaves the incomplete
// ones (their .part files) for yt-dlp to resume. Removes the directory once empty when asked
// (not while yt-dlp may be about to write into it).
void register_finished_downloads(Run& run, const fs::path& staging, const std::string& input, const std::string& note,
                                 bool remove_when_empty) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(staging, ec)) {
    if (entry.is_directory(ec)) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end());
  for (const fs::path& dir : dirs) {
    auto video = finished_video(dir);
    if (!video || !fs::exists(dir / "video.info.json", ec)) continue;
    SourceResult result;
    try {
      result = register_download(run, dir, *video, input);
      if (!note.empty()) result.message = result.message.empty() ? note : note + ", " + result.message;
    } catch (const InputError& e) {
      result.input = input;
      result.outcome = Outcome::failed;
      result.message = e.what();
    }
    run.add(result);
  }
  if (remove_when_empty && fs::is_empty(staging, ec)) fs::remove(staging, ec);
}

double number_or_zero(const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  return end != text.c_str() ? value : 0;
}

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (true) {
    size_t tab = line.find('\t', start);
    fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) return fields;
    start = tab + 1;
  }
}

// Follows yt-dlp's output (stdout and stderr in one stream): progress lines become dself
// progress, errors are tied to the playlist item they happened in, and finished items are
// registered as the playlist moves on.
class YtDlpOutput {
 public:
  YtDlpOutput(Run& run, std::string url, fs::path staging)
      : run_(run), url_(std::move(url)), staging_(std::move(staging)) {}

  void on_line(const std::string& line) {
    tail_.push_back(line);
    if (tail_.size() > output_tail_lines) tail_.pop_front();
    if (error_continues_) {
      error_continues_ = false;
      errors_.back() += line;
      return;
    }
    if (line.starts_with(progress_marker)) return on_progress(split_tabs(line));
    if (line.starts_with("ERROR:")) {
      progress_.reset();
      std::string where = item_.empty() ? "" : item_ + (id_.empty() ? "" : " (" + id_ + ")") + ": ";
      std::string what = line.substr(std::min<size_t>(line.size(), 7));
      errors_.push_back(where + what);
      // After a progress line yt-dlp writes "ERROR: \r<message>": the message is the next line.
      error_continues_ = what.find_first_not_of(' ') == std::string::npos;
      return;
    }
    spdlog::debug("yt-dlp: {}", line);
    if (line.starts_with("[download] Downloading item ")) {
      // The previous item is done with (downloaded, merged, moved): register it now rather
      // than after the whole playlist.
      progress_.reset();
      register_finished_downloads(run_, staging_, url_, "", false);
      item_ = line.substr(std::string("[download] Downloading ").size());
      id_.clear();
    } else if (line.starts_with("[info] ") && line.find(": Downloading") != std::string::npos) {
      id_ = line.substr(7, line.find(": Downloading") - 7);
    } else if (line.starts_with("[download] ") && line.ends_with(" has already been recorded in the archive")) {
      std::string title =
          line.substr(11, line.size() - 11 - std::string(" has already been recorded in the archive").size());
      already_.push_back(title);
    }
  }

  const std::vector<std::string>& errors() const { return errors_; }
  const std::vector<std::string>& already_downloaded() const { return already_; }
  std::string last_line() const { return tail_.empty() ? std::string() : tail_.back(); }
  void finish() { progress_.reset(); }

 private:
  // fields: marker, id, status, downloaded bytes, total bytes, estimated total, title
  void on_progress(const std::vector<std::string>& fields) {
    if (fields.size() < 7 || fields[1] == "NA") return;  // "NA": a captions file, too small to show
    const std::string& status = fields[2];
    auto done = static_cast<int64_t>(number_or_zero(fields[3]));
    auto total = static_cast<int64_t>(number_or_zero(fields[4]));
    if (total == 0) total = static_cast<int64_t>(number_or_zero(fields[5]));
    if (!progress_) {
      std::string title = fields[6].size() > 48 ? fields[6].substr(0, 45) + "..." : fields[6];
      std::string item = item_.empty() ? "" : "(" + item_ + ") ";
      progress_ = std::make_unique<Progress>(fmt::format("ingest: download {}{}", item, title), total, "bytes",
                                             run_.options.progress);
    }
    if (total > 0) progress_->set_total(total);
    progress_->set_done(done);
    if (status != "downloading") progress_.reset();  // "finished" or "error": the next file starts afresh
  }

  Run& run_;
  std::string url_;
  fs::path staging_;
  std::string item_;              // "item 2 of 5" while in a playlist
  std::string id_;                // the video being worked on
  bool error_continues_ = false;  // the last line was an "ERROR:" whose message is on the next
  std::unique_ptr<Progress> progress_;
  std::vector<std::string> errors_;
  std::vector<std::string> already_;
  std::deque<std::string> tail_;
};

std::vector<std::string> yt_dlp_command(const Run& run, const fs::path& yt_dlp, const fs::path& staging,
                                        const fs::path& archive, const std::string& url) {
  std::vector<std::string> argv;
  // yt-dlp dies with dself: a SIGKILLed dself must not leave it writing into the staging area
  // where the next run will resume. setpriv (util-linux) sets the parent-death signal, which
  // survives the exec into sh and yt-dlp.
  if (auto setpriv = find_executable("setpriv")) argv = {setpriv->string(), "--pdeathsig", "KILL", "--"};
  // yt-dlp writes errors to stderr and the rest to stdout; one ordered stream tells which
  // video an error belongs to. The script is fixed; every argument passes through "$@" as is.
  argv.insert(argv.end(), {"/bin/sh", "-c", "PYTHONUNBUFFERED=1; export PYTHONUNBUFFERED; exec \"$0\" \"$@\" 2>&1",
                           yt_dlp.string()});
  std::string format = fmt::format("bv*[height<={0}]+ba/b[height<={0}]/b", run.options.max_height);
  std::string progress_template = fmt::format(
      "download:{}\t%(info.id)s\t%(progress.status)s\t%(progress.downloaded_bytes)s\t%(progress.total_bytes)s\t"
      "%(progress.total_bytes_estimate)s\t%(info.title)s",
      progress_marker);
  // clang-format off
  argv.insert(argv.end(), {
      "--ignore-config",  // a user's config could change names and formats under dself
      "--no-colors", "--newline", "--progress-template", progress_template,
      // A failed video (or its captions) does not stop the playlist; the exit status still
      // says that something failed, and each failure has its "ERROR:" line.
      "--ignore-errors",
      "--continue", "--no-mtime", "--restrict-filenames",
      "--paths", staging.string(),
      "--output", "%(extractor)s-%(id)s/video.%(ext)s",
      "--no-write-playlist-metafiles",
      "--format", format,
      "--merge-output-format", "mp4",
      "--write-info-json",
      "--write-subs", "--write-auto-subs", "--sub-langs", "en.*,en", "--sub-format", "vtt",
      "--download-archive", archive.string(),
      "--", url,
  });
  // clang-format on
  return argv;
}

}  // namespace

void download_url(Run& run, const std::string& url, const fs::path& yt_dlp) {
  fs::path staging = staging_for(run, url);
  fs::path archive = sources_dir(run) / "yt-dlp-archive.txt";
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) throw EnvironmentError(fmt::format("cannot create {}: {}", staging.string(), ec.message()));
  write_archive(run, archive, url);

  spdlog::info("downloading {} with {}", url, yt_dlp.string());
  YtDlpOutput output(run, url, staging);
  SubprocessResult process = run_subprocess(yt_dlp_command(run, yt_dlp, staging, archive, url),
                                            [&](const std::string& line) { output.on_line(line); },
                                            run.options.should_stop);
  output.finish();
  register_finished_downloads(run, staging, url, "", true);
  if (fs::is_empty(staging_root(run), ec)) fs::remove(staging_root(run), ec);

  for (const std::string& title : output.already_downloaded()) {
    SourceResult result;
    result.input = url;
    result.title = title;
    result.outcome = Outcome::already_present;
    result.message = "already downloaded (in the catalog and yt-dlp's archive)";
    run.add(result);
  }
  if (process.exit_code == 0) return;
  // No "ERROR:" line: yt-dlp did not get as far as a URL. 126/127: the shell could not run it;
  // 2: its option parser refused dself's options (a yt-dlp too old, or another program).
  if (output.errors().empty() && (process.exit_code == 126 || process.exit_code == 127 || process.exit_code == 2)) {
    throw EnvironmentError(fmt::format(
        "cannot run yt-dlp ({}): {}; install a recent one (`pip install yt-dlp`) and give it with --yt-dlp PATH",
        yt_dlp.string(), output.last_line()));
  }
  std::vector<std::string> errors = output.errors();
  if (errors.empty()) {
    errors.push_back(fmt::format("exit status {}; its last words: {}", process.exit_code, output.last_line()));
  }
  for (const std::string& error : errors) {
    SourceResult result;
    result.input = url;
    result.outcome = Outcome::failed;
    result.message = "yt-dlp failed: " + error;
    run.add(result);
  }
}

void recover_downloads(Run& run) {
  std::error_code ec;
  fs::path root = staging_root(run);
  if (!fs::is_directory(root, ec)) return;
  std::vector<fs::path> stagings;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory(ec)) stagings.push_back(entry.path());
  }
  for (const fs::path& staging : stagings) {
    register_finished_downloads(run, staging, "", "recovered from an interrupted run", true);
  }
  if (fs::is_empty(root, ec)) fs::remove(root, ec);
}

}  // namespace dself::ingest::detail
