// The hard sample person (issue 15): an interview with a guest, cut-aways, two-shots, b-roll and
// music under an intro. Its truth is checked against the video itself: dlib finds as many faces
// as the truth puts on screen, where it puts them; the music is in the audio where the truth
// says; the shots cover the video; the guest's lines are said by the guest.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/fs.h"
#include "face/face.h"
#include "media/media.h"
#include "support.h"

namespace dself {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json hard_truth() { return json::parse(read_file(test::hard_sample_dir() / "video_000.truth.json")); }

const json& shot_at(const json& truth, int64_t frame) {
  for (const json& shot : truth["shots"]) {
    if (shot["start_frame"].get<int64_t>() <= frame && frame < shot["end_frame"].get<int64_t>()) return shot;
  }
  throw std::runtime_error("no shot at frame " + std::to_string(frame));
}

bool in_fade(const json& truth, int64_t frame) {
  const json& shot = shot_at(truth, frame);
  return frame - shot["start_frame"].get<int64_t>() < shot["fade_frames"].get<int64_t>();
}

bool on_screen(const json& shot, const std::string& who) {
  for (const json& w : shot["on_screen"]) {
    if (w == who) return true;
  }
  return false;
}

TEST(HardSampleTruth, ShotsCoverTheVideoAndSayWhoIsOnScreen) {
  json truth = hard_truth();
  int64_t frames = truth["frame_count"];
  ASSERT_EQ(truth["landmarks"].size(), static_cast<size_t>(frames));
  ASSERT_EQ(truth["guest_faces"].size(), static_cast<size_t>(frames));
  int64_t next = 0;
  std::map<std::string, int> kinds;
  for (const json& shot : truth["shots"]) {
    EXPECT_EQ(shot["start_frame"].get<int64_t>(), next);
    EXPECT_LT(shot["start_frame"].get<int64_t>(), shot["end_frame"].get<int64_t>());
    next = shot["end_frame"];
    ++kinds[shot["kind"].get<std::string>()];
  }
  EXPECT_EQ(next, frames);
  EXPECT_EQ(truth["shots"][0]["kind"], "intro");
  for (const char* kind : {"host", "guest"}) EXPECT_GT(kinds[kind], 0) << kind;
  EXPECT_GT(kinds["broll"] + kinds["two_shot"], 0);
  for (int64_t f = 0; f < frames; ++f) {
    if (in_fade(truth, f)) continue;
    const json& shot = shot_at(truth, f);
    EXPECT_EQ(!truth["landmarks"][f].empty(), on_screen(shot, "host")) << "frame " << f;
    EXPECT_EQ(!truth["guest_faces"][f].empty(), on_screen(shot, "guest")) << "frame " << f;
  }
  // Both speak, one at a time, and the guest's words are the guest's phones.
  double last_end = 0;
  int host = 0, guest = 0;
  for (const json& sentence : truth["sentences"]) {
    EXPECT_GE(sentence["start_s"].get<double>(), last_end);
    last_end = sentence["end_s"];
    (sentence["speaker"] == "host" ? host : guest) += 1;
  }
  EXPECT_GT(host, guest);
  EXPECT_GT(guest, 0);
  EXPECT_GT(truth["sentences"][0]["start_s"].get<double>(), 1.9) << "the intro has no speech";
  EXPECT_EQ(truth["sentences"][0]["speaker"], "host");
}

// dlib (the detector prepare uses) finds as many faces as the truth puts on screen, at the
// commanded places; none on the b-roll.
TEST(HardSampleFaces, DlibFindsTheFacesTheTruthPutsOnScreen) {
  json truth = hard_truth();
  face::FaceDetector detector;
  media::VideoReader reader(test::hard_sample_dir() / "video_000.mp4");
  media::VideoFrame frame;
  int checked = 0, wrong_count = 0, misplaced = 0, broll_faces = 0;
  int64_t f = -1;
  while (reader.read(frame)) {
    ++f;
    if (f % 5 != 0 || in_fade(truth, f)) continue;
    const json& shot = shot_at(truth, f);
    size_t expected = shot["on_screen"].size();
    std::vector<face::FaceLandmarks> faces = detector.detect(frame.bgr);
    ++checked;
    if (expected == 0) broll_faces += static_cast<int>(faces.size());
    if (faces.size() != expected) {
      ++wrong_count;
      continue;
    }
    if (on_screen(shot, "host")) {
      const json& row = truth["landmarks"][f];
      cv::Point2f nose(row[2 * 30].get<float>(), row[2 * 30 + 1].get<float>());
      bool near = false;
      for (const auto& found : faces) near = near || cv::norm(found.points[30] - nose) < 10;
      misplaced += near ? 0 : 1;
    }
  }
  std::printf("[ hard sample ] %d frames checked: %d with another face count, %d host misplaced, %d b-roll faces\n",
              checked, wrong_count, misplaced, broll_faces);
  EXPECT_GT(checked, 150);
  EXPECT_EQ(broll_faces, 0);
  EXPECT_LE(wrong_count, checked / 50);
  EXPECT_EQ(misplaced, 0);
}

double rms(const std::vector<float>& audio, double from_s, double to_s) {
  auto a = static_cast<size_t>(from_s * 16000), b = static_cast<size_t>(to_s * 16000);
  double sum = 0;
  for (size_t i = a; i < b && i < audio.size(); ++i) sum += audio[i] * audio[i];
  return std::sqrt(sum / static_cast<double>(std::max<size_t>(1, b - a)));
}

TEST(HardSampleAudio, MusicUnderTheIntroAndNowhereElse) {
  json truth = hard_truth();
  std::vector<float> audio = media::decode_audio(test::hard_sample_dir() / "video_000.mp4", 16000);
  double music_end = truth["music"][0]["end_s"];
  EXPECT_GT(rms(audio, 0.6, 1.8), 0.01) << "the intro has music";
  // The pause after the first guest line, after the music has stopped, is quiet.
  const json& sentences = truth["sentences"];
  bool checked = false;
  for (size_t i = 1; i + 1 < sentences.size(); ++i) {
    double gap_from = sentences[i]["end_s"].get<double>() + 0.05;
    double gap_to = sentences[i + 1]["start_s"].get<double>() - 0.05;
    if (gap_from < music_end + 0.1 || gap_to - gap_from < 0.1) continue;
    EXPECT_LT(rms(audio, gap_from, gap_to), 0.003) << gap_from << "-" << gap_to << " s";
    checked = true;
    break;
  }
  EXPECT_TRUE(checked);
}

TEST(HardSampleCli, TheGuestNeedsAVoiceOfTheirOwn) {
  test::TempDir tmp;
  auto result = test::run_dself(
      {"--quiet", "sample", "--out", (tmp / "out").string(), "--hard", "--voice", "awb", "--guest-voice", "awb"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("--guest-voice awb"), std::string::npos) << result.output;
  EXPECT_FALSE(fs::exists(tmp / "out" / "video_000.mp4"));
}

}  // namespace
}  // namespace dself
