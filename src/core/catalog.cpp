#include "core/catalog.h"

#include <sqlite3.h>

#include <ctime>

#include <fmt/format.h>

#include "core/error.h"

namespace dself {
namespace {

// Each entry migrates the schema from version i to i+1; never edit one that has shipped.
const char* const migrations[] = {
    R"sql(
    CREATE TABLE sources (
      id INTEGER PRIMARY KEY,
      key TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL CHECK (kind IN ('url', 'file')),
      origin TEXT NOT NULL,
      title TEXT NOT NULL DEFAULT '',
      added_at TEXT NOT NULL
    );
    CREATE TABLE media (
      id INTEGER PRIMARY KEY,
      source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
      path TEXT NOT NULL UNIQUE,
      role TEXT NOT NULL CHECK (role IN ('video', 'info', 'captions')),
      size_bytes INTEGER NOT NULL,
      content_hash TEXT NOT NULL,
      duration_s REAL NOT NULL DEFAULT 0,
      width INTEGER NOT NULL DEFAULT 0,
      height INTEGER NOT NULL DEFAULT 0,
      fps REAL NOT NULL DEFAULT 0,
      has_video INTEGER NOT NULL DEFAULT 0,
      has_audio INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX media_source ON media(source_id);
    CREATE TABLE stages (
      stage TEXT NOT NULL,
      source_id INTEGER NOT NULL,
      input_hash TEXT NOT NULL,
      finished_at TEXT NOT NULL,
      PRIMARY KEY (stage, source_id)
    );
    CREATE TABLE jobs (
      id INTEGER PRIMARY KEY,
      command TEXT NOT NULL,
      arguments TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('running', 'done', 'failed')),
      message TEXT NOT NULL DEFAULT '',
      started_at TEXT NOT NULL,
      finished_at TEXT NOT NULL DEFAULT ''
    );
    )sql",
    // 2: a stage records what it made (counts, reasons), so that status need not reread outputs.
    R"sql(
    ALTER TABLE stages ADD COLUMN summary TEXT NOT NULL DEFAULT '{}';
    )sql",
    // 3: conversations with the avatar (dself chat, later the web UI).
    R"sql(
    CREATE TABLE conversations (
      id INTEGER PRIMARY KEY,
      engine TEXT NOT NULL,
      started_at TEXT NOT NULL
    );
    CREATE TABLE messages (
      id INTEGER PRIMARY KEY,
      conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
      role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
      text TEXT NOT NULL,
      sources TEXT NOT NULL DEFAULT '[]',
      created_at TEXT NOT NULL
    );
    CREATE INDEX messages_conversation ON messages(conversation_id);
    )sql",
};
constexpr int migration_count = sizeof(migrations) / sizeof(migrations[0]);
static_assert(migration_count == Catalog::schema_version);

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      throw Error(ErrorKind::internal, fmt::format("catalog: cannot prepare '{}': {}", sql, sqlite3_errmsg(db)));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  // True while a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw EnvironmentError(fmt::format("catalog {}: {}", sqlite3_db_filename(db_, "main"), sqlite3_errmsg(db_)));
  }
  std::string text(int col) const {
    auto p = sqlite3_column_text(stmt_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    throw EnvironmentError(fmt::format("catalog {}: {}", sqlite3_db_filename(db, "main"), text));
  }
}

Source read_source(const Statement& s) {
  return Source{s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5)};
}

MediaFile read_media(const Statement& s) {
  MediaFile m;
  m.id = s.integer(0);
  m.source_id = s.integer(1);
  m.path = s.text(2);
  m.role = s.text(3);
  m.size_bytes = s.integer(4);
  m.content_hash = s.text(5);
  m.duration_s = s.real(6);
  m.width = static_cast<int>(s.integer(7));
  m.height = static_cast<int>(s.integer(8));
  m.fps = s.real(9);
  m.has_video = s.integer(10) != 0;
  m.has_audio = s.integer(11) != 0;
  return m;
}

}  // namespace

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

