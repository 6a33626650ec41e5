// The dself command line end to end: help, exit codes, and sample → ingest → status on the
// sample person, through the real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <signal.h>

#include <fstream>

#include "core/catalog.h"
#include "core/fs.h"
#include "support.h"

namespace dself {
namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Cli, HelpListsWorkingCommandsWithLiveDefaults) {
  auto help = test::run_dself({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"sample", "ingest", "status"}) EXPECT_TRUE(contains(help.output, command)) << command;
  EXPECT_TRUE(contains(help.output, "--avatar TEXT=avatar")) << help.output;
  EXPECT_TRUE(contains(help.output, "DSELF_AVATAR"));

  auto sample = test::run_dself({"sample", "--help"});
  EXPECT_EQ(sample.exit_code, 0);
  EXPECT_TRUE(contains(sample.output, "grace_hopper.jpg")) << sample.output;
  EXPECT_TRUE(contains(sample.output, "=rms")) << sample.output;

  auto ingest = test::run_dself({"ingest", "--help"});
  EXPECT_EQ(ingest.exit_code, 0);
  EXPECT_TRUE(contains(ingest.output, "=720")) << ingest.output;
  EXPECT_TRUE(contains(ingest.output, "DSELF_YTDLP")) << ingest.output;
}

TEST(Cli, WrongCommandLinesExitOne) {
  EXPECT_EQ(test::run_dself({}).exit_code, 1);
  auto unknown = test::run_dself({"--avatar", "/tmp/x", "no-such-command"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(contains(unknown.output, "unknown command 'no-such-command'")) << unknown.output;
  EXPECT_EQ(test::run_dself({"ingest"}).exit_code, 1);  // SOURCE is required
  auto bad_number = test::run_dself({"sample", "--out", "/tmp/x", "--minutes", "lots"});
  EXPECT_EQ(bad_number.exit_code, 1);
  EXPECT_TRUE(contains(bad_number.output, "--minutes")) << bad_number.output;
}

// Each option is checked before any work, and the message names it (exit 1: the user's input).
TEST(Cli, OptionChecksNameTheOption) {
  test::TempDir dir;
  const std::string avatar = (dir / "avatar").string();
  auto ftp = test::run_dself({"--avatar", avatar, "chat", "--engine", "openai", "--llm-url", "ftp://x", "--llm-model",
                              "m", "hello"});
  EXPECT_EQ(ftp.exit_code, 1) << ftp.output;
  EXPECT_TRUE(contains(ftp.output, "--llm-url ftp://x")) << ftp.output;
  auto nan = test::run_dself({"--avatar", avatar, "chat", "--engine", "openai", "--llm-url", "http://127.0.0.1:9/v1",
                              "--llm-model", "m", "--llm-timeout", "nan", "hello"});
  EXPECT_EQ(nan.exit_code, 1) << nan.output;
  EXPECT_TRUE(contains(nan.output, "--llm-timeout")) << nan.output;
  auto negative = test::run_dself({"--avatar", avatar, "chat", "--max-message-chars", "-1", "hello"});
  EXPECT_EQ(negative.exit_code, 1) << negative.output;
  EXPECT_TRUE(contains(negative.output, "--max-message-chars")) << negative.output;

  auto directory = test::run_dself({"--avatar", avatar, "say", "--file", dir.path().string(), "-o",
                                    (dir / "out.mp4").string()});
  EXPECT_EQ(directory.exit_code, 1) << directory.output;
  EXPECT_TRUE(contains(directory.output, "is a directory")) << directory.output;

  // A web root that is not there is the user's mistake, not an unbuilt UI (timeout: an old
  // dself would serve on).
  auto web_root = test::run_program({"timeout", "60", DSELF_BINARY, "--avatar", avatar, "serve", "--port", "0",
                                     "--web-root", (dir / "no-such-dir").string()});
  EXPECT_EQ(web_root.exit_code, 1) << web_root.output;
  EXPECT_TRUE(contains(web_root.output, "no such directory")) << web_root.output;
  EXPECT_FALSE(contains(web_root.output, "listening")) << web_root.output;
}

// A catalog cut to 0 bytes is reported like a damaged one, never taken for a new empty avatar.
TEST(Cli, EmptyOrDamagedCatalogIsReported) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "avatar");
  std::ofstream(dir / "avatar" / "dself.db").flush();
  auto empty = test::run_dself({"--avatar", (dir / "avatar").string(), "status"});
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  EXPECT_TRUE(contains(empty.output, "is empty (0 bytes)")) << empty.output;
  EXPECT_EQ(std::filesystem::file_size(dir / "avatar" / "dself.db"), 0u) << "nothing written into it";

  std::ofstream(dir / "avatar" / "dself.db") << std::string(4096, 'x');
  auto damaged = test::run_dself({"--avatar", (dir / "avatar").string(), "status"});
  EXPECT_EQ(damaged.exit_code, 2) << damaged.output;
  EXPECT_TRUE(contains(damaged.output, "is damaged")) << damaged.output;
}

TEST(Cli, StatusOfAMissingAvatarSaysWhatToDo) {
  test::TempDir dir;
  auto result = test::run_dself({"--avatar", (dir / "nothing").string(), "status"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(contains(result.output, "no avatar at")) << result.output;
  EXPECT_TRUE(contains(result.output, "dself ingest")) << result.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "nothing")) << "status must not create an avatar";
}

