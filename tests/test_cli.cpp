// The dself command line end to end: help, exit codes, and sample → ingest → status on the
// sample person, through the real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

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
  EXPECT_EQ(test::run_dself({"no-such-command"}).exit_code, 1);
  EXPECT_EQ(test::run_dself({"ingest"}).exit_code, 1);  // SOURCE is required
  auto bad_number = test::run_dself({"sample", "--out", "/tmp/x", "--minutes", "lots"});
  EXPECT_EQ(bad_number.exit_code, 1);
  EXPECT_TRUE(contains(bad_number.output, "--minutes")) << bad_number.output;
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

}  // namespace
}  // namespace dself
