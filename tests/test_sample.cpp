// The sample person (DESIGN.md §5): the fixture's videos checked against their own ground truth
// (dlib finds the face in every frame where it was commanded to be, the audio is as long as
// the phones, the captions say the truth's words), bad inputs through the real binary, and
// determinism.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <regex>
#include <sstream>
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

const char* const kGraceHopper = "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";
const char* const kLogo = "/usr/share/matplotlib/mpl-data/sample_data/logo2.png";  // an image with no face

json read_json(const fs::path& path) { return json::parse(read_file(path)); }

json truth_of(int video) {
  char name[64];
  std::snprintf(name, sizeof name, "video_%03d.truth.json", video);
  return read_json(test::sample_dir() / name);
}

std::array<cv::Point2f, 68> landmarks_at(const json& truth, size_t frame) {
  const json& row = truth["landmarks"][frame];
  std::array<cv::Point2f, 68> points;
  for (int i = 0; i < 68; ++i) points[i] = cv::Point2f(row[2 * i].get<float>(), row[2 * i + 1].get<float>());
  return points;
}

double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  double n = static_cast<double>(a.size());
  double mean_a = std::accumulate(a.begin(), a.end(), 0.0) / n;
  double mean_b = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += (a[i] - mean_a) * (b[i] - mean_b);
    aa += (a[i] - mean_a) * (a[i] - mean_a);
    bb += (b[i] - mean_b) * (b[i] - mean_b);
  }
  return ab / std::sqrt(aa * bb);
}

bool directory_is_empty_or_absent(const fs::path& dir) { return !fs::exists(dir) || fs::is_empty(dir); }

// ---- outputs and truth -------------------------------------------------------------------

TEST(SampleOutputs, EveryVideoHasItsCaptionsTruthAndAPlaylistEntry) {
  const fs::path dir = test::sample_dir();
  json summary = read_json(dir / "sample.json");
  EXPECT_EQ(summary["format"], "dself-sample");
  EXPECT_EQ(summary["options"]["seed"], 7);
  ASSERT_EQ(summary["videos"].size(), 2u);
  std::string playlist = read_file(dir / "playlist.html");
  EXPECT_TRUE(playlist.starts_with("<!DOCTYPE html><html><head><title>"));
  EXPECT_TRUE(playlist.ends_with("</body></html>\n"));
  for (const json& video : summary["videos"]) {
    for (const char* key : {"video", "captions", "truth"}) {
      EXPECT_TRUE(fs::is_regular_file(dir / video[key].get<std::string>())) << video[key];
    }
    std::string entry = "<video controls src=\"" + video["video"].get<std::string>() + "\" title=\"";
    EXPECT_NE(playlist.find(entry), std::string::npos) << entry;
    std::string track = "<track kind=\"captions\" srclang=\"en\" label=\"English\" src=\"" +
                        video["captions"].get<std::string>() + "\"></video>";
    EXPECT_NE(playlist.find(track), std::string::npos) << track;
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_NE(entry.path().filename().string().front(), '.') << "left behind: " << entry.path();
  }
}

