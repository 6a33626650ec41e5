// dself say end to end through the real binary on the prepared sample avatar: an MP4 with the
// person's face whose mouth moves with the sound, audio and video in step, marked synthetic; a
// WAV beside it; every bad input a clear message; and `dself eval say` figures.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "face/face.h"
#include "media/media.h"
#include "speech/speech.h"
#include "support.h"

namespace dself {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The JSON document in a command's output (stdout and stderr together: logs may come first).
nlohmann::json json_in(const std::string& output) {
  size_t start = output.starts_with("{") ? 0 : output.find("\n{") + 1;
  return nlohmann::json::parse(output.substr(start));
}

class Say : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    avatar_ = test::copy_avatar(dir_->path()).string();
  }
  static void TearDownTestSuite() { delete dir_; }
  static test::TempDir* dir_;
  static std::string avatar_;
};
test::TempDir* Say::dir_ = nullptr;
std::string Say::avatar_;

TEST_F(Say, WritesASyntheticVideoWhoseMouthMovesWithTheSound) {
  const fs::path out = dir_->path() / "hello.mp4", wav = dir_->path() / "hello.wav";
  auto result = test::run_dself({"--avatar", avatar_, "say",
                                 "Good morning, everyone. Today I want to talk about bread, bicycles and the sea.",
                                 "-o", out.string(), "--wav", wav.string(), "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto json = json_in(result.output);
  EXPECT_EQ(json["sentences"], 2);
  EXPECT_TRUE(json["synthetic"].get<bool>());
  EXPECT_TRUE(contains(json["voice"], "fallback voice"));

  media::MediaInfo info = media::probe(out);
  ASSERT_TRUE(info.has_video && info.has_audio);
  EXPECT_EQ(info.width, 512);
  EXPECT_EQ(info.height, 512);
  EXPECT_NEAR(info.fps, 25, 1e-6);
  EXPECT_TRUE(contains(info.tags["comment"], "synthetic")) << info.tags["comment"];
  EXPECT_NEAR(info.duration_s, json["duration_s"].get<double>(), 0.1);

  // The WAV holds the same speech, 16 kHz.
  std::vector<float> speech = media::decode_audio(wav, 16000);
  EXPECT_NEAR(speech.size() / 16000.0, json["duration_s"].get<double>(), 0.05);

  // Lips follow the sound: the phones are found again in the written audio by forced alignment
  // (not taken from the voice), and the mouth, found again by dlib on the frames, is open on the
  // open vowels and shut on p, b and m at those times.
  speech::Phonemizer phonemizer;
  speech::Aligner aligner;
  std::vector<transcript::Word> words;
  for (const char* w : {"good", "morning", "everyone", "today", "i", "want", "to", "talk", "about", "bread", "bicycles",
                        "and", "the", "sea"}) {
    words.push_back({w, 0, 0, 1});
  }
  speech::Alignment heard = aligner.align(speech, phonemizer.pronounce(words));
  face::FaceDetector detector;
  std::vector<double> opening;  // per frame, NAN where no face was found
  media::VideoReader reader(out);
  media::VideoFrame frame;
  while (reader.read(frame)) {
    auto faces = detector.detect(frame.bgr);
    if (faces.empty()) {
      opening.push_back(NAN);
      continue;
    }
    const auto& p = faces.front().points;
    opening.push_back(cv::norm(p[62] - p[66]) / face::inter_ocular_distance(p));
  }
  ASSERT_GT(opening.size(), 75u);
  EXPECT_EQ(std::count_if(opening.begin(), opening.end(), [](double o) { return std::isnan(o); }), 0)
      << "face lost on rendered frames";
  auto mean_opening = [&](const std::set<std::string>& phones) {
    double sum = 0;
    int n = 0;
    for (const auto& phone : heard.phones) {
      if (!phones.contains(phone.phone)) continue;
      double middle_s = (phone.start_s + phone.end_s) / 2;
      size_t f = static_cast<size_t>(std::lround(middle_s * 25));
      if (f < opening.size() && !std::isnan(opening[f])) sum += opening[f], ++n;
    }
    EXPECT_GT(n, 2) << "too few phones of the class were heard";
    return sum / std::max(n, 1);
  };
  double open = mean_opening({"aa", "ao", "ah", "ay", "aw", "ae"});
  double shut = mean_opening({"p", "b", "m"});
  EXPECT_GT(open, shut + 0.05) << "open vowels " << open << ", bilabials " << shut << " (inner-lip opening / IOD)";
}

// The picture says it is synthetic: a bright label on a dark box in the lower right corner, left
// out only with --no-synthetic-mark (the rest of the picture is the same either way).
TEST_F(Say, PictureCarriesAVisibleSyntheticMark) {
  const fs::path marked = dir_->path() / "marked.mp4", plain = dir_->path() / "plain.mp4";
  for (const auto& [out, extra] :
       {std::pair{marked, std::string()}, std::pair{plain, std::string("--no-synthetic-mark")}}) {
    std::vector<std::string> command = {"--avatar", avatar_, "say", "Hello.", "-o", out.string()};
    if (!extra.empty()) command.push_back(extra);
    auto result = test::run_dself(command);
    ASSERT_EQ(result.exit_code, 0) << result.output;
  }
  media::VideoReader with(marked), without(plain);
  media::VideoFrame a, b;
  ASSERT_TRUE(with.read(a));
  ASSERT_TRUE(without.read(b));
  const int w = a.bgr.cols, h = a.bgr.rows;
  cv::Mat corner_a, corner_b, gray;
  cv::cvtColor(a.bgr(cv::Rect(w * 3 / 4, h * 15 / 16, w / 4, h / 16)), corner_a, cv::COLOR_BGR2GRAY);
  cv::cvtColor(b.bgr(cv::Rect(w * 3 / 4, h * 15 / 16, w / 4, h / 16)), corner_b, cv::COLOR_BGR2GRAY);
  // The label: dark box with white letters, where the unmarked picture has neither.
  double min_a, max_a;
  cv::minMaxLoc(corner_a, &min_a, &max_a);
  EXPECT_GT(max_a, 200) << "white letters in the corner";
  EXPECT_GT(cv::norm(corner_a, corner_b, cv::NORM_L1) / corner_a.total(), 10.0)
      << "the corner differs from the unmarked picture";
  // Away from the corner, the same picture (up to the encoder).
  cv::Mat face_a, face_b;
  cv::cvtColor(a.bgr(cv::Rect(w / 4, h / 4, w / 2, h / 2)), face_a, cv::COLOR_BGR2GRAY);
  cv::cvtColor(b.bgr(cv::Rect(w / 4, h / 4, w / 2, h / 2)), face_b, cv::COLOR_BGR2GRAY);
  EXPECT_LT(cv::norm(face_a, face_b, cv::NORM_L1) / face_a.total(), 2.0) << "the face is untouched by the mark";
  auto help = test::run_dself({"say", "--help"});
  EXPECT_TRUE(contains(help.output, "--no-synthetic-mark")) << help.output;
}

TEST_F(Say, BadInputsSayWhatToDo) {
  const std::string out = (dir_->path() / "bad.mp4").string();
  auto empty = test::run_dself({"--avatar", avatar_, "say", "", "-o", out});
  EXPECT_EQ(empty.exit_code, 1) << empty.output;
  EXPECT_TRUE(contains(empty.output, "nothing to say")) << empty.output;

  auto punctuation = test::run_dself({"--avatar", avatar_, "say", "?! ... -- !", "-o", out});
  EXPECT_EQ(punctuation.exit_code, 1) << punctuation.output;
  EXPECT_TRUE(contains(punctuation.output, "nothing to say")) << punctuation.output;

  auto no_dir = test::run_dself({"--avatar", avatar_, "say", "Hello.", "-o", "/nonexistent-dir/x.mp4"});
  EXPECT_EQ(no_dir.exit_code, 1) << no_dir.output;
  EXPECT_TRUE(contains(no_dir.output, "/nonexistent-dir")) << no_dir.output;

  auto not_mp4 = test::run_dself({"--avatar", avatar_, "say", "Hello.", "-o", (dir_->path() / "x.avi").string()});
  EXPECT_EQ(not_mp4.exit_code, 1) << not_mp4.output;
  EXPECT_TRUE(contains(not_mp4.output, ".mp4")) << not_mp4.output;
  EXPECT_FALSE(fs::exists(out));

  // An avatar with sources but nothing prepared names the step to run; an empty one, ingest.
  test::TempDir other;
  const std::string unprepared = (other / "avatar").string();
  auto ingest = test::run_dself({"--avatar", unprepared, "--quiet", "ingest", test::sample_dir().string()});
  ASSERT_EQ(ingest.exit_code, 0) << ingest.output;
  auto not_prepared = test::run_dself({"--avatar", unprepared, "say", "Hello.", "-o", out});
  EXPECT_EQ(not_prepared.exit_code, 1) << not_prepared.output;
  EXPECT_TRUE(contains(not_prepared.output, "prepare")) << not_prepared.output;
  auto nothing = test::run_dself({"--avatar", (other / "none").string(), "say", "Hello.", "-o", out});
  EXPECT_EQ(nothing.exit_code, 1) << nothing.output;
  EXPECT_TRUE(contains(nothing.output, "ingest")) << nothing.output;
}

// Ctrl-C while the video is being written: say stops, says so, and leaves no partial file.
TEST_F(Say, InterruptedSayLeavesNothingBehind) {
  test::TempDir out_dir;
  std::string text;
  for (int i = 0; i < 40; ++i) text += "We walked along the harbour wall and counted the boats. ";
  test::Background say({"--avatar", avatar_, "say", text, "-o", (out_dir / "out.mp4").string(), "--size", "128"},
                       dir_->path() / "interrupted-say.log");
  auto partial_written = [&] {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(out_dir.path(), ec)) {
      if (contains(entry.path().filename().string(), ".partial-") && entry.file_size(ec) > 0) return true;
    }
    return false;
  };
  ASSERT_TRUE(test::wait_until(partial_written, 120)) << say.output();
  say.signal(SIGINT);
  EXPECT_EQ(say.wait(), 130) << say.output();
  EXPECT_TRUE(contains(say.output(), "interrupted (Ctrl-C)")) << say.output();
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(out_dir.path())) left.push_back(entry.path().filename().string());
  EXPECT_TRUE(left.empty()) << "left behind: " << (left.empty() ? "" : left[0]);
}

