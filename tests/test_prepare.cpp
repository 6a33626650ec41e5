// dself prepare end to end through the real binary: the sample person's videos become audio,
// transcripts, a speech dataset and a face track that meet their targets; bad sources are
// reported one by one while the good ones are prepared; a re-run after a fix resumes; a kill at any
// point loses nothing.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "support.h"

namespace dself {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void ffmpeg(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ffmpeg", "-loglevel", "error", "-y"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = test::run_program(argv);
  ASSERT_EQ(result.exit_code, 0) << result.output;
}

nlohmann::json status_of(const std::string& avatar) {
  auto status = test::run_dself({"--avatar", avatar, "status", "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  return nlohmann::json::parse(status.output);
}

// Every file under `dir` (relative paths) but the catalog, which records the runs themselves.
std::map<std::string, std::string> avatar_files(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = fs::relative(entry.path(), dir).string();
    if (name.rfind("dself.db", 0) == 0 || name.rfind("lock", 0) == 0 || name.find(".lock") != std::string::npos) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    files[name] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return files;
}

// Prepare killed (SIGKILL: no cleanup at all) once in each of its steps, at a random moment after
// the step before it reported, then run to the end: the avatar is byte for byte the one an
// uninterrupted prepare made (the prepared_avatar fixture; prepare is deterministic), and a
// further run finds everything up to date. Each run resumes from what the killed ones finished.
TEST(Prepare, KilledAtAnyPointLosesNothingAndEndsAsAnUninterruptedRun) {
  test::TempDir dir;
  const std::string avatar = (dir / "avatar").string();
  auto ingest = test::run_dself({"--avatar", avatar, "--quiet", "ingest", test::sample_dir().string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;

  // What each step prints when it ends (the next one starts right after): kill somewhere in the next.
  const std::vector<std::string> marks = {"prepare [1/2]",          "progress: audio video_000",
                                          "progress: align video_000", "progress: face tracks video_000",
                                          "prepare [2/2]",          "progress: audio video_001",
                                          "progress: face tracks video_001", "prepare: the person",
                                          "progress: face track video_000"};
  std::mt19937 random(16);
  int killed = 0;
  for (size_t m = 0; m < marks.size(); ++m) {
    const fs::path log = dir / ("run-" + std::to_string(m) + ".log");
    test::Background run({"--avatar", avatar, "prepare"}, log);
    const bool reached = test::wait_until(
        [&] {
          const std::string out = run.output();
          return contains(out, marks[m]) || contains(out, "prepare: ");
        },
        120);
    ASSERT_TRUE(reached) << run.output();
    if (contains(run.output(), "prepare: 2 prepared")) {  // it finished first: nothing left to kill in
      EXPECT_EQ(run.wait(), 0) << run.output();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 400)(random)));
    run.signal(SIGKILL);
    const int code = run.wait();
    killed += code == 128 + SIGKILL;
  }
  EXPECT_GE(killed, 5) << "the kills should land inside prepare's steps, not after it";

  auto finished = test::run_dself({"--avatar", avatar, "prepare"});
  ASSERT_EQ(finished.exit_code, 0) << finished.output;
  auto again = test::run_dself({"--avatar", avatar, "prepare"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_FALSE(contains(again.output, "done: audio")) << again.output;

  const auto made = avatar_files(avatar);
  const auto reference = avatar_files(test::prepared_avatar_dir());
  for (const auto& [name, bytes] : reference) {
    auto it = made.find(name);
    if (it == made.end()) {
      ADD_FAILURE() << name << " is missing after the kills";
      continue;
    }
    EXPECT_TRUE(it->second == bytes) << name << " differs from an uninterrupted prepare's";
  }
  for (const auto& [name, bytes] : made) {
    EXPECT_TRUE(reference.count(name)) << name << " was left behind by a killed run";
  }
  // The killed runs are recorded as interrupted, none left "running".
  for (const auto& job : status_of(avatar)["jobs"]) EXPECT_NE(job["state"], "running") << job.dump();
}

TEST(Prepare, SamplePersonMeetsItsTargetsAndReRunsDoNothing) {
  test::TempDir dir;
  const std::string avatar = (dir / "avatar").string();
  auto ingest = test::run_dself({"--avatar", avatar, "--quiet", "ingest", test::sample_dir().string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;

  auto first = test::run_dself({"--avatar", avatar, "prepare"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_TRUE(contains(first.output, "prepare: 2 prepared, 0 failed")) << first.output;
  for (int id : {1, 2}) {
    EXPECT_TRUE(fs::exists(fs::path(avatar) / "audio" / (std::to_string(id) + ".wav")));
    EXPECT_TRUE(fs::exists(fs::path(avatar) / "transcripts" / (std::to_string(id) + ".json")));
    EXPECT_TRUE(fs::exists(fs::path(avatar) / "speech" / std::to_string(id) / "utterances.json"));
    EXPECT_TRUE(fs::exists(fs::path(avatar) / "faces" / std::to_string(id) / "landmarks.bin"));
    EXPECT_TRUE(fs::exists(fs::path(avatar) / "faces" / std::to_string(id) / "mouths.png"));
  }

  auto again = test::run_dself({"--avatar", avatar, "prepare"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_FALSE(contains(again.output, "done: audio")) << again.output;
  EXPECT_TRUE(contains(again.output, "done: -")) << again.output;

  auto status = status_of(avatar);
  int speech_stages = 0;
  for (const auto& stage : status["stages"]) {
    if (stage["stage"] == "prepare.speech") {
      ++speech_stages;
      EXPECT_GT(stage["summary"]["utterances"].get<int>(), 0);
      EXPECT_GT(stage["summary"]["phones"].get<int>(), 50);
    }
  }
  EXPECT_EQ(speech_stages, 2);

  auto report = test::run_dself({"--avatar", avatar, "report"});
  ASSERT_EQ(report.exit_code, 0) << report.output;
  std::string page = read_file(fs::path(avatar) / "report.html");
  EXPECT_TRUE(contains(page, "<svg")) << "no plots in the report";
  EXPECT_TRUE(contains(page, "faces/1/mouths.png"));
  EXPECT_TRUE(contains(page, "faces/2/references/00.png"));

  auto eval = test::run_dself({"--avatar", avatar, "eval", "prepare", "--truth", test::sample_dir().string(), "--json"});
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  auto figures = nlohmann::json::parse(eval.output);
  std::printf("eval prepare on the fixture: %s\n", figures.dump().c_str());
  // The targets of the prepare issue, on the sample person.
  EXPECT_LE(figures["stt"]["captions"]["wer"].get<double>(), 0.02);
  EXPECT_LE(figures["stt"]["pocketsphinx"]["wer"].get<double>(), 0.15);
  EXPECT_LE(figures["alignment"]["mean_boundary_error_ms"].get<double>(), 30.0);
  EXPECT_GT(figures["alignment"]["boundaries"].get<int>(), 100);
  EXPECT_GE(figures["face"]["found_share"].get<double>(), 0.99);
  EXPECT_LE(figures["face"]["landmark_error_iod_pct"].get<double>(), 3.0);
}

// A step's outputs damaged after it ran (a full disk, a bad copy) are made again, not reported
// "up to date" forever while `say` and `chat` ask for a prepare that does nothing.
TEST(Prepare, DamagedOutputsAreMadeAgain) {
  test::TempDir dir;
  const fs::path avatar = test::copy_avatar(dir.path());
  const fs::path landmarks = avatar / "faces" / "1" / "landmarks.bin";
  fs::resize_file(landmarks, fs::file_size(landmarks) / 2);
  auto broken = test::run_dself({"--avatar", avatar.string(), "say", "Hello.", "-o", (dir / "before.mp4").string()});
  ASSERT_NE(broken.exit_code, 0) << broken.output;

  auto face = test::run_dself({"--avatar", avatar.string(), "prepare"});
  ASSERT_EQ(face.exit_code, 0) << face.output;
  EXPECT_TRUE(contains(face.output, "(done: face; up to date: audio, transcript, speech, tracks)")) << face.output;
  EXPECT_TRUE(contains(face.output, "landmarks.bin")) << face.output;  // the warning names the file
  auto say = test::run_dself({"--avatar", avatar.string(), "--quiet", "say", "Hello.", "-o", (dir / "after.mp4").string()});
  EXPECT_EQ(say.exit_code, 0) << say.output;

  // A truncated transcript, and the persona's index (built from the transcripts) gone.
  const fs::path transcript = avatar / "transcripts" / "2.json";
  fs::resize_file(transcript, fs::file_size(transcript) / 3);
  fs::remove(avatar / "persona.db");
  auto text = test::run_dself({"--avatar", avatar.string(), "prepare"});
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_TRUE(contains(text.output, "(done: transcript; up to date: audio, speech, tracks, face)")) << text.output;
  EXPECT_TRUE(nlohmann::json::accept(read_file(transcript)));
  auto chat = test::run_dself({"--avatar", avatar.string(), "--quiet", "chat", "Where are you filming from?"});
  EXPECT_EQ(chat.exit_code, 0) << chat.output;

  // A truncated WAV (its header claims more samples than are there) and a missing clip.
  const fs::path wav = avatar / "audio" / "1.wav";
  fs::resize_file(wav, fs::file_size(wav) - 1000);
  auto audio = test::run_dself({"--avatar", avatar.string(), "prepare"});
  ASSERT_EQ(audio.exit_code, 0) << audio.output;
  EXPECT_TRUE(contains(audio.output, "(done: audio; up to date: transcript, speech, tracks, face)")) << audio.output;
  EXPECT_EQ(fs::file_size(wav), fs::file_size(test::prepared_avatar_dir() / "audio" / "1.wav"));
}

TEST(Prepare, BadSourcesAreReportedOneByOneAndAFixResumes) {
  test::TempDir dir;
  const fs::path sample = test::sample_dir();
  const fs::path inputs = dir / "inputs";
  fs::create_directories(inputs);
  // A good video with its captions.
  fs::copy_file(sample / "video_000.mp4", inputs / "good.mp4");
  fs::copy_file(sample / "video_000.en.vtt", inputs / "good.en.vtt");
  // No speech: the picture of the sample, the sound of a quiet room.
  ffmpeg({"-i", (sample / "video_001.mp4").string(), "-f", "lavfi", "-i", "anoisesrc=a=0.0005:c=pink:d=12", "-map",
          "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", (inputs / "no_speech.mp4").string()});
  // Captions that are malformed, and captions in German: the same video remuxed, so a new source.
  ffmpeg({"-i", (sample / "video_001.mp4").string(), "-c", "copy", "-metadata", "title=bad captions",
          (inputs / "bad_captions.mp4").string()});
  write_file_atomic(inputs / "bad_captions.en.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:0x.500\nhello there\n");
  ffmpeg({"-i", (sample / "video_001.mp4").string(), "-c", "copy", "-metadata", "title=german captions",
          (inputs / "german.mp4").string()});
  write_file_atomic(inputs / "german.en.vtt",
                    "WEBVTT\nKind: captions\nLanguage: de\n\n00:00:01.000 --> 00:00:04.000\nHallo zusammen, "
                    "willkommen zurück in der Werkstatt.\n");
  // No face: a real video of people walking far from the camera (OpenCV's vtest.avi), with the
  // sample person's voice.
  ffmpeg({"-i", "/usr/share/doc/opencv-doc/examples/data/vtest.avi", "-i", (sample / "video_001.mp4").string(), "-map",
          "0:v", "-map", "1:a", "-t", "8", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
          (inputs / "no_face.mp4").string()});
  // A corrupt stretch in the middle: bytes of the media data overwritten with noise.
  fs::copy_file(sample / "video_001.mp4", inputs / "corrupt.mp4");
  {
    std::fstream file(inputs / "corrupt.mp4", std::ios::in | std::ios::out | std::ios::binary);
    auto size = static_cast<std::streamoff>(fs::file_size(inputs / "corrupt.mp4"));
    file.seekp(size * 2 / 5);
    uint32_t seed = 12345;
    for (std::streamoff i = 0; i < size / 4; ++i) {
      seed = seed * 1664525u + 1013904223u;
      file.put(static_cast<char>(seed >> 24));
    }
  }

  const std::string avatar = (dir / "avatar").string();
  auto ingest = test::run_dself({"--avatar", avatar, "--quiet", "ingest", inputs.string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  EXPECT_TRUE(contains(ingest.output, "6 new")) << ingest.output;

  auto prepare = test::run_dself({"--avatar", avatar, "prepare"});
  EXPECT_EQ(prepare.exit_code, 1) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "prepared good")) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "prepare: 1 prepared, 5 failed")) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "no face was found in")) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "no speech was found in")) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "bad_captions.en.vtt line 3: malformed cue timing")) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "the captions are in 'de', not English")) << prepare.output;
  EXPECT_TRUE(contains(prepare.output, "corrupt")) << prepare.output;

  // Fix the captions in the workspace, then run again: the good source is not redone, the fixed
  // one resumes after its audio.
  fs::path captions;
  for (const auto& entry : fs::recursive_directory_iterator(fs::path(avatar) / "sources")) {
    if (entry.path().filename() == "bad_captions.en.vtt") captions = entry.path();
  }
  ASSERT_FALSE(captions.empty());
  fs::copy_file(sample / "video_001.en.vtt", captions, fs::copy_options::overwrite_existing);
  auto again = test::run_dself({"--avatar", avatar, "prepare"});
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_TRUE(contains(again.output, "prepare: 2 prepared, 4 failed")) << again.output;
  EXPECT_TRUE(contains(again.output, "prepared bad_captions (done: transcript, speech, tracks, face; up to date: audio)"))
      << again.output;
  EXPECT_TRUE(contains(again.output, "prepared good (done: -; up to date: audio, transcript, speech, tracks, face)"))
      << again.output;
}

}  // namespace
}  // namespace dself