TEST(SampleTruth, SentencesWordsAndPhonesNestAndMoveForward) {
  for (int v = 0; v < 2; ++v) {
    json truth = truth_of(v);
    SCOPED_TRACE("video " + std::to_string(v));
    EXPECT_EQ(truth["format"], "dself-sample-truth");
    EXPECT_EQ(truth["version"], 1);
    EXPECT_EQ(truth["fps"], 25);
    EXPECT_EQ(truth["sample_rate"], 16000);
    double duration = truth["duration_s"];
    int64_t frames = truth["frame_count"];
    EXPECT_EQ(frames, std::llround(duration * 25));
    ASSERT_EQ(truth["landmarks"].size(), static_cast<size_t>(frames));
    for (const json& row : truth["landmarks"]) ASSERT_EQ(row.size(), 136u);

    ASSERT_FALSE(truth["sentences"].empty());
    double last_end = 0;
    for (const json& sentence : truth["sentences"]) {
      EXPECT_FALSE(sentence["text"].get<std::string>().empty());
      EXPECT_FALSE(sentence["topic"].get<std::string>().empty());
      ASSERT_FALSE(sentence["words"].empty());
      EXPECT_GE(sentence["start_s"].get<double>(), last_end);
      for (const json& word : sentence["words"]) {
        EXPECT_GE(word["start_s"].get<double>(), sentence["start_s"].get<double>());
        EXPECT_LE(word["end_s"].get<double>(), sentence["end_s"].get<double>());
        EXPECT_GE(word["start_s"].get<double>(), last_end) << word["text"];
        EXPECT_LT(word["start_s"].get<double>(), word["end_s"].get<double>()) << word["text"];
        ASSERT_FALSE(word["phones"].empty()) << word["text"];
        double phone_end = word["start_s"];
        for (const json& phone : word["phones"]) {
          EXPECT_NEAR(phone["start_s"].get<double>(), phone_end, 1e-6) << word["text"];
          EXPECT_GT(phone["end_s"].get<double>(), phone["start_s"].get<double>()) << word["text"];
          EXPECT_NE(phone["phone"], "pau");
          phone_end = phone["end_s"];
        }
        EXPECT_NEAR(phone_end, word["end_s"].get<double>(), 1e-6);
        last_end = word["end_s"];
      }
    }
    // The whole timeline: phones and silences without gaps, from 0 to the end of the video.
    double t = 0;
    for (const json& phone : truth["phones"]) {
      EXPECT_NEAR(phone["start_s"].get<double>(), t, 1e-6);
      EXPECT_GT(phone["end_s"].get<double>(), phone["start_s"].get<double>());
      t = phone["end_s"];
    }
    EXPECT_NEAR(t, duration, 1e-6);
  }
}

TEST(SampleMedia, AudioIsAsLongAsThePhonesAndFramesAsTheTruth) {
  json truth = truth_of(0);
  const fs::path video = test::sample_dir() / "video_000.mp4";
  media::MediaInfo info = media::probe(video);
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.audio_codec, "aac");
  EXPECT_EQ(info.width, 512);
  EXPECT_EQ(info.height, 512);
  EXPECT_NEAR(info.fps, 25, 1e-6);
  std::vector<float> audio = media::decode_audio(video, 16000);
  double audio_s = static_cast<double>(audio.size()) / 16000;
  double last_phone_end = truth["phones"].back()["end_s"];
  std::printf("[ sample ] audio %.3f s, last phone ends %.3f s\n", audio_s, last_phone_end);
  EXPECT_NEAR(audio_s, last_phone_end, 0.05);
  // Speech is where the phones say: louder inside words than in the silences.
  double speech = 0, silence = 0;
  size_t speech_n = 0, silence_n = 0;
  for (const json& phone : truth["phones"]) {
    auto from = static_cast<size_t>(phone["start_s"].get<double>() * 16000);
    auto to = std::min(audio.size(), static_cast<size_t>(phone["end_s"].get<double>() * 16000));
    bool quiet = phone["phone"] == "pau";
    for (size_t i = from; i < to; ++i) (quiet ? silence : speech) += audio[i] * audio[i];
    (quiet ? silence_n : speech_n) += to > from ? to - from : 0;
  }
  EXPECT_GT(speech / speech_n, 20 * silence / silence_n);
}

// ---- captions ----------------------------------------------------------------------------

struct Cue {
  double start_s = 0;
  double end_s = 0;
  std::vector<std::string> lines;
};

double vtt_time(const std::string& text) {
  int h = 0, m = 0, s = 0, ms = 0;
  EXPECT_EQ(std::sscanf(text.c_str(), "%d:%d:%d.%d", &h, &m, &s, &ms), 4) << text;
  return h * 3600 + m * 60 + s + ms / 1000.0;
}

std::vector<Cue> parse_vtt(const std::string& text) {
  std::vector<Cue> cues;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "WEBVTT");
  std::getline(in, line);
  EXPECT_EQ(line, "Kind: captions");
  std::getline(in, line);
  EXPECT_EQ(line, "Language: en");
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    size_t arrow = line.find(" --> ");
    EXPECT_NE(arrow, std::string::npos) << line;
    if (arrow == std::string::npos) break;
    Cue cue{vtt_time(line.substr(0, arrow)), vtt_time(line.substr(arrow + 5, 12)), {}};
    EXPECT_NE(line.find("align:start position:0%"), std::string::npos);
    while (std::getline(in, line) && !line.empty()) cue.lines.push_back(line);
    cues.push_back(cue);
  }
  return cues;
}

