// `dself train` through the real binary: refused without enough speech, trained, up to date,
// stopped and resumed, stale when the data changes, spoken with by `say` (the fallback when the
// model is broken) and lip-synced by `eval say` (a slow test: `make test-slow`). The model's own numerics
// are tested in test_voice_train.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <random>
#include <thread>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support.h"

namespace fs = std::filesystem;
using dself::test::run_dself;

namespace {

nlohmann::json status_of(const fs::path& avatar) {
  auto result = run_dself({"--avatar", avatar.string(), "status", "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return nlohmann::json::parse(result.output.substr(result.output.find('{')));
}

nlohmann::json say_json(const fs::path& avatar, const fs::path& out) {
  auto result = run_dself({"--avatar", avatar.string(), "--quiet", "say", "Hello there, this is my voice.", "-o",
                           out.string(), "--size", "128", "--json"});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  return nlohmann::json::parse(result.output.substr(result.output.find('{')));
}

}  // namespace

TEST(TrainCli, TooLittleSpeechIsNotReadyAndNamingTheVoiceIsAnError) {
  dself::test::TempDir dir;
  fs::path avatar = dself::test::copy_avatar(dir.path());  // about 25 s of speech

  auto all = run_dself({"--avatar", avatar.string(), "train"});
  EXPECT_EQ(all.exit_code, 0) << all.output;
  EXPECT_NE(all.output.find("not_ready"), std::string::npos) << all.output;

  auto voice = run_dself({"--avatar", avatar.string(), "train", "voice"});
  EXPECT_EQ(voice.exit_code, 1) << voice.output;
  EXPECT_NE(voice.output.find("minutes"), std::string::npos) << "says how much speech there is: " << voice.output;
  EXPECT_FALSE(fs::exists(avatar / "models" / "voice" / "model.safetensors"));
  EXPECT_EQ(status_of(avatar)["trained"]["voice"]["state"], "none");
}

TEST(TrainCli, NotPreparedSaysToPrepare) {
  dself::test::TempDir dir;
  fs::path avatar = dir / "fresh";
  auto ingest = run_dself({"--avatar", avatar.string(), "--quiet", "ingest", dself::test::sample_dir().string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  auto train = run_dself({"--avatar", avatar.string(), "train"});
  EXPECT_EQ(train.exit_code, 1) << train.output;
  EXPECT_NE(train.output.find("prepare"), std::string::npos) << train.output;
}

// On the small sample person (under a minute of speech): --min-speech-minutes lets the voice
// train on it, as a user may (poor quality, said so); the full-size person is for the Slow tests.
TEST(TrainCli, TrainsResumesSkipsGoesStaleAndSpeaksWithTheTrainedVoice) {
  dself::test::TempDir dir;
  fs::path avatar = dself::test::copy_avatar(dir.path());
  const fs::path model = avatar / "models" / "voice";

  // A budget that runs out at once: stopped, checkpointed, no model yet, exit 0, resumable.
  auto stopped = run_dself({"--avatar", avatar.string(), "train", "voice", "--steps", "6", "--time-budget", "0.001",
                            "--min-speech-minutes", "0.2"});
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  EXPECT_NE(stopped.output.find("stopped"), std::string::npos) << stopped.output;
  EXPECT_FALSE(fs::exists(model / "model.safetensors"));
  EXPECT_EQ(status_of(avatar)["jobs"][0]["state"], "interrupted");

  auto trained = run_dself({"--avatar", avatar.string(), "train", "voice", "--steps", "6", "--min-speech-minutes", "0.2"});
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("trained"), std::string::npos) << trained.output;
  EXPECT_NE(trained.output.find("resuming"), std::string::npos) << "resumes the checkpoint: " << trained.output;
  EXPECT_NE(trained.output.find("quality will be low"), std::string::npos) << "under 10 minutes: " << trained.output;
  ASSERT_TRUE(fs::exists(model / "model.safetensors"));
  ASSERT_TRUE(fs::exists(model / "config.json"));

  // (The voice by name: `train` alone would adapt the speech recogniser too, tested in test_stt.)
  auto again = run_dself({"--avatar", avatar.string(), "train", "voice", "--min-speech-minutes", "0.2"});
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("up_to_date"), std::string::npos) << again.output;

  auto status = status_of(avatar);
  EXPECT_EQ(status["trained"]["voice"]["state"], "current") << status["trained"].dump();
  EXPECT_EQ(status["trained"]["voice"]["summary"]["steps"], 6);

  auto said = say_json(avatar, dir / "trained.mp4");
  const std::string voice = said["voice"];
  EXPECT_EQ(voice.find("fallback"), std::string::npos) << voice;
  EXPECT_NE(voice.find("trained"), std::string::npos) << voice;
  EXPECT_GT(said["duration_s"].get<double>(), 0.5);

  // The data changes: the voice is stale, and train trains it again.
  for (const auto& entry : fs::directory_iterator(avatar / "speech")) {
    const fs::path file = entry.path() / "utterances.json";
    if (!fs::exists(file)) continue;
    std::ifstream in(file);
    auto dataset = nlohmann::json::parse(in);
    if (dataset["utterances"].empty()) continue;
    // One transcript corrected (the small person has few utterances: none is removed).
    auto& first = dataset["utterances"][0];
    first["text"] = first["text"].get<std::string>() + " indeed";
    std::ofstream(file) << dataset.dump();
  }
  EXPECT_EQ(status_of(avatar)["trained"]["voice"]["state"], "stale");

  // A broken model: say speaks with the fallback and says why; status says it is broken.
  fs::resize_file(model / "model.safetensors", fs::file_size(model / "model.safetensors") / 2);
  auto broken = status_of(avatar)["trained"]["voice"];
  EXPECT_EQ(broken["state"], "broken");
  EXPECT_NE(broken["why"].get<std::string>().find("model.safetensors"), std::string::npos) << broken.dump();
  auto fallback = say_json(avatar, dir / "fallback.mp4");
  EXPECT_NE(fallback["voice"].get<std::string>().find("fallback"), std::string::npos) << fallback.dump();
}

// Slow (about a minute of `eval say`, after a short training): `make test-slow`.
TEST(TrainCli, SlowEvalSayLipSyncsAndJudgesTheTrainedVoice) {
  dself::test::TempDir dir;
  fs::path avatar = dself::test::copy_avatar(dir.path(), dself::test::voice_avatar_dir());
  const fs::path model = avatar / "models" / "voice";
  auto trained = run_dself({"--avatar", avatar.string(), "--quiet", "train", "voice", "--steps", "6"});
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  // The trained voice's phone times drive the face as the fallback's do: `eval say` re-detects the
  // mouth on frames animated from the trained voice's sentences, and judges that voice (not the
  // fallback alone) into models/voice/metrics.json, where `eval voice` puts it.
  auto evaluated = run_dself({"--avatar", avatar.string(), "--quiet", "eval", "say", "--json"});
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  auto figures = nlohmann::json::parse(evaluated.output.substr(evaluated.output.find('{')));
  const auto& lips = figures["lip_sync"];
  ASSERT_TRUE(lips.contains("face_found_share")) << lips.dump();
  EXPECT_GE(lips["face_found_share"].get<double>(), 0.95);
  EXPECT_LT(lips["mouth_error_iod_pct"].get<double>(), 10.0);
  EXPECT_FALSE(figures["voice"]["fallback"].get<bool>()) << figures["voice"].dump();
  EXPECT_TRUE(figures["voice"]["voices"].contains("trained")) << figures["voice"].dump();
  std::ifstream metrics_file(model / "metrics.json");
  auto metrics = nlohmann::json::parse(metrics_file);
  EXPECT_NE(metrics["voice"].get<std::string>().find("trained"), std::string::npos) << metrics.dump();
  EXPECT_TRUE(metrics.contains("person_pitch"));
}

// Slow (several trainings): `make test-slow`. Training killed (SIGKILL) at moments spread over a
// run that replaces a trained model: after each kill the avatar still speaks (the old model, or
// the fallback voice while a new model's files are being swapped in), status never says "broken",
// and the next run goes on to a whole model.
TEST(TrainCli, SlowKilledAnywhereNeverLeavesABrokenVoice) {
  dself::test::TempDir dir;
  fs::path avatar = dself::test::copy_avatar(dir.path(), dself::test::voice_avatar_dir());
  auto first = run_dself({"--avatar", avatar.string(), "--quiet", "train", "voice", "--steps", "4"});
  ASSERT_EQ(first.exit_code, 0) << first.output;

  const std::vector<std::string> marks = {"analyse speech", "train voice 1/8", "train voice 4/8", "train voice 8/8"};
  std::mt19937 random(3);
  int killed = 0;
  for (size_t m = 0; m < marks.size(); ++m) {
    dself::test::Background run({"--avatar", avatar.string(), "train", "voice", "--force", "--steps", "8"},
                                dir / ("train-" + std::to_string(m) + ".log"));
    ASSERT_TRUE(dself::test::wait_until(
        [&] { return run.output().find(marks[m]) != std::string::npos || run.output().find("voice  ") != std::string::npos; },
        600))
        << run.output();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 300)(random)));
    run.signal(SIGKILL);
    killed += run.wait() == 128 + SIGKILL;
    const auto state = status_of(avatar)["trained"]["voice"];
    EXPECT_NE(state["state"], "broken") << "after a kill at " << marks[m] << ": " << state.dump();
    auto said = say_json(avatar, dir / ("after-kill-" + std::to_string(m) + ".mp4"));
    EXPECT_GT(said["duration_s"].get<double>(), 0.5) << said.dump();
  }
  EXPECT_GE(killed, 3);

  auto finished = run_dself({"--avatar", avatar.string(), "--quiet", "train", "voice", "--force", "--steps", "8"});
  ASSERT_EQ(finished.exit_code, 0) << finished.output;
  const auto status = status_of(avatar);
  EXPECT_EQ(status["trained"]["voice"]["state"], "current") << status["trained"].dump();
  EXPECT_EQ(status["trained"]["voice"]["summary"]["steps"], 8);
  for (const auto& job : status["jobs"]) EXPECT_NE(job["state"], "running") << job.dump();
  auto said = say_json(avatar, dir / "finished.mp4");
  EXPECT_NE(said["voice"].get<std::string>().find("trained"), std::string::npos) << said.dump();
}
