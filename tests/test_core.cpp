// Core: catalog migrations and transactions, staged files, errors, progress events.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/text.h"
#include "core/progress.h"
#include "core/subprocess.h"
#include "core/workspace.h"
#include "support.h"

namespace dself {
namespace {

MediaFile video_file(const std::string& path) {
  MediaFile file;
  file.path = path;
  file.role = "video";
  file.size_bytes = 1000;
  file.content_hash = "abc";
  file.duration_s = 12.5;
  file.has_video = true;
  file.has_audio = true;
  return file;
}

TEST(Catalog, CreatesSchemaAtCurrentVersion) {
  test::TempDir dir;
  { Catalog catalog(dir.path()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "dself.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), Catalog::schema_version);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(Catalog, RefusesNewerSchema) {
  test::TempDir dir;
  { Catalog catalog(dir.path()); }
  sqlite3* db = nullptr;
  sqlite3_open((dir / "dself.db").c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    Catalog catalog(dir.path());
    FAIL() << "a catalog from a newer dself was opened";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::environment);
    EXPECT_NE(std::string(e.what()).find("upgrade dself"), std::string::npos) << e.what();
  }
}

TEST(Catalog, AddsSourceWithFilesAndReopens) {
  test::TempDir dir;
  {
    Catalog catalog(dir.path());
    Source source{0, "file:abc", "file", "/videos/a.mp4", "a", ""};
    int64_t id = catalog.add_source(source, {video_file("sources/a.mp4")});
    EXPECT_GT(id, 0);
  }
  Catalog catalog(dir.path());
  auto found = catalog.find_source("file:abc");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->origin, "/videos/a.mp4");
  EXPECT_FALSE(found->added_at.empty());
  auto files = catalog.media(found->id);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path, "sources/a.mp4");
  EXPECT_DOUBLE_EQ(files[0].duration_s, 12.5);
  EXPECT_TRUE(files[0].has_audio);
}

TEST(Catalog, FailedInsertLeavesNothingBehind) {
  test::TempDir dir;
  Catalog catalog(dir.path());
  catalog.add_source({0, "file:one", "file", "/a.mp4", "", ""}, {video_file("sources/a.mp4")});
  // The second source's file clashes with the first one's path: the whole insert must roll back.
  EXPECT_THROW(catalog.add_source({0, "file:two", "file", "/b.mp4", "", ""},
                                  {video_file("sources/b.mp4"), video_file("sources/a.mp4")}),
               Error);
  EXPECT_FALSE(catalog.find_source("file:two"));
  EXPECT_EQ(catalog.sources().size(), 1u);
  EXPECT_EQ(catalog.media().size(), 1u);
}

TEST(Catalog, DuplicateKeyIsRefused) {
  test::TempDir dir;
  Catalog catalog(dir.path());
  catalog.add_source({0, "file:one", "file", "/a.mp4", "", ""}, {});
  EXPECT_THROW(catalog.add_source({0, "file:one", "file", "/a.mp4", "", ""}, {}), Error);
  EXPECT_EQ(catalog.sources().size(), 1u);
}

TEST(Catalog, StagesAndJobs) {
  test::TempDir dir;
  Catalog catalog(dir.path());
  catalog.mark_stage_done({"ingest", 3, "h1", ""});
  catalog.mark_stage_done({"ingest", 3, "h2", ""});
  auto run = catalog.stage_run("ingest", 3);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->input_hash, "h2");
  EXPECT_FALSE(catalog.stage_run("ingest", 4));

  int64_t job = catalog.start_job("ingest", "a.mp4");
  EXPECT_EQ(catalog.jobs()[0].state, "running");
  catalog.finish_job(job, false, "a.mp4 is not a video");
  EXPECT_EQ(catalog.jobs()[0].state, "failed");
  EXPECT_EQ(catalog.jobs()[0].message, "a.mp4 is not a video");

  // Stopped, and left "running" by a killed run: both end "interrupted".
  catalog.interrupt_job(catalog.start_job("prepare", ""), "interrupted: prepare: stopped");
  EXPECT_EQ(catalog.jobs()[0].state, "interrupted");
  int64_t killed = catalog.start_job("prepare", "");
  int64_t other = catalog.start_job("ingest", "b.mp4");
  catalog.interrupt_stale_jobs("prepare");
  for (const Job& j : catalog.jobs()) {
    if (j.id == killed) EXPECT_EQ(j.state, "interrupted");
    if (j.id == other) EXPECT_EQ(j.state, "running");
  }
}

