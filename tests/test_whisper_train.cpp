// `dself train stt --whisper DIR` through the real binary on a copy of the prepared sample person
// (its two utterances, one moved to the held-out split) with a small random Whisper: it trains,
// writes a loadable Hugging Face directory and its metrics, is skipped when up to date, stops and
// resumes (Ctrl-C: exit 130), flags a model worse than its base, and refuses bad checkpoints and
// unprepared avatars naming the problem. The fine-tune's
// numerics (loss falls, bit-identical reruns and resumes) are tested in test_whisper.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "support.h"
#include "whisper/whisper.h"
#include "whisper_checkpoint.h"

namespace fs = std::filesystem;
using dself::test::run_dself;

namespace {

// A copy of the prepared avatar whose second source's utterances are all held out.
fs::path avatar_with_held_out(const dself::test::TempDir& dir) {
  const fs::path avatar = dself::test::copy_avatar(dir.path());
  std::vector<fs::path> sources;
  for (const auto& e : fs::directory_iterator(avatar / "speech")) sources.push_back(e.path());
  std::sort(sources.begin(), sources.end());
  EXPECT_GE(sources.size(), 2u);
  const fs::path file = sources.back() / "utterances.json";
  auto json = nlohmann::json::parse(dself::read_file(file));
  for (auto& u : json["utterances"]) u["split"] = "held_out";
  dself::write_file_atomic(file, json.dump());
  return avatar;
}

}  // namespace