TEST_F(Say, LongTextIsSaidSentenceBySentenceWithSoundAndPictureInStep) {
  std::string text;
  for (int i = 0; i < 6; ++i) text += "The tide came in at " + std::to_string(i + 3) + " o'clock, and we waited. ";
  const fs::path out = dir_->path() / "long.mp4";
  auto result = test::run_dself({"--avatar", avatar_, "--quiet", "say", text, "-o", out.string(), "--size", "256",
                                 "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto json = json_in(result.output);
  EXPECT_EQ(json["sentences"], 6);
  media::MediaInfo info = media::probe(out);
  EXPECT_EQ(info.width, 256);
  // Frames and samples agree to within one frame, sentence after sentence: no drift.
  double audio_s = media::decode_audio(out, 16000).size() / 16000.0;
  EXPECT_NEAR(json["frames"].get<int>() / 25.0, json["duration_s"].get<double>(), 0.04 + 1e-9);
  EXPECT_NEAR(audio_s, json["duration_s"].get<double>(), 0.05);
}

TEST_F(Say, EvalSayReportsLipSyncAndReenactment) {
  auto result = test::run_dself({"--avatar", avatar_, "--quiet", "eval", "say", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto json = json_in(result.output);
  const auto& lips = json["lip_sync"];
  ASSERT_TRUE(lips.contains("face_found_share")) << lips.dump();
  EXPECT_GT(lips["frames"].get<int>(), 25);
  EXPECT_GE(lips["face_found_share"].get<double>(), 0.95);
  EXPECT_LT(lips["mouth_error_iod_pct"].get<double>(), 10.0);
  const auto& re = json["reenactment"];
  ASSERT_TRUE(re.contains("face")) << re.dump();
  // Better than the reference frame alone: the mouth crops add what the still frame lacks.
  EXPECT_GT(re["lower_face"]["psnr_db"].get<double>(), re["reference_only"]["lower_face"]["psnr_db"].get<double>());
  EXPECT_TRUE(fs::exists(fs::path(avatar_) / "models/render/metrics.json"));
}

}  // namespace
}  // namespace dself