TEST(Workspace, PathsChecksAndLocks) {
  test::TempDir dir;
  const std::filesystem::path avatar = dir / "avatar";
  EXPECT_EQ(workspace::audio_path(avatar, 3), avatar / "audio" / "3.wav");
  EXPECT_EQ(workspace::landmarks_path(avatar, 3), avatar / "faces" / "3" / "landmarks.bin");
  EXPECT_EQ(workspace::source_id_of(avatar / "transcripts" / "12.json"), 12);
  EXPECT_EQ(workspace::source_id_of(avatar / "speech" / "notes"), -1);
  try {
    workspace::require_prepared(avatar);
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("ingest"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(avatar)) << "a check must not create the avatar";
  Catalog{avatar};
  EXPECT_THROW(workspace::require_ingested(avatar), InputError);

  workspace::Lock held(avatar, "prepare");
  try {
    workspace::Lock second(avatar, "prepare");
    ADD_FAILURE() << "two prepare locks at once";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find("another `dself prepare` is working"), std::string::npos) << e.what();
  }
  workspace::Lock ingest(avatar, "ingest");  // another kind of work is not held up
}

// A stop ends the program it runs (else this would return normally, after 30 s).
TEST(Subprocess, StopEndsTheProgram) {
  int asked = 0;
  EXPECT_THROW(run_subprocess({"sleep", "30"}, {}, [&] { return ++asked > 3; }), Stopped);
}

TEST(Progress, StopIfRequestedThrowsStopped) {
  EXPECT_NO_THROW(stop_if_requested({}, "work"));
  EXPECT_NO_THROW(stop_if_requested([] { return false; }, "work"));
  EXPECT_THROW(stop_if_requested([] { return true; }, "work"), Stopped);
}

TEST(StagedPath, OnlyCommittedFilesAppear) {
  test::TempDir dir;
  {
    StagedPath staged(dir / "video.mp4");
    std::ofstream(staged.temporary()) << "half";
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "an abandoned temporary file was left behind";
  {
    StagedPath staged(dir / "video.mp4");
    std::ofstream(staged.temporary()) << "whole";
    staged.commit();
  }
  EXPECT_EQ(read_file(dir / "video.mp4"), "whole");
}

TEST(Fs, ReplaceDirectorySwapsInTheWholeNewOne) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "new");
  write_file_atomic(dir / "new" / "a", "new a");
  replace_directory(dir / "new", dir / "model");  // no old one: a rename
  EXPECT_EQ(read_file(dir / "model" / "a"), "new a");
  std::filesystem::create_directories(dir / "next");
  write_file_atomic(dir / "next" / "b", "next b");
  replace_directory(dir / "next", dir / "model");
  EXPECT_EQ(read_file(dir / "model" / "b"), "next b");
  EXPECT_FALSE(std::filesystem::exists(dir / "model" / "a")) << "the old directory's files are gone";
  EXPECT_FALSE(std::filesystem::exists(dir / "next"));
  EXPECT_THROW(replace_directory(dir / "absent", dir / "model"), EnvironmentError);
  EXPECT_EQ(read_file(dir / "model" / "b"), "next b");
}

TEST(Hash, FileAndBytesAgree) {
  test::TempDir dir;
  write_file_atomic(dir / "a.txt", "hello");
  EXPECT_EQ(hash_file(dir / "a.txt"), hash_bytes("hello"));
  EXPECT_NE(hash_bytes("hello"), hash_bytes("hellp"));
  EXPECT_EQ(hash_bytes("hello").size(), 32u);
  EXPECT_THROW(hash_file(dir / "missing"), InputError);
}

TEST(Errors, NestedChainIsDescribedAndOuterKindWins) {
  try {
    try {
      throw InputError("caption file a.vtt line 3: bad timestamp");
    } catch (...) {
      std::throw_with_nested(std::runtime_error("cannot import a.mp4"));
    }
  } catch (const std::exception& e) {
    EXPECT_EQ(describe(e), "cannot import a.mp4: caption file a.vtt line 3: bad timestamp");
    EXPECT_EQ(kind_of(e), ErrorKind::user_input);
    EXPECT_EQ(exit_code(kind_of(e)), 1);
  }
  EXPECT_EQ(exit_code(ErrorKind::environment), 2);
  EXPECT_EQ(kind_of(std::runtime_error("bug")), ErrorKind::internal);
}

