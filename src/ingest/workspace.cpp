// The workspace side of ingest: where files go in sources/ and how they are registered.
#include <fmt/format.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/workspace.h"
#include "ingest/detail/run.h"

namespace dself::ingest::detail {
namespace {

namespace fs = std::filesystem;

// Whether any catalog row points into sources/<name>/.
bool is_registered_dir(const Run& run, const std::string& name) {
  std::string prefix = "sources/" + name + "/";
  for (const MediaFile& file : run.catalog.media()) {
    if (file.path.starts_with(prefix)) return true;
  }
  return false;
}

}  // namespace

void Run::add(SourceResult result) {
  report.results.push_back(result);
  if (on_result) on_result(report.results.back());
}

fs::path sources_dir(const Run& run) { return workspace::sources_dir(run.options.avatar); }

std::string avatar_relative(const Run& run, const fs::path& path) {
  return path.lexically_relative(run.options.avatar).generic_string();
}

std::string safe_name(std::string_view text, size_t max_length) {
  std::string name;
  for (char c : text) {
    bool plain =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    name += plain ? c : '_';
    if (name.size() >= max_length) break;
  }
  size_t start = name.find_first_not_of(".-");
  name = start == std::string::npos ? "" : name.substr(start);
  return name.empty() ? "source" : name;
}

fs::path place_in_sources(Run& run, const fs::path& staged_dir, const std::string& name) {
  fs::path sources = sources_dir(run);
  for (int n = 1;; ++n) {
    std::string candidate = n == 1 ? name : fmt::format("{}-{}", name, n);
    fs::path target = sources / candidate;
    std::error_code ec;
    if (fs::exists(target, ec)) {
      if (is_registered_dir(run, candidate)) continue;
      // Files that no catalog row refers to: an earlier run died between placing and
      // registering them. The same source is being placed again now, so replace them.
      spdlog::debug("replacing {}, left unregistered by an interrupted run", target.string());
      fs::remove_all(target, ec);
      if (ec) throw EnvironmentError(fmt::format("cannot remove {}: {}", target.string(), ec.message()));
    }
    fs::rename(staged_dir, target, ec);
    if (ec) {
      throw EnvironmentError(
          fmt::format("cannot move {} to {}: {}", staged_dir.string(), target.string(), ec.message()));
    }
    return target;
  }
}

MediaFile describe_file(const Run& run, const fs::path& path, const std::string& role, const std::string& known_hash) {
  MediaFile file;
  file.path = avatar_relative(run, path);
  file.role = role;
  file.size_bytes = static_cast<int64_t>(fs::file_size(path));
  file.content_hash = known_hash.empty() ? hash_file(path) : known_hash;
  return file;
}

MediaFile describe_video(const Run& run, const fs::path& path, const media::MediaInfo& info,
                         const std::string& known_hash) {
  MediaFile file = describe_file(run, path, "video", known_hash);
  file.duration_s = info.duration_s;
  file.width = info.width;
  file.height = info.height;
  file.fps = info.fps;
  file.has_video = info.has_video;
  file.has_audio = info.has_audio;
  return file;
}

int64_t register_source(Run& run, const Source& source, const std::vector<MediaFile>& files,
                        const fs::path& placed_dir) {
  try {
    return run.catalog.add_source(source, files);
  } catch (...) {
    std::error_code ec;
    fs::remove_all(placed_dir, ec);
    throw;
  }
}

std::optional<Source> source_with_video_hash(const Run& run, const std::string& content_hash) {
  for (const MediaFile& file : run.catalog.media()) {
    if (file.role != "video" || file.content_hash != content_hash) continue;
    for (const Source& source : run.catalog.sources()) {
      if (source.id == file.source_id) return source;
    }
  }
  return std::nullopt;
}

}  // namespace dself::ingest::detail