TEST(Cli, SampleIngestStatusOnTheSamplePerson) {
  test::TempDir dir;
  const std::string avatar = (dir / "avatar").string();
  // The avatar comes from $DSELF_AVATAR here, as a user's shell would give it.
  auto ingest = test::run_program({"/usr/bin/env", "DSELF_AVATAR=" + avatar, DSELF_BINARY, "--quiet", "ingest",
                                   test::sample_dir().string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  EXPECT_TRUE(contains(ingest.output, "2 new")) << ingest.output;

  auto status = test::run_dself({"--avatar", avatar, "status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  auto json = nlohmann::json::parse(status.output);
  EXPECT_EQ(json["format"], "dself-status");
  EXPECT_EQ(json["totals"]["sources"], 2);
  EXPECT_EQ(json["totals"]["videos"], 2);
  EXPECT_EQ(json["totals"]["captions"], 2);

  // The hours of video agree with the sample's own ground truth.
  double truth_s = 0;
  for (const char* name : {"video_000.truth.json", "video_001.truth.json"}) {
    truth_s += nlohmann::json::parse(read_file(test::sample_dir() / name))["duration_s"].get<double>();
  }
  EXPECT_NEAR(json["totals"]["video_hours"].get<double>() * 3600, truth_s, 0.2);
  for (const auto& source : json["sources"]) {
    EXPECT_EQ(source["kind"], "file");
    for (const auto& file : source["files"]) {
      EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(avatar) / file["path"].get<std::string>()));
    }
  }
  ASSERT_FALSE(json["jobs"].empty());
  EXPECT_EQ(json["jobs"][0]["command"], "ingest");
  EXPECT_EQ(json["jobs"][0]["state"], "done");

  auto text = test::run_dself({"--avatar", avatar, "status"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_TRUE(contains(text.output, "sources  2 (2 videos, 2 caption files")) << text.output;
}

// Two ingests making the same new avatar at once: one works, the other says another is working
// (or, started after it, finds everything present); never a half-made catalog.
TEST(Cli, TwoIngestsCreatingAnAvatarAtOnce) {
  for (int round = 0; round < 4; ++round) {
    test::TempDir dir;
    const std::string avatar = (dir / "avatar").string();
    test::Background first({"--quiet", "--avatar", avatar, "ingest", test::sample_dir().string()}, dir / "first.log");
    test::Background second({"--quiet", "--avatar", avatar, "ingest", test::sample_dir().string()}, dir / "second.log");
    for (test::Background* run : {&first, &second}) {
      int code = run->wait();
      std::string output = run->output();
      EXPECT_TRUE(code == 0 || (code == 2 && contains(output, "another `dself ingest` is working"))) << code << ": "
                                                                                                    << output;
    }
    EXPECT_EQ(Catalog(avatar).sources().size(), 2u);
  }
}

// prepare: one at a time per avatar; Ctrl-C stops it cleanly, says so, and marks its job.
TEST(Cli, PrepareIsLockedAndInterruptible) {
  test::TempDir dir;
  const std::string avatar = (dir / "avatar").string();
  auto ingest = test::run_dself({"--quiet", "--avatar", avatar, "ingest", test::sample_dir().string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  // PocketSphinx rather than the captions: a prepare long enough to be caught running.
  test::Background prepare({"--avatar", avatar, "prepare", "--stt", "pocketsphinx"}, dir / "prepare.log");
  auto prepare_running = [&] {
    for (const Job& job : Catalog(avatar).jobs()) {
      if (job.command == "prepare" && job.state == "running") return true;
    }
    return false;
  };
  ASSERT_TRUE(test::wait_until(prepare_running)) << prepare.output();

  auto second = test::run_dself({"--avatar", avatar, "prepare"});
  EXPECT_EQ(second.exit_code, 2) << second.output;
  EXPECT_TRUE(contains(second.output, "another `dself prepare` is working")) << second.output;

  prepare.signal(SIGINT);
  EXPECT_EQ(prepare.wait(), 130) << prepare.output();
  EXPECT_TRUE(contains(prepare.output(), "interrupted (Ctrl-C)")) << prepare.output();
  std::vector<Job> jobs = Catalog(avatar).jobs();
  ASSERT_FALSE(jobs.empty());
  EXPECT_EQ(jobs[0].command, "prepare");
  EXPECT_EQ(jobs[0].state, "interrupted") << jobs[0].message;
}

// A step that fails for the environment's sake (here: a directory where the audio file goes,
// as an unwritable disk would) exits 2, not 1 as a bad video would.
TEST(Cli, PrepareKeepsTheKindOfAnError) {
  test::TempDir dir;
  const std::string avatar = (dir / "avatar").string();
  auto ingest = test::run_dself({"--quiet", "--avatar", avatar, "ingest", test::sample_dir().string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  for (const Source& source : Catalog(avatar).sources()) {
    std::filesystem::create_directories(dir / "avatar" / "audio" / (std::to_string(source.id) + ".wav"));
  }
  auto prepare = test::run_dself({"--quiet", "--avatar", avatar, "prepare"});
  EXPECT_EQ(prepare.exit_code, 2) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "audio")) << prepare.output;
}

}  // namespace
}  // namespace dself