TEST(SampleCaptions, YouTubeStyleCuesSayTheTruthsWords) {
  for (int v = 0; v < 2; ++v) {
    SCOPED_TRACE("video " + std::to_string(v));
    json truth = truth_of(v);
    std::vector<std::string> said;
    std::vector<double> said_at;
    for (const json& sentence : truth["sentences"]) {
      for (const json& word : sentence["words"]) {
        said.push_back(word["text"]);
        said_at.push_back(word["start_s"]);
      }
    }
    std::vector<Cue> cues = parse_vtt(read_file(test::sample_dir() / truth["captions"].get<std::string>()));
    ASSERT_FALSE(cues.empty());
    std::vector<std::string> captioned;
    std::vector<double> captioned_at;
    double previous_start = -1;
    const std::regex tag(R"(<(\d\d:\d\d:\d\d\.\d\d\d)><c> ([^<]+)</c>)");
    for (const Cue& cue : cues) {
      EXPECT_GT(cue.start_s, previous_start);
      EXPECT_GT(cue.end_s, cue.start_s);
      previous_start = cue.start_s;
      ASSERT_EQ(cue.lines.size(), 2u);
      const std::string& spoken = cue.lines[1];
      if (spoken == " ") continue;  // the 10 ms cue between two lines
      // The new line: its first word plain, the others with their start times.
      size_t first_tag = spoken.find('<');
      captioned.push_back(spoken.substr(0, first_tag));
      captioned_at.push_back(cue.start_s);
      for (std::sregex_iterator it(spoken.begin(), spoken.end(), tag), end; it != end; ++it) {
        captioned_at.push_back(vtt_time((*it)[1]));
        captioned.push_back((*it)[2]);
        EXPECT_GE(captioned_at.back(), cue.start_s);
        EXPECT_LE(captioned_at.back(), cue.end_s);
      }
    }
    EXPECT_EQ(captioned, said);
    ASSERT_EQ(captioned_at.size(), said_at.size());
    for (size_t i = 0; i < said_at.size(); ++i) EXPECT_NEAR(captioned_at[i], said_at[i], 0.0015) << said[i];
  }
}

// ---- the face ------------------------------------------------------------------------------

// Roll of the eye line, in degrees.
double roll_deg(const std::array<cv::Point2f, 68>& p) {
  cv::Point2f d = face::centroid(p, 42, 48) - face::centroid(p, 36, 42);
  return std::atan2(d.y, d.x) * 180 / 3.14159265358979;
}

