#include "core/workspace.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/catalog.h"
#include "core/error.h"

namespace dself::workspace {

namespace fs = std::filesystem;

fs::path catalog_path(const fs::path& avatar) { return avatar / "dself.db"; }
fs::path config_path(const fs::path& avatar) { return avatar / "config.json"; }
fs::path sources_dir(const fs::path& avatar) { return avatar / "sources"; }
fs::path audio_dir(const fs::path& avatar) { return avatar / "audio"; }
fs::path audio_path(const fs::path& avatar, int64_t source_id) {
  return audio_dir(avatar) / fmt::format("{}.wav", source_id);
}
fs::path transcripts_dir(const fs::path& avatar) { return avatar / "transcripts"; }
fs::path transcript_path(const fs::path& avatar, int64_t source_id) {
  return transcripts_dir(avatar) / fmt::format("{}.json", source_id);
}
fs::path speech_root(const fs::path& avatar) { return avatar / "speech"; }
fs::path speech_dir(const fs::path& avatar, int64_t source_id) { return speech_root(avatar) / std::to_string(source_id); }
fs::path utterances_path(const fs::path& avatar, int64_t source_id) {
  return speech_dir(avatar, source_id) / "utterances.json";
}
fs::path faces_root(const fs::path& avatar) { return avatar / "faces"; }
fs::path face_dir(const fs::path& avatar, int64_t source_id) { return faces_root(avatar) / std::to_string(source_id); }
fs::path landmarks_path(const fs::path& avatar, int64_t source_id) { return face_dir(avatar, source_id) / "landmarks.bin"; }
fs::path face_summary_path(const fs::path& avatar, int64_t source_id) {
  return face_dir(avatar, source_id) / "summary.json";
}
fs::path models_dir(const fs::path& avatar) { return avatar / "models"; }
fs::path model_dir(const fs::path& avatar, const std::string& kind) { return models_dir(avatar) / kind; }
fs::path metrics_path(const fs::path& avatar, const std::string& kind) { return model_dir(avatar, kind) / "metrics.json"; }
fs::path renders_dir(const fs::path& avatar) { return avatar / "renders"; }
fs::path uploads_dir(const fs::path& avatar) { return avatar / "uploads"; }
fs::path tmp_dir(const fs::path& avatar) { return avatar / "tmp"; }
fs::path persona_db_path(const fs::path& avatar) { return avatar / "persona.db"; }
fs::path persona_card_path(const fs::path& avatar) { return avatar / "persona.json"; }
fs::path report_path(const fs::path& avatar) { return avatar / "report.html"; }

int64_t source_id_of(const fs::path& entry) {
  const std::string name = entry.stem().string();
  if (name.empty() || name.size() > 18 || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoll(name);
}

void require_avatar(const fs::path& avatar) {
  std::error_code ec;
  if (!fs::exists(catalog_path(avatar), ec)) {
    throw InputError(fmt::format("no avatar at {} (no dself.db): make one with `dself ingest SOURCE` and then "
                                 "`dself prepare` (each with --avatar {}), or give its directory with --avatar",
                                 avatar.string(), avatar.string()));
  }
}

void require_ingested(const fs::path& avatar) {
  require_avatar(avatar);
  if (Catalog(avatar).sources().empty()) {
    throw InputError(fmt::format("the avatar at {} has no sources: run `dself --avatar {} ingest SOURCE` first",
                                 avatar.string(), avatar.string()));
  }
}

void require_prepared(const fs::path& avatar) {
  require_ingested(avatar);
  Catalog catalog(avatar);
  for (const Source& source : catalog.sources()) {
    if (catalog.stage_run("prepare.speech", source.id) && catalog.stage_run("prepare.face", source.id)) return;
  }
  throw InputError(fmt::format("the avatar at {} is not prepared (no speech dataset and face track yet): run "
                               "`dself --avatar {} prepare`",
                               avatar.string(), avatar.string()));
}

Lock::Lock(const fs::path& avatar, const std::string& what) {
  std::error_code ec;
  fs::create_directories(avatar, ec);
  if (ec) {
    throw EnvironmentError(fmt::format("cannot create the avatar directory {}: {}; check that it is writable",
                                       avatar.string(), ec.message()));
  }
  fs::path lock_path = avatar / fmt::format(".{}.lock", what);
  // O_CLOEXEC: a child (yt-dlp, ffmpeg) must not inherit the lock and hold it after dself has died.
  fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw EnvironmentError(fmt::format("cannot open {}: {}; check that the avatar directory is writable",
                                       lock_path.string(), std::strerror(errno)));
  }
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    close(fd_);
    fd_ = -1;
    throw EnvironmentError(fmt::format("another `dself {}` is working on {}: wait for it to finish (two at once "
                                       "would do the same work)",
                                       what, avatar.string()));
  }
}

Lock::~Lock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace dself::workspace
