// The face track (face/track.h) on the sample person, whose landmarks are known, and on a real
// video without a usable face.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "face/track.h"
#include "support.h"

namespace dself::face::track {
namespace {

std::vector<Landmarks> truth_landmarks(const std::filesystem::path& truth_json) {
  nlohmann::json truth = nlohmann::json::parse(read_file(truth_json));
  std::vector<Landmarks> out;
  for (const auto& frame : truth["landmarks"]) {
    Landmarks points;
    for (int k = 0; k < kLandmarkCount; ++k) points[k] = {frame[2 * k].get<float>(), frame[2 * k + 1].get<float>()};
    out.push_back(points);
  }
  return out;
}

// Mean distance to the commanded landmarks over the found frames, in % of the commanded IOD:
// all 68 points, and the mouth's (48-67) alone.
struct LandmarkError {
  double all = 0, mouth = 0;
};
LandmarkError landmark_error(const std::vector<FrameTrack>& frames, const std::vector<Landmarks>& truth) {
  LandmarkError e;
  int n = 0;
  for (size_t i = 0; i < frames.size() && i < truth.size(); ++i) {
    if (!(frames[i].flags & kFaceFound)) continue;
    double iod = inter_ocular_distance(truth[i]);
    double all = 0, mouth = 0;
    for (int k = 0; k < kLandmarkCount; ++k) {
      double d = cv::norm(frames[i].points[k] - truth[i][k]);
      all += d;
      if (k >= 48) mouth += d;
    }
    e.all += 100 * all / kLandmarkCount / iod;
    e.mouth += 100 * mouth / 20 / iod;
    ++n;
  }
  if (n) e.all /= n, e.mouth /= n;
  return e;
}

double opening(const Landmarks& p) { return cv::norm(p[62] - p[66]) / inter_ocular_distance(p); }

class SamplePerson : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    detector_ = new FaceDetector();
    truth_ = new std::vector<Landmarks>(truth_landmarks(test::sample_dir() / "video_000.truth.json"));
    track_ = new FaceTrack(track_faces(video(), *detector_));
  }
  static void TearDownTestSuite() {
    delete track_;
    delete truth_;
    delete detector_;
  }
  static std::filesystem::path video() { return test::sample_dir() / "video_000.mp4"; }

  static FaceDetector* detector_;
  static std::vector<Landmarks>* truth_;
  static FaceTrack* track_;
};
FaceDetector* SamplePerson::detector_ = nullptr;
std::vector<Landmarks>* SamplePerson::truth_ = nullptr;
FaceTrack* SamplePerson::track_ = nullptr;

TEST_F(SamplePerson, FindsTheFaceOnEveryFrameWithTheCommandedLandmarks) {
  const FaceTrack& track = *track_;
  ASSERT_EQ(track.frames.size(), truth_->size());
  EXPECT_EQ(track.width, 512);
  EXPECT_DOUBLE_EQ(track.fps, 25);
  EXPECT_GE(track.found_share(), 0.99);
  LandmarkError smoothed = landmark_error(track.frames, *truth_);

  // The same frames without smoothing: smoothing must lower the error, the mouth's included.
  TrackOptions raw_options;
  raw_options.smooth_radius = 0;
  raw_options.mouth_smooth_radius = 0;
  raw_options.head_smooth_radius = 0;
  raw_options.contour_smooth_radius = 0;
  FaceTrack raw = track_faces(video(), *detector_, raw_options);
  LandmarkError unsmoothed = landmark_error(raw.frames, *truth_);
  std::printf("face track: landmark error %.2f%% of IOD (mouth %.2f%%) smoothed, %.2f%% (mouth %.2f%%) raw\n",
              smoothed.all, smoothed.mouth, unsmoothed.all, unsmoothed.mouth);
  std::printf("face track: %zu frames in %.2f s (%.0f frames/s), %lld detector runs, %lld fits\n",
              track.frames.size(), track.stats.seconds, track.frames.size() / track.stats.seconds,
              static_cast<long long>(track.stats.detector_runs), static_cast<long long>(track.stats.fits));
  EXPECT_LT(smoothed.all, 3.0);
  EXPECT_LE(smoothed.all, unsmoothed.all);
  EXPECT_LT(smoothed.mouth, 4.0);

  // Tracking spares the detector: it runs on a few frames only.
  EXPECT_LT(track.stats.detector_runs, static_cast<int64_t>(track.frames.size()) / 5);
}