Catalog::Catalog(const std::filesystem::path& avatar_dir) : path_(avatar_dir / "dself.db") {
  std::error_code ec;
  std::filesystem::create_directories(avatar_dir, ec);
  if (ec) {
    throw InputError(fmt::format("cannot create the avatar directory {}: {} (choose another with --avatar)",
                                 avatar_dir.string(), ec.message()));
  }
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw EnvironmentError(fmt::format("cannot open the catalog {}: {}", path_.string(), message));
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    exec(db_, "PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    migrate();
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Catalog::~Catalog() { sqlite3_close(db_); }

void Catalog::migrate() {
  int64_t version = 0;
  {
    Statement s(db_, "PRAGMA user_version");
    if (s.step()) version = s.integer(0);
  }
  if (version > schema_version) {
    throw EnvironmentError(fmt::format("the catalog {} has schema version {}, newer than this dself ({}): upgrade dself",
                                       path_.string(), version, schema_version));
  }
  for (int64_t v = version; v < schema_version; ++v) {
    transaction([&] {
      exec(db_, migrations[v]);
      exec(db_, fmt::format("PRAGMA user_version = {}", v + 1).c_str());
    });
  }
}

void Catalog::transaction(const std::function<void()>& body) {
  exec(db_, "BEGIN IMMEDIATE");
  try {
    body();
    exec(db_, "COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<Source> Catalog::find_source(const std::string& key) const {
  Statement s(db_, "SELECT id, key, kind, origin, title, added_at FROM sources WHERE key = ?");
  s.bind(1, key);
  if (s.step()) return read_source(s);
  return std::nullopt;
}

std::vector<Source> Catalog::sources() const {
  Statement s(db_, "SELECT id, key, kind, origin, title, added_at FROM sources ORDER BY id");
  std::vector<Source> result;
  while (s.step()) result.push_back(read_source(s));
  return result;
}

int64_t Catalog::add_source(const Source& source, const std::vector<MediaFile>& files) {
  int64_t id = 0;
  transaction([&] {
    Statement s(db_, "INSERT INTO sources (key, kind, origin, title, added_at) VALUES (?, ?, ?, ?, ?)");
    s.bind(1, source.key).bind(2, source.kind).bind(3, source.origin).bind(4, source.title);
    s.bind(5, source.added_at.empty() ? utc_now() : source.added_at);
    s.step();
    id = sqlite3_last_insert_rowid(db_);
    for (const auto& f : files) {
      Statement m(db_,
                  "INSERT INTO media (source_id, path, role, size_bytes, content_hash, duration_s, width, height,"
                  " fps, has_video, has_audio) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      m.bind(1, id).bind(2, f.path).bind(3, f.role).bind(4, f.size_bytes).bind(5, f.content_hash);
      m.bind(6, f.duration_s).bind(7, int64_t{f.width}).bind(8, int64_t{f.height}).bind(9, f.fps);
      m.bind(10, int64_t{f.has_video}).bind(11, int64_t{f.has_audio});
      m.step();
    }
  });
  return id;
}

std::vector<MediaFile> Catalog::media(int64_t source_id) const {
  Statement s(db_,
              "SELECT id, source_id, path, role, size_bytes, content_hash, duration_s, width, height, fps,"
              " has_video, has_audio FROM media WHERE ? = 0 OR source_id = ? ORDER BY id");
  s.bind(1, source_id).bind(2, source_id);
  std::vector<MediaFile> result;
  while (s.step()) result.push_back(read_media(s));
  return result;
}

void Catalog::mark_stage_done(const StageRun& run) {
  Statement s(db_,
              "INSERT INTO stages (stage, source_id, input_hash, finished_at, summary) VALUES (?, ?, ?, ?, ?)"
              " ON CONFLICT (stage, source_id) DO UPDATE SET input_hash = excluded.input_hash,"
              " finished_at = excluded.finished_at, summary = excluded.summary");
  s.bind(1, run.stage).bind(2, run.source_id).bind(3, run.input_hash);
  s.bind(4, run.finished_at.empty() ? utc_now() : run.finished_at);
  s.bind(5, run.summary.empty() ? std::string("{}") : run.summary);
  s.step();
}

std::optional<StageRun> Catalog::stage_run(const std::string& stage, int64_t source_id) const {
  Statement s(db_,
              "SELECT stage, source_id, input_hash, finished_at, summary FROM stages WHERE stage = ? AND source_id = ?");
  s.bind(1, stage).bind(2, source_id);
  if (s.step()) return StageRun{s.text(0), s.integer(1), s.text(2), s.text(3), s.text(4)};
  return std::nullopt;
}

std::vector<StageRun> Catalog::stage_runs() const {
  Statement s(db_, "SELECT stage, source_id, input_hash, finished_at, summary FROM stages ORDER BY stage, source_id");
  std::vector<StageRun> result;
  while (s.step()) result.push_back(StageRun{s.text(0), s.integer(1), s.text(2), s.text(3), s.text(4)});
  return result;
}

int64_t Catalog::start_job(const std::string& command, const std::string& arguments) {
  Statement s(db_, "INSERT INTO jobs (command, arguments, state, started_at) VALUES (?, ?, 'running', ?)");
  s.bind(1, command).bind(2, arguments).bind(3, utc_now());
  s.step();
  return sqlite3_last_insert_rowid(db_);
}

void Catalog::finish_job(int64_t job_id, bool succeeded, const std::string& message) {
  Statement s(db_, "UPDATE jobs SET state = ?, message = ?, finished_at = ? WHERE id = ?");
  s.bind(1, std::string(succeeded ? "done" : "failed")).bind(2, message).bind(3, utc_now()).bind(4, job_id);
  s.step();
}

std::vector<Job> Catalog::jobs(int limit) const {
  Statement s(db_,
              "SELECT id, command, arguments, state, message, started_at, finished_at FROM jobs"
              " ORDER BY id DESC LIMIT ?");
  s.bind(1, int64_t{limit});
  std::vector<Job> result;
  while (s.step()) {
    result.push_back(Job{s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)});
  }
  return result;
}

int64_t Catalog::start_conversation(const std::string& engine) {
  Statement s(db_, "INSERT INTO conversations (engine, started_at) VALUES (?, ?)");
  s.bind(1, engine).bind(2, utc_now());
  s.step();
  return sqlite3_last_insert_rowid(db_);
}

void Catalog::add_message(const ChatMessage& message) {
  Statement s(db_, "INSERT INTO messages (conversation_id, role, text, sources, created_at) VALUES (?, ?, ?, ?, ?)");
  s.bind(1, message.conversation_id).bind(2, message.role).bind(3, message.text);
  s.bind(4, message.sources_json.empty() ? std::string("[]") : message.sources_json);
  s.bind(5, message.created_at.empty() ? utc_now() : message.created_at);
  s.step();
}

std::vector<ChatMessage> Catalog::messages(int64_t conversation_id) const {
  Statement s(db_,
              "SELECT conversation_id, role, text, sources, created_at FROM messages WHERE conversation_id = ?"
              " ORDER BY id");
  s.bind(1, conversation_id);
  std::vector<ChatMessage> result;
  while (s.step()) result.push_back(ChatMessage{s.integer(0), s.text(1), s.text(2), s.text(3), s.text(4)});
  return result;
}

bool Catalog::has_conversation(int64_t conversation_id) const {
  Statement s(db_, "SELECT 1 FROM conversations WHERE id = ?");
  s.bind(1, conversation_id);
  return s.step();
}

}  // namespace dself
