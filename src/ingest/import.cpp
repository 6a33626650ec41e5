// Importing video files (and the captions beside them) into sources/.
#include <algorithm>
#include <cctype>

#include <fmt/format.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "ingest/detail/run.h"

namespace dself::ingest::detail {
namespace {

namespace fs = std::filesystem;

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// "NAME.vtt", "NAME.srt", "NAME.en.vtt", "NAME.en-US.srt"...: English or unlabelled captions
// beside the video NAME.<ext>.
bool is_sidecar_captions(const std::string& file_name, const std::string& video_stem) {
  if (!file_name.starts_with(video_stem + ".")) return false;
  std::string rest = lowercase(file_name.substr(video_stem.size()));  // ".en.vtt"
  std::string extension;
  if (rest.ends_with(".vtt")) {
    extension = ".vtt";
  } else if (rest.ends_with(".srt")) {
    extension = ".srt";
  } else {
    return false;
  }
  std::string language = rest.substr(0, rest.size() - extension.size());  // "" or ".en"
  if (language.empty()) return true;
  language.erase(0, 1);
  return language == "en" || language.starts_with("en-") || language.starts_with("en_");
}

std::vector<fs::path> sidecar_captions(const fs::path& video) {
  std::string stem = video.stem().string();
  return valid_captions_in(video.parent_path().empty() ? "." : video.parent_path(),
                           [&](const std::string& name) { return is_sidecar_captions(name, stem); });
}

// The characters of a name that are safe everywhere; others become '_'.
std::string safe_suffix(const std::string& text) {
  std::string suffix = text;
  for (char& c : suffix) {
    bool plain = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    if (!plain || static_cast<unsigned char>(c) >= 0x80) c = '_';
  }
  return suffix;
}

// Copies a file into the workspace, or links it (hard link; a symbolic link to its real path
// when a hard link is impossible, e.g. across file systems).
void bring_in(const fs::path& from, const fs::path& to, bool link) {
  std::error_code ec;
  if (link) {
    fs::create_hard_link(from, to, ec);
    if (!ec) return;
    spdlog::debug("cannot hard-link {} ({}); making a symbolic link", from.string(), ec.message());
    ec.clear();
    fs::path target = fs::canonical(from, ec);
    if (!ec) fs::create_symlink(target, to, ec);
    if (!ec) return;
    throw EnvironmentError(
        fmt::format("cannot link {} into {}: {}", from.string(), to.parent_path().string(), ec.message()));
  }
  fs::copy_file(from, to, ec);
  if (ec) {
    throw EnvironmentError(fmt::format("cannot copy {} to {}: {}; check that the disk has room", from.string(),
                                       to.string(), ec.message()));
  }
}

// The import itself: stage, place, register. Throws InputError for a file dself cannot use.
SourceResult import_checked_file(Run& run, const std::string& input, const fs::path& file) {
  SourceResult result;
  result.input = input;
  result.title = file.stem().string();
  std::error_code ec;
  auto status = fs::status(file, ec);
  if (!fs::exists(status)) throw InputError("no such file or directory");
  if (!fs::is_regular_file(status)) throw InputError("is not a regular file (give a video file or a directory)");

  std::string hash = hash_file(file);
  result.key = "file:" + hash;
  if (auto existing = run.catalog.find_source(result.key)) {
    result.outcome = Outcome::already_present;
    result.message = fmt::format("already in the catalog as source {}", existing->id);
    return result;
  }
  if (auto same = source_with_video_hash(run, hash)) {
    result.outcome = Outcome::already_present;
    result.key = same->key;
    result.message = fmt::format("the same video as source {} ({})", same->id, same->origin);
    return result;
  }

  media::MediaInfo info = check_video(file);
  std::vector<fs::path> captions = sidecar_captions(file);

  // Stage the files beside their final place, then move them in with one rename, so that
  // sources/ never holds a half-copied video.
  fs::path staged = sources_dir(run) / ".importing" / hash.substr(0, 16);
  fs::remove_all(staged, ec);
  fs::create_directories(staged, ec);
  if (ec) throw EnvironmentError(fmt::format("cannot create {}: {}", staged.string(), ec.message()));
  std::string stem = safe_name(file.stem().string());
  std::string video_name = stem + safe_suffix(lowercase(file.extension().string()));
  bring_in(file, staged / video_name, run.options.link);
  std::vector<std::string> caption_names;
  for (const fs::path& caption : captions) {
    // Keep the language part: "talk.en.vtt" -> "<stem>.en.vtt".
    std::string suffix = caption.filename().string().substr(file.stem().string().size());
    caption_names.push_back(stem + safe_suffix(suffix));
    bring_in(caption, staged / caption_names.back(), false);
  }
  fs::path placed = place_in_sources(run, staged, fmt::format("{}-{}", stem, hash.substr(0, 8)));

  std::vector<MediaFile> files = {describe_video(run, placed / video_name, info, hash)};
  for (const std::string& name : caption_names) files.push_back(describe_file(run, placed / name, "captions"));
  Source source;
  source.key = result.key;
  source.kind = "file";
  source.origin = fs::absolute(file).lexically_normal().string();
  source.title = result.title;
  register_source(run, source, files, placed);

  result.outcome = Outcome::added;
  result.video_path = files.front().path;
  result.duration_s = info.duration_s;
  if (!captions.empty()) result.message = fmt::format("with {} captions file(s)", captions.size());
  return result;
}

}  // namespace

void import_file(Run& run, const std::string& input, const fs::path& file) {
  SourceResult result;
  try {
    result = import_checked_file(run, input, file);
  } catch (const InputError& e) {
    result.input = input;
    result.outcome = Outcome::failed;
    result.message = e.what();
  }
  run.add(result);
}

std::vector<fs::path> list_videos(const fs::path& dir) {
  std::vector<fs::path> videos;
  std::error_code list_error;
  for (const auto& entry : fs::directory_iterator(dir, list_error)) {
    std::error_code ec;
    std::string name = entry.path().filename().string();
    if (name.starts_with(".") || !entry.is_regular_file(ec) || !has_video_extension(entry.path())) continue;
    videos.push_back(entry.path());
  }
  if (list_error) throw InputError(fmt::format("cannot list the directory: {}", list_error.message()));
  std::sort(videos.begin(), videos.end());
  return videos;
}

void clean_import_staging(const Run& run) {
  std::error_code ec;
  fs::remove_all(sources_dir(run) / ".importing", ec);
}

}  // namespace dself::ingest::detail