// dlib must find the face in every frame, and its landmarks must be where they were commanded.
// The floor is dlib itself: its boxes come in discrete sizes and its landmarks move with how the
// face sits in the box, so on this video they are 2.9% of the inter-ocular distance off with the
// head held still, and 3.6% with the head moving (seeds 1-3: 3.7-4.3%; jaw points 6-7%, mouth
// 2.5%); hence 5% overall. That alone would pass a mouth that never moves (4.5%, mouth 4.4%) or a
// head that never moves (3.6%: its motion is small next to dlib's noise), so the mouth's error
// (< 3.5%) and opening (correlation 0.99), and the head's roll and position (0.8-0.9; about 0
// when frozen) must follow the commanded ones too.
TEST(SampleFace, DlibFindsOneFaceInEveryFrameWhereItWasCommanded) {
  json truth = truth_of(0);
  face::FaceDetector detector;
  media::VideoReader reader(test::sample_dir() / "video_000.mp4");
  media::VideoFrame frame;
  size_t frames = 0, without_one_face = 0;
  double error_sum = 0, mouth_error_sum = 0;
  std::vector<double> commanded_opening, found_opening;
  std::vector<double> commanded_roll, found_roll, commanded_x, found_x, commanded_y, found_y;
  while (reader.read(frame)) {
    ASSERT_LT(frames, truth["landmarks"].size());
    std::array<cv::Point2f, 68> commanded = landmarks_at(truth, frames++);
    std::vector<face::FaceLandmarks> faces = detector.detect(frame.bgr);
    if (faces.size() != 1) {
      ++without_one_face;
      continue;
    }
    const auto& found = faces.front().points;
    double iod = face::inter_ocular_distance(commanded);
    double error = 0, mouth_error = 0;
    for (int i = 0; i < 68; ++i) {
      double d = cv::norm(found[i] - commanded[i]) / iod;
      error += d / 68;
      if (i >= 48) mouth_error += d / 20;
    }
    error_sum += error;
    mouth_error_sum += mouth_error;
    commanded_opening.push_back(cv::norm(commanded[62] - commanded[66]) / iod);
    found_opening.push_back(cv::norm(found[62] - found[66]) / iod);
    commanded_roll.push_back(roll_deg(commanded));
    found_roll.push_back(roll_deg(found));
    cv::Point2f commanded_nose = face::centroid(commanded, 27, 36), found_nose = face::centroid(found, 27, 36);
    commanded_x.push_back(commanded_nose.x);
    found_x.push_back(found_nose.x);
    commanded_y.push_back(commanded_nose.y);
    found_y.push_back(found_nose.y);
  }
  EXPECT_EQ(frames, truth["landmarks"].size());
  EXPECT_EQ(without_one_face, 0u);
  ASSERT_GT(found_opening.size(), 100u);
  double n = static_cast<double>(found_opening.size());
  double mean_error = 100 * error_sum / n;
  double mouth_error = 100 * mouth_error_sum / n;
  double opening_correlation = correlation(commanded_opening, found_opening);
  double roll_correlation = correlation(commanded_roll, found_roll);
  double x_correlation = correlation(commanded_x, found_x);
  double y_correlation = correlation(commanded_y, found_y);
  std::printf(
      "[ sample ] %zu frames: landmark error %.2f%% IOD (mouth %.2f%%), correlation of mouth opening %.3f, "
      "head roll %.3f, nose x %.3f, nose y %.3f\n",
      frames, mean_error, mouth_error, opening_correlation, roll_correlation, x_correlation, y_correlation);
  RecordProperty("landmark_error_percent_iod", std::to_string(mean_error));
  RecordProperty("mouth_error_percent_iod", std::to_string(mouth_error));
  RecordProperty("mouth_opening_correlation", std::to_string(opening_correlation));
  RecordProperty("head_roll_correlation", std::to_string(roll_correlation));
  EXPECT_LT(mean_error, 5.0);
  EXPECT_LT(mouth_error, 3.5);
  EXPECT_GT(opening_correlation, 0.8);
  EXPECT_GT(roll_correlation, 0.6);
  EXPECT_GT(x_correlation, 0.6);
  EXPECT_GT(y_correlation, 0.6);
}

// Lip sync measured without dlib (which found the portrait's landmarks in the first place, so
// dlib against dlib could agree on a shared mistake): the commanded inner-lip opening against the
// share of dark pixels (the mouth's inside, not skin, lips or teeth) in a box around the commanded
// mouth, frame by frame.
TEST(SampleFace, TheMouthsDarkInsideFollowsTheCommandedOpening) {
  json truth = truth_of(0);
  media::VideoReader reader(test::sample_dir() / "video_000.mp4");
  media::VideoFrame frame;
  size_t frames = 0;
  std::vector<double> commanded_opening, dark_share;
  while (reader.read(frame)) {
    ASSERT_LT(frames, truth["landmarks"].size());
    std::array<cv::Point2f, 68> commanded = landmarks_at(truth, frames++);
    const double iod = face::inter_ocular_distance(commanded);
    std::vector<cv::Point2f> outer(commanded.begin() + 48, commanded.begin() + 60);
    cv::Rect box = cv::boundingRect(outer) & cv::Rect(0, 0, frame.bgr.cols, frame.bgr.rows);
    ASSERT_GT(box.area(), 0);
    int dark = 0;
    for (int y = box.y; y < box.y + box.height; ++y) {
      for (int x = box.x; x < box.x + box.width; ++x) {
        const cv::Vec3b& bgr = frame.bgr.at<cv::Vec3b>(y, x);
        dark += std::max({bgr[0], bgr[1], bgr[2]}) < 80 ? 1 : 0;
      }
    }
    commanded_opening.push_back(cv::norm(commanded[62] - commanded[66]) / iod);
    dark_share.push_back(dark / (iod * iod));
  }
  ASSERT_GT(frames, 100u);
  const double r = correlation(commanded_opening, dark_share);
  std::printf("[ sample ] %zu frames: correlation of the commanded mouth opening with the dark pixels inside it %.3f\n",
              frames, r);
  RecordProperty("mouth_dark_pixels_correlation", std::to_string(r));
  EXPECT_GT(r, 0.8);
}

