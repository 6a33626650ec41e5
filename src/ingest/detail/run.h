// Internals of the ingest stage shared by its .cpp files; the API is ingest.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/catalog.h"
#include "ingest/ingest.h"
#include "media/media.h"

namespace dself::ingest::detail {

// One ingest run: the options, the open catalog, and the results so far.
struct Run {
  const IngestOptions& options;
  Catalog& catalog;
  IngestReport& report;
  const ResultListener& on_result;

  // Records a result and tells the listener.
  void add(SourceResult result);
};

// --- the workspace (workspace.cpp) ---

// <avatar>/sources
std::filesystem::path sources_dir(const Run& run);

// The path as the catalog stores it: relative to the avatar directory, with '/'.
std::string avatar_relative(const Run& run, const std::filesystem::path& path);

// A file or directory name made of [A-Za-z0-9._-] only, not starting with '.' or '-', at most
// max_length bytes; "source" when nothing is left.
std::string safe_name(std::string_view text, size_t max_length = 80);

// Moves the directory staged_dir to sources/<name> (or <name>-2, -3... when that one belongs to
// a registered source) with one rename, and returns where it went. A directory of that name
// that no catalog row points into is a leftover of an interrupted run and is replaced.
std::filesystem::path place_in_sources(Run& run, const std::filesystem::path& staged_dir, const std::string& name);

// The catalog row for a file in the workspace: path, role, size, content hash (hashed here
// unless known_hash, the hash of identical bytes, is given).
MediaFile describe_file(const Run& run, const std::filesystem::path& path, const std::string& role,
                        const std::string& known_hash = "");

// The same for a video, with what probing it found.
MediaFile describe_video(const Run& run, const std::filesystem::path& path, const media::MediaInfo& info,
                         const std::string& known_hash = "");

// Adds the source and its files to the catalog in one transaction; when that fails, removes
// placed_dir (the files were not registered, so nothing refers to them) and rethrows.
int64_t register_source(Run& run, const Source& source, const std::vector<MediaFile>& files,
                        const std::filesystem::path& placed_dir);

// The registered source whose video has this content hash, if any.
std::optional<Source> source_with_video_hash(const Run& run, const std::string& content_hash);

// --- checking inputs (check.cpp) ---

// Probes a video and checks that dself can use it: complete (not truncated), with a video and
// an audio stream and a duration. Throws InputError saying what is wrong and what to do.
media::MediaInfo check_video(const std::filesystem::path& path);

// Whether a file name has one of the video extensions a directory scan picks up.
bool has_video_extension(const std::filesystem::path& path);

// The extensions a directory scan picks up, for messages: ".mp4, .mkv, ...".
std::string video_extensions_text();

// Whether a captions file (.vtt or .srt) looks like one and is of a sane size; when not,
// why_not says why.
bool captions_look_valid(const std::filesystem::path& path, std::string& why_not);

// The caption files in dir whose names `wanted` accepts and that look valid (the others are
// logged and skipped), sorted by name.
std::vector<std::filesystem::path> valid_captions_in(const std::filesystem::path& dir,
                                                     const std::function<bool(const std::string& name)>& wanted);

// --- the steps ---

// Imports one video file with its sidecar captions (import.cpp).
void import_file(Run& run, const std::string& input, const std::filesystem::path& file);

// The video files directly in a directory, sorted by name (import.cpp).
std::vector<std::filesystem::path> list_videos(const std::filesystem::path& dir);

// Removes what an interrupted import left in sources/.importing (import.cpp).
void clean_import_staging(const Run& run);

// Downloads a URL (a video or a playlist) with yt-dlp and registers what completed
// (download.cpp).
void download_url(Run& run, const std::string& url, const std::filesystem::path& yt_dlp);

// Registers the complete downloads an earlier, interrupted run left in the staging area
// (download.cpp).
void recover_downloads(Run& run);

}  // namespace dself::ingest::detail