TEST(WhisperTrainCli, FineTunesWritesALoadableDirectoryAndIsSkippedWhenUpToDate) {
  dself::test::TempDir dir;
  const fs::path avatar = avatar_with_held_out(dir);
  const fs::path base = dself::test::write_random_whisper(dir / "base", false, 11);
  const fs::path out = avatar / "models" / "whisper";
  const std::vector<std::string> args{"--avatar",        avatar.string(), "train", "stt",       "--whisper",
                                      base.string(),     "--steps",       "4",     "--threads", "1",
                                      "--learning-rate", "0.001"};

  // A budget spent at once: stopped, checkpointed, no model, exit 0; the next run resumes.
  auto with_budget = args;
  with_budget.insert(with_budget.end(), {"--time-budget", "0.000001"});
  auto r = run_dself(with_budget);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stopped at step 0 of 4"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_TRUE(fs::exists(avatar / "models" / "whisper.checkpoint" / "state.json"));

  r = run_dself(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming at step 0 of 4"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stt    trained"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("held-out WER"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(avatar / "models" / "whisper.checkpoint"));
  for (const char* name : {"config.json", "model.safetensors", "vocab.json", "merges.txt", "added_tokens.json",
                           "generation_config.json", "metrics.json"})
    EXPECT_TRUE(fs::exists(out / name)) << name;
  EXPECT_NO_THROW(dself::whisper::Model::load(out));
  const auto metrics = nlohmann::json::parse(dself::read_file(out / "metrics.json"));
  EXPECT_EQ(metrics["base"], fs::absolute(base).lexically_normal().string());
  EXPECT_EQ(metrics["steps"], 4);
  EXPECT_EQ(metrics["threads"], 1);
  EXPECT_EQ(metrics["seed"], 1);
  EXPECT_EQ(metrics["loss_curve"].size(), 4u);
  EXPECT_EQ(metrics["train_utterances"], 1);
  EXPECT_EQ(metrics["held_out_utterances"], 1);
  for (const char* key : {"held_out_wer_before", "held_out_wer_after", "held_out_loss_before", "held_out_loss_after",
                          "worse_than_base", "training_s"})
    EXPECT_TRUE(metrics.contains(key)) << key;
  // It transcribes, as `serve --stt whisper` and `prepare --stt whisper` will.
  fs::path wav;
  for (const auto& e : fs::recursive_directory_iterator(avatar / "speech"))
    if (e.path().extension() == ".wav") wav = e.path();
  r = run_dself({"--quiet", "transcribe", "--stt", "whisper", "--model", out.string(), wav.string(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto weights = dself::read_file(out / "model.safetensors");

  r = run_dself(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("up_to_date"), std::string::npos) << r.output;
  // Another option (here the seed) is another run; --force trains again to the same weights.
  auto forced = args;
  forced.push_back("--force");
  r = run_dself(forced);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stt    trained"), std::string::npos) << r.output;
  EXPECT_EQ(dself::read_file(out / "model.safetensors"), weights) << "same seed, data and threads";
  auto reseeded = args;
  reseeded.insert(reseeded.end(), {"--seed", "2"});
  r = run_dself(reseeded);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stt    trained"), std::string::npos) << r.output;
}

TEST(WhisperTrainCli, BadCheckpointsAndUnpreparedAvatarsExitOneNamingTheProblem) {
  dself::test::TempDir dir;
  const fs::path avatar = avatar_with_held_out(dir);
  const fs::path base = dself::test::write_random_whisper(dir / "base", false, 12);
  auto train = [&](const fs::path& model) {
    return run_dself(
        {"--avatar", avatar.string(), "train", "stt", "--whisper", model.string(), "--steps", "1", "--threads", "1"});
  };
  auto r = train(dir / "absent");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("absent: not a directory"), std::string::npos) << r.output;

  fs::copy(base, dir / "llama");
  auto config = nlohmann::json::parse(dself::read_file(base / "config.json"));
  config["model_type"] = "llama";
  dself::write_file_atomic(dir / "llama" / "config.json", config.dump());
  r = train(dir / "llama");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("llama/config.json: model_type \"llama\" is not \"whisper\""), std::string::npos) << r.output;

  fs::copy(base, dir / "cut");
  fs::resize_file(dir / "cut" / "model.safetensors", fs::file_size(base / "model.safetensors") / 2);
  r = train(dir / "cut");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cut/model.safetensors"), std::string::npos) << r.output;

  fs::copy(base, dir / "no_config");
  fs::remove(dir / "no_config" / "config.json");
  r = train(dir / "no_config");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("config.json"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(avatar / "models" / "whisper"));

  r = run_dself({"--avatar", avatar.string(), "train", "voice", "--whisper", base.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("train stt --whisper"), std::string::npos) << r.output;

  // No prepared utterances: say to run prepare.
  fs::remove_all(avatar / "speech");
  r = train(base);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("dself prepare"), std::string::npos) << r.output;
}

TEST(WhisperTrainCli, CtrlCCheckpointsAndExits130ThenTheNextRunResumes) {
  dself::test::TempDir dir;
  const fs::path avatar = avatar_with_held_out(dir);
  const fs::path base = dself::test::write_random_whisper(dir / "base", false, 13);
  const std::vector<std::string> args{"--avatar",    avatar.string(), "train",  "stt",       "--whisper",
                                      base.string(), "--steps",       "100000", "--threads", "1"};
  dself::test::Background run(args, dir / "log");
  // Training: a progress line (step, rate, ETA) every few seconds.
  ASSERT_TRUE(dself::test::wait_until([&] { return run.output().find("steps/s elapsed") != std::string::npos; }))
      << run.output();
  run.signal(SIGINT);
  EXPECT_EQ(run.wait(), 130) << run.output();
  const auto state = nlohmann::json::parse(dself::read_file(avatar / "models" / "whisper.checkpoint" / "state.json"));
  const int step = state["step"];
  EXPECT_GE(step, 1);
  EXPECT_FALSE(fs::exists(avatar / "models" / "whisper"));
  auto resumed = args;
  resumed.insert(resumed.end(), {"--time-budget", "0.000001"});
  const auto r = run_dself(resumed);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(fmt::format("resuming at step {} of 100000", step)), std::string::npos) << r.output;
}

TEST(WhisperTrainCli, AModelWorseThanItsBaseIsKeptAndFlagged) {
  dself::test::TempDir dir;
  const fs::path avatar = avatar_with_held_out(dir);
  const fs::path base = dself::test::write_random_whisper(dir / "base", false, 14);
  // A learning rate far too high wrecks the model on purpose.
  const auto r = run_dself({"--avatar", avatar.string(), "train", "stt", "--whisper", base.string(), "--steps", "3",
                            "--threads", "1", "--learning-rate", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: the fine-tuned Whisper is WORSE than its base"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("WORSE than the base); "), std::string::npos) << r.output;
  const auto metrics = nlohmann::json::parse(dself::read_file(avatar / "models" / "whisper" / "metrics.json"));
  EXPECT_TRUE(metrics["worse_than_base"].get<bool>());
  EXPECT_GT(metrics["held_out_loss_after"].get<double>(), metrics["held_out_loss_before"].get<double>());
  EXPECT_TRUE(fs::exists(avatar / "models" / "whisper" / "model.safetensors")) << "kept";
}