TEST_F(SamplePerson, HeadPoseIsNearFrontalAndRollFollowsTheHead) {
  double yaw = 0, pitch = 0, roll_error = 0;
  int n = 0;
  for (size_t i = 0; i < track_->frames.size(); ++i) {
    const FrameTrack& f = track_->frames[i];
    if (!(f.flags & kFaceFound)) continue;
    // The sample person only rolls (in the image plane): the eye line gives the true roll.
    cv::Point2f eyes = centroid((*truth_)[i], 42, 48) - centroid((*truth_)[i], 36, 42);
    double true_roll = std::atan2(eyes.y, eyes.x) * 180 / CV_PI;
    yaw += std::abs(f.pose.yaw_deg), pitch += std::abs(f.pose.pitch_deg);
    roll_error += std::abs(f.pose.roll_deg - true_roll);
    ++n;
    EXPECT_EQ(f.flags & kNotFrontal, 0u) << "frame " << i;
  }
  ASSERT_GT(n, 0);
  std::printf("head pose: mean |yaw| %.1f deg, |pitch| %.1f deg, roll error %.2f deg\n", yaw / n, pitch / n,
              roll_error / n);
  EXPECT_LT(yaw / n, 6);
  EXPECT_LT(pitch / n, 8);
  EXPECT_LT(roll_error / n, 1.5);
}

TEST_F(SamplePerson, ReferencesHaveClosedMouthsAndOpenEyes) {
  ASSERT_GE(track_->references.size(), 2u);
  int64_t last = -1;
  for (const ReferenceFrame& r : track_->references) {
    const Landmarks& truth = (*truth_)[r.frame];
    EXPECT_LT(opening(truth), 0.06) << "reference frame " << r.frame << " has its mouth open";
    EXPECT_GT(r.eye_openness, 0.2) << "reference frame " << r.frame << " has its eyes shut";
    EXPECT_EQ(r.image.size(), cv::Size(512, 512));
    EXPECT_GT(r.frame, last) << "references are in time order";
    last = r.frame;
  }
}

TEST_F(SamplePerson, MouthCropsCoverTheMouthShapesSpoken) {
  const auto& mouths = track_->mouths;
  ASSERT_FALSE(mouths.empty());
  EXPECT_LE(mouths.size(), 300u);
  // The widest opening the person makes (commanded), against the widest crop kept.
  std::vector<double> openings;
  for (const auto& p : *truth_) openings.push_back(opening(p));
  std::sort(openings.begin(), openings.end());
  double widest = openings[openings.size() * 98 / 100];
  float least = 1, most = 0;
  for (const MouthCrop& m : mouths) {
    least = std::min(least, m.opening), most = std::max(most, m.opening);
    EXPECT_EQ(m.image.size(), cv::Size(128, 96));
    // The lips lie inside the crop.
    for (int k = 48; k < 68; ++k) {
      EXPECT_TRUE(cv::Rect(0, 0, 128, 96).contains(cv::Point(m.points[k]))) << "frame " << m.frame << " point " << k;
    }
  }
  std::printf("mouth crops: %zu, openings %.3f..%.3f IOD (commanded 98th percentile %.3f)\n", mouths.size(), least,
              most, widest);
  EXPECT_LT(least, 0.03) << "no closed mouth among the crops";
  EXPECT_GT(most, 0.8 * widest) << "the crops miss the open mouth shapes";
  // Rare shapes are kept: the open half of the crops is not swamped by closed mouths.
  auto open = std::count_if(mouths.begin(), mouths.end(), [&](const MouthCrop& m) { return m.opening > widest / 2; });
  EXPECT_GT(open, static_cast<long>(mouths.size() / 5));
}