// ---- bad inputs through the real binary ------------------------------------------------------

TEST(SampleCli, UnknownVoiceNamesTheValidOnes) {
  test::TempDir tmp;
  auto result = test::run_dself({"--quiet", "sample", "--out", (tmp / "out").string(), "--voice", "hal9000"});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("hal9000"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("awb, kal, rms, slt"), std::string::npos) << result.output;
  EXPECT_TRUE(directory_is_empty_or_absent(tmp / "out"));
}

TEST(SampleCli, OutOfRangeOptionsAreRefused) {
  test::TempDir tmp;
  const std::vector<std::vector<std::string>> wrong = {{"--minutes", "0"},
                                                       {"--minutes", "601"},
                                                       {"--videos", "0"},
                                                       {"--minutes", "0.1", "--videos", "3"},
                                                       {"--size", "511"}};
  for (const auto& flags : wrong) {
    std::vector<std::string> args = {"--quiet", "sample", "--out", (tmp / "out").string()};
    args.insert(args.end(), flags.begin(), flags.end());
    auto result = test::run_dself(args);
    EXPECT_EQ(result.exit_code, 1) << flags[0] << ": " << result.output;
    EXPECT_NE(result.output.find(flags[flags.size() - 2]), std::string::npos) << result.output;
  }
  EXPECT_TRUE(directory_is_empty_or_absent(tmp / "out"));
}

TEST(SampleCli, PortraitThatIsNotAnImage) {
  test::TempDir tmp;
  write_file_atomic(tmp / "notes.jpg", "these are not pixels\n");
  auto result =
      test::run_dself({"--quiet", "sample", "--out", (tmp / "out").string(), "--face", (tmp / "notes.jpg").string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("notes.jpg"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("not an image"), std::string::npos) << result.output;
  EXPECT_TRUE(directory_is_empty_or_absent(tmp / "out"));
}

TEST(SampleCli, PortraitWithoutAFace) {
  test::TempDir tmp;
  auto result = test::run_dself({"--quiet", "sample", "--out", (tmp / "out").string(), "--face", kLogo});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("found no face"), std::string::npos) << result.output;
  EXPECT_TRUE(directory_is_empty_or_absent(tmp / "out"));
}

TEST(SampleCli, PortraitWithTwoFaces) {
  test::TempDir tmp;
  cv::Mat one = cv::imread(kGraceHopper);
  ASSERT_FALSE(one.empty());
  cv::Mat two;
  cv::hconcat(one, one, two);
  ASSERT_TRUE(cv::imwrite((tmp / "two.png").string(), two));
  auto result =
      test::run_dself({"--quiet", "sample", "--out", (tmp / "out").string(), "--face", (tmp / "two.png").string()});
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("found 2 faces"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("exactly one"), std::string::npos) << result.output;
  EXPECT_TRUE(directory_is_empty_or_absent(tmp / "out"));
}

// ---- determinism ---------------------------------------------------------------------------

TEST(SampleDeterminism, SameSeedSameTruthAndCaptionsOtherSeedOtherPerson) {
  test::TempDir tmp;
  auto make = [&](const std::string& name, const std::string& seed) {
    auto result = test::run_dself({"--quiet", "sample", "--out", (tmp / name).string(), "--minutes", "0.1", "--videos",
                                   "1", "--size", "256", "--seed", seed});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    return std::pair{read_file(tmp / name / "video_000.truth.json"), read_file(tmp / name / "video_000.en.vtt")};
  };
  auto first = make("a", "3");
  auto again = make("b", "3");
  auto other = make("c", "4");
  EXPECT_TRUE(first.first == again.first) << "truth JSON differs for the same seed";
  EXPECT_TRUE(first.second == again.second) << "captions differ for the same seed";
  EXPECT_EQ(read_file(tmp / "a" / "sample.json"), read_file(tmp / "b" / "sample.json"));
  EXPECT_TRUE(first.first != other.first) << "another seed made the same person";
}

}  // namespace
}  // namespace dself