TEST(Progress, SinkSeesEveryFinishAndCounts) {
  std::vector<ProgressEvent> events;
  std::vector<ProgressEvent> other_events;
  set_progress_display(false);
  {
    Progress progress("test task", 10, "frames", [&](const ProgressEvent& e) { events.push_back(e); });
    Progress other("other task", 0, "files", [&](const ProgressEvent& e) { other_events.push_back(e); });
    for (int i = 0; i < 10; ++i) progress.advance();
  }
  // Each task reports to its own sink only.
  for (const auto& e : other_events) EXPECT_EQ(e.task, "other task");
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events.front().done, 0);
  EXPECT_TRUE(events.back().finished);
  EXPECT_EQ(events.back().done, 10);
  EXPECT_EQ(events.back().total, 10);
  EXPECT_EQ(events.back().task, "test task");
  EXPECT_EQ(events.back().eta_s, 0);
}

}  // namespace
}  // namespace dself

namespace dself {
namespace {

TEST(Text, Utf8IsCheckedAndWindows1252Converted) {
  EXPECT_TRUE(is_utf8("plain ascii"));
  EXPECT_TRUE(is_utf8("caf\u00e9 \u20ac \U0001F600"));
  EXPECT_FALSE(is_utf8("caf\xE9"));          // Latin-1
  EXPECT_FALSE(is_utf8("\xC3"));              // cut short
  EXPECT_FALSE(is_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_utf8("\xED\xA0\x80"));      // a surrogate
  EXPECT_FALSE(is_utf8("\xF4\x90\x80\x80"));  // beyond U+10FFFF
  EXPECT_EQ(windows1252_to_utf8("caf\xE9 \x80 \x9F"), "caf\u00e9 \u20ac \u0178");
  EXPECT_EQ(windows1252_to_utf8("\x81"), "\uFFFD");  // undefined in Windows-1252
  std::string every;
  for (int b = 1; b < 256; ++b) every += static_cast<char>(b);
  EXPECT_TRUE(is_utf8(windows1252_to_utf8(every)));
}

TEST(Catalog, MigratesAVersionOneCatalogKeepingItsRows) {
  test::TempDir dir;
  // A catalog as schema version 1 left it: stages without a summary column.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "dself.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE sources (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
                         " origin TEXT NOT NULL, title TEXT NOT NULL DEFAULT '', added_at TEXT NOT NULL);"
                         "CREATE TABLE media (id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL, path TEXT NOT NULL"
                         " UNIQUE, role TEXT NOT NULL, size_bytes INTEGER NOT NULL, content_hash TEXT NOT NULL,"
                         " duration_s REAL NOT NULL DEFAULT 0, width INTEGER NOT NULL DEFAULT 0, height INTEGER NOT"
                         " NULL DEFAULT 0, fps REAL NOT NULL DEFAULT 0, has_video INTEGER NOT NULL DEFAULT 0,"
                         " has_audio INTEGER NOT NULL DEFAULT 0);"
                         "CREATE TABLE stages (stage TEXT NOT NULL, source_id INTEGER NOT NULL, input_hash TEXT NOT"
                         " NULL, finished_at TEXT NOT NULL, PRIMARY KEY (stage, source_id));"
                         "CREATE TABLE jobs (id INTEGER PRIMARY KEY, command TEXT NOT NULL, arguments TEXT NOT NULL,"
                         " state TEXT NOT NULL, message TEXT NOT NULL DEFAULT '', started_at TEXT NOT NULL,"
                         " finished_at TEXT NOT NULL DEFAULT '');"
                         "INSERT INTO stages VALUES ('prepare.audio', 1, 'h', '2026-01-01T00:00:00Z');"
                         "PRAGMA user_version = 1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  Catalog catalog(dir.path());
  auto run = catalog.stage_run("prepare.audio", 1);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->input_hash, "h");
  EXPECT_EQ(run->summary, "{}");
  catalog.mark_stage_done({"prepare.audio", 1, "h2", "", R"({"seconds": 3})"});
  EXPECT_EQ(catalog.stage_run("prepare.audio", 1)->summary, R"({"seconds": 3})");
}

}  // namespace
}  // namespace dself