TEST_F(SamplePerson, WritesFilesThatReadBack) {
  test::TempDir dir;
  write_face_track(dir.path(), *track_);
  FaceTrack back = read_landmarks(dir / "landmarks.bin");
  EXPECT_EQ(back.width, track_->width);
  EXPECT_EQ(back.height, track_->height);
  EXPECT_DOUBLE_EQ(back.fps, track_->fps);
  ASSERT_EQ(back.frames.size(), track_->frames.size());
  for (size_t i = 0; i < back.frames.size(); ++i) {
    const FrameTrack& a = track_->frames[i];
    const FrameTrack& b = back.frames[i];
    ASSERT_EQ(a.time_s, b.time_s);
    ASSERT_EQ(a.flags, b.flags);
    for (int k = 0; k < kLandmarkCount; ++k) ASSERT_EQ(a.points[k], b.points[k]);
    ASSERT_EQ(a.pose.yaw_deg, b.pose.yaw_deg);
    ASSERT_EQ(a.pose.pitch_deg, b.pose.pitch_deg);
    ASSERT_EQ(a.pose.roll_deg, b.pose.roll_deg);
    ASSERT_EQ(a.to_canonical.a, b.to_canonical.a);
    ASSERT_EQ(a.to_canonical.ty, b.to_canonical.ty);
    ASSERT_EQ(a.iod_px, b.iod_px);
    ASSERT_EQ(a.blur_score, b.blur_score);
  }
  EXPECT_EQ(std::filesystem::file_size(dir / "landmarks.bin"), 64 + 592 * track_->frames.size());

  auto summary = nlohmann::json::parse(read_file(dir / "summary.json"));
  EXPECT_DOUBLE_EQ(summary["found_share"].get<double>(), track_->found_share());
  EXPECT_EQ(summary["frames"].get<size_t>(), track_->frames.size());

  auto references = nlohmann::json::parse(read_file(dir / "references.json"));
  ASSERT_EQ(references["references"].size(), track_->references.size());
  for (const auto& r : references["references"]) {
    cv::Mat image = cv::imread((dir.path() / r["file"].get<std::string>()).string());
    EXPECT_EQ(image.size(), cv::Size(512, 512));
    EXPECT_EQ(r["landmarks"].size(), 136u);
  }

  auto mouths = nlohmann::json::parse(read_file(dir / "mouths.json"));
  ASSERT_EQ(mouths["crops"].size(), track_->mouths.size());
  cv::Mat atlas = cv::imread((dir / "mouths.png").string());
  int rows = (static_cast<int>(track_->mouths.size()) + 15) / 16;
  EXPECT_EQ(atlas.size(), cv::Size(16 * 128, rows * 96));
  // A crop in the atlas is the crop kept.
  cv::Mat first = atlas(cv::Rect(0, 0, 128, 96));
  EXPECT_LT(cv::norm(first, track_->mouths[0].image, cv::NORM_INF), 1);
}

TEST(TrackFaces, RejectsFilesThatAreNotLandmarks) {
  test::TempDir dir;
  write_file_atomic(dir / "bad.bin", "not landmarks");
  EXPECT_THROW(read_landmarks(dir / "bad.bin"), InputError);
  FaceTrack empty;
  empty.fps = 25;
  empty.frames.resize(3);
  write_face_track(dir.path(), empty);
  std::string bytes = read_file(dir / "landmarks.bin");
  EXPECT_EQ(read_landmarks(dir / "landmarks.bin").frames.size(), 3u);
  write_file_atomic(dir / "short.bin", bytes.substr(0, bytes.size() - 10));
  EXPECT_THROW(read_landmarks(dir / "short.bin"), InputError);
  EXPECT_THROW(read_landmarks(dir / "missing.bin"), InputError);
}

TEST(TrackFaces, UnreadableVideoIsTheUsersError) {
  test::TempDir dir;
  write_file_atomic(dir / "video.mp4", "this is not a video");
  FaceDetector detector;
  EXPECT_THROW(track_faces(dir / "video.mp4", detector), InputError);
}

TEST(TrackFaces, RealVideoWithoutAUsableFaceFindsNone) {
  const std::filesystem::path vtest = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
  ASSERT_TRUE(std::filesystem::exists(vtest)) << "opencv-doc is not installed (make setup)";
  FaceDetector detector;
  int64_t last_done = 0;
  FaceTrack track = track_faces(vtest, detector, {}, [&](int64_t done, int64_t) { last_done = done; });
  EXPECT_EQ(track.frames.size(), 795u);
  EXPECT_EQ(last_done, 795);
  EXPECT_LT(track.found_share(), 0.02);
  EXPECT_TRUE(track.references.empty());
  int unflagged = 0;
  for (const FrameTrack& f : track.frames) unflagged += (f.flags & kFaceFound) ? 0 : 1;
  EXPECT_GT(unflagged, 780);
  std::printf("vtest.avi: %zu frames in %.2f s, %.1f%% found\n", track.frames.size(), track.stats.seconds,
              100 * track.found_share());

  test::TempDir dir;
  write_face_track(dir.path(), track);
  auto summary = nlohmann::json::parse(read_file(dir / "summary.json"));
  EXPECT_EQ(summary["frames"].get<int>(), 795);
  if (track.found_share() == 0) {
    EXPECT_TRUE(summary.contains("message"));
  }
  EXPECT_EQ(read_landmarks(dir / "landmarks.bin").frames.size(), 795u);
}

}  // namespace
}  // namespace dself::face::track
