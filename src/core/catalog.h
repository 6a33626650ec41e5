// The catalog: dself.db, the SQLite record of an avatar's sources, media, stages and jobs.
// Schema and its versions: docs/FORMATS.md. Rows are written only after the files they
// describe are complete on disk, each group in one transaction.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace dself {

// A video the person appears in, however it arrived.
struct Source {
  int64_t id = 0;
  std::string key;     // identity used for de-duplication: "url:<extractor>:<id>" or "file:<hash>"
  std::string kind;    // "url" or "file"
  std::string origin;  // the URL or the original file path
  std::string title;
  std::string added_at;  // UTC, ISO 8601
};

// One file in the workspace belonging to a source.
struct MediaFile {
  int64_t id = 0;
  int64_t source_id = 0;
  std::string path;   // relative to the avatar directory
  std::string role;   // "video", "info" (yt-dlp JSON) or "captions"
  int64_t size_bytes = 0;
  std::string content_hash;
  double duration_s = 0;  // video only
  int width = 0;
  int height = 0;
  double fps = 0;
  bool has_video = false;
  bool has_audio = false;
};

// A stage finished for a source (source_id 0: for the whole avatar), with its inputs' hash.
struct StageRun {
  std::string stage;
  int64_t source_id = 0;
  std::string input_hash;
  std::string finished_at;
  std::string summary;  // JSON object: what the stage made, e.g. {"utterances": 12}
};

struct Job {
  int64_t id = 0;
  std::string command;   // e.g. "ingest"
  std::string arguments; // as given
  std::string state;     // "running", "done", "failed"
  std::string message;   // error message when failed
  std::string started_at;
  std::string finished_at;
};

// One message of a conversation with the avatar.
struct ChatMessage {
  int64_t conversation_id = 0;
  std::string role;          // "user" or "assistant"
  std::string text;
  std::string sources_json;  // JSON array of {source_id, title, start_s, end_s}
  std::string created_at;
};

class Catalog {
 public:
  // Opens (creating and migrating as needed) <avatar_dir>/dself.db.
  explicit Catalog(const std::filesystem::path& avatar_dir);
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  static constexpr int schema_version = 3;

  // Runs body in one transaction: all of its writes land, or none.
  void transaction(const std::function<void()>& body);

  std::optional<Source> find_source(const std::string& key) const;
  std::vector<Source> sources() const;
  // Inserts a source and its files together; returns the new source id.
  int64_t add_source(const Source& source, const std::vector<MediaFile>& files);

  std::vector<MediaFile> media(int64_t source_id = 0) const;  // 0: all

  void mark_stage_done(const StageRun& run);
  std::optional<StageRun> stage_run(const std::string& stage, int64_t source_id) const;
  std::vector<StageRun> stage_runs() const;

  int64_t start_job(const std::string& command, const std::string& arguments);
  void finish_job(int64_t job_id, bool succeeded, const std::string& message);
  std::vector<Job> jobs(int limit = 20) const;

  int64_t start_conversation(const std::string& engine);
  void add_message(const ChatMessage& message);
  std::vector<ChatMessage> messages(int64_t conversation_id) const;
  bool has_conversation(int64_t conversation_id) const;

  const std::filesystem::path& path() const { return path_; }

 private:
  void migrate();

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
};

// Current UTC time as ISO 8601 ("2026-11-24T12:00:00Z").
std::string utc_now();

}  // namespace dself
