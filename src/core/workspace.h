// The avatar's workspace (DESIGN.md §1, docs/FORMATS.md): where every stage reads and writes,
// the checks that say which command to run when something is missing, and the locks that keep
// two runs of a stage apart. The one place that knows the workspace's layout.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace dself::workspace {

// --- paths, all inside the avatar directory ---
std::filesystem::path catalog_path(const std::filesystem::path& avatar);               // dself.db
std::filesystem::path config_path(const std::filesystem::path& avatar);                // config.json (`dself config`)
std::filesystem::path sources_dir(const std::filesystem::path& avatar);                // sources/
std::filesystem::path audio_dir(const std::filesystem::path& avatar);                  // audio/
std::filesystem::path audio_path(const std::filesystem::path& avatar, int64_t source_id);       // audio/<id>.wav
std::filesystem::path transcripts_dir(const std::filesystem::path& avatar);            // transcripts/
std::filesystem::path transcript_path(const std::filesystem::path& avatar, int64_t source_id);  // transcripts/<id>.json
std::filesystem::path speech_root(const std::filesystem::path& avatar);                // speech/
std::filesystem::path speech_dir(const std::filesystem::path& avatar, int64_t source_id);       // speech/<id>/
std::filesystem::path faces_root(const std::filesystem::path& avatar);                 // faces/
std::filesystem::path utterances_path(const std::filesystem::path& avatar, int64_t source_id);  // speech/<id>/utterances.json
std::filesystem::path face_dir(const std::filesystem::path& avatar, int64_t source_id);         // faces/<id>/
std::filesystem::path landmarks_path(const std::filesystem::path& avatar, int64_t source_id);   // faces/<id>/landmarks.bin
std::filesystem::path face_summary_path(const std::filesystem::path& avatar, int64_t source_id); // faces/<id>/summary.json
std::filesystem::path models_dir(const std::filesystem::path& avatar);                 // models/
std::filesystem::path model_dir(const std::filesystem::path& avatar, const std::string& kind);  // models/<kind>/
std::filesystem::path metrics_path(const std::filesystem::path& avatar, const std::string& kind); // models/<kind>/metrics.json
std::filesystem::path renders_dir(const std::filesystem::path& avatar);                // renders/
std::filesystem::path uploads_dir(const std::filesystem::path& avatar);                // uploads/
std::filesystem::path tmp_dir(const std::filesystem::path& avatar);                    // tmp/ (the server's voice messages)
std::filesystem::path persona_db_path(const std::filesystem::path& avatar);            // persona.db
std::filesystem::path persona_card_path(const std::filesystem::path& avatar);          // persona.json
std::filesystem::path report_path(const std::filesystem::path& avatar);                // report.html

// A source's id from its name in audio/, transcripts/, speech/ or faces/ ("12", "12.json"):
// -1 when the name is not one.
int64_t source_id_of(const std::filesystem::path& entry);

// --- checks: each throws InputError (exit 1) naming the avatar and the command to run ---

// There is an avatar here (its dself.db exists).
void require_avatar(const std::filesystem::path& avatar);
// ... and it has at least one source.
void require_ingested(const std::filesystem::path& avatar);
// ... and at least one source has its speech dataset and face track (prepare's speech and face
// steps are done).
void require_prepared(const std::filesystem::path& avatar);

// --- locks ---

// An exclusive lock on one kind of work on the avatar ("ingest", "prepare"): a second process
// (or thread) asking for the same one fails at once with an EnvironmentError (exit 2) saying
// "another `dself <what>` is working on <avatar>". Held until destruction or until the process
// dies (flock on <avatar>/.<what>.lock, not inherited by child processes). Creates the avatar
// directory when needed.
class Lock {
 public:
  Lock(const std::filesystem::path& avatar, const std::string& what);
  ~Lock();
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace dself::workspace
