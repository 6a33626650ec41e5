// The photoreal renderer on the prepared sample person: frames in which dlib finds the commanded
// mouth, real teeth and shadow when the mouth opens, a crop choice that holds still, the crop
// library kept and reused, and clear errors on an unprepared avatar.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "face/face_track.h"
#include "render/detail/model.h"
#include "render/render.h"
#include "support.h"

namespace dself::render {
namespace {

// A writable copy of the prepared avatar and the model loaded from it, shared by the suite.
struct Shared {
  test::TempDir dir;
  std::filesystem::path avatar = test::copy_avatar(dir.path());
  std::shared_ptr<const PhotorealModel> model = load_photoreal_model(avatar);
};

Shared& shared() {
  static Shared s;
  return s;
}

// The person's own tracked faces, as canonical poses (mouth, jaw and eyes as they really moved).
std::vector<motion::FacePose> tracked_poses(int count) {
  face::FaceTrack track = face::read_landmarks(test::prepared_avatar_dir() / "faces" / "1" / "landmarks.bin");
  std::vector<motion::FacePose> poses;
  size_t step = std::max<size_t>(1, track.frames.size() / static_cast<size_t>(count));
  for (size_t i = 0; i < track.frames.size() && static_cast<int>(poses.size()) < count; i += step) {
    const face::TrackedFrame& f = track.frames[i];
    if (!(f.flags & face::kFaceFound)) continue;
    motion::FacePose pose;
    for (int k = 0; k < face::kLandmarkCount; ++k) pose.points[k] = apply(to_matrix(f.to_canonical), f.points[k]);
    poses.push_back(pose);
  }
  return poses;
}

const motion::FacePose& most_open(const std::vector<motion::FacePose>& poses, bool open) {
  size_t best = 0;
  for (size_t i = 1; i < poses.size(); ++i) {
    bool better = mouth_opening(poses[i].points) > mouth_opening(poses[best].points);
    if (better == open) best = i;
  }
  return poses[best];
}

TEST(Render, FramesHaveTheSizeAskedAndTheFaceWhereCommanded) {
  std::unique_ptr<Renderer> renderer = make_photoreal_renderer(shared().model);
  EXPECT_EQ(renderer->name(), "photoreal");
  ASSERT_EQ(renderer->frame_size(), cv::Size(512, 512));
  motion::FacePose pose = tracked_poses(1).front();
  pose.head.roll_deg = 4, pose.head.shift_x = 6;
  const cv::Mat& frame = renderer->render(pose);
  EXPECT_EQ(frame.size(), cv::Size(512, 512));
  EXPECT_EQ(frame.type(), CV_8UC3);
  Landmarks at = renderer->frame_landmarks(pose);
  for (const cv::Point2f& p : at) EXPECT_TRUE(cv::Rect(0, 0, 512, 512).contains(p));
}

TEST(Render, RedetectedMouthFollowsTheCommandedOne) {
  std::unique_ptr<Renderer> renderer = make_photoreal_renderer(shared().model);
  std::vector<motion::FacePose> poses = tracked_poses(40);
  std::mt19937 random(3);
  std::uniform_real_distribution<float> jitter(-1.5f, 1.5f);
  for (size_t i = 0; i < poses.size(); ++i) {  // some head motion too
    poses[i].head.roll_deg = jitter(random), poses[i].head.shift_x = 2 * jitter(random);
    poses[i].head.scale = 1 + 0.01f * jitter(random);
  }
  nlohmann::json figures = evaluate_lip_sync(*renderer, poses);
  SCOPED_TRACE(figures.dump());
  EXPECT_EQ(figures["face_found_share"].get<double>(), 1.0);
  EXPECT_LE(figures["mouth_error_iod_pct"].get<double>(), 5.0);
  EXPECT_GE(figures["opening_correlation"].get<double>(), 0.8);
}

// Shadow and teeth inside the lips: pixels much darker or much brighter (and less saturated) than the lips.
int mouth_inside_pixels(const cv::Mat& frame, const Landmarks& p) {
  std::vector<cv::Point> hull;
  for (int i = 60; i < 68; ++i) hull.emplace_back(cvRound(p[i].x), cvRound(p[i].y));
  cv::Mat mask = cv::Mat::zeros(frame.size(), CV_8U);
  cv::fillConvexPoly(mask, hull, cv::Scalar(255));
  cv::Mat hsv;
  cv::cvtColor(frame, hsv, cv::COLOR_BGR2HSV);
  int count = 0;
  for (int y = 0; y < frame.rows; ++y) {
    for (int x = 0; x < frame.cols; ++x) {
      if (!mask.at<uint8_t>(y, x)) continue;
      const cv::Vec3b& v = hsv.at<cv::Vec3b>(y, x);
      if (v[2] < 70 || (v[2] > 150 && v[1] < 90)) ++count;
    }
  }
  return count;
}

TEST(Render, AnOpenMouthShowsItsInsideFromRealCrops) {
  std::unique_ptr<Renderer> renderer = make_photoreal_renderer(shared().model);
  std::vector<motion::FacePose> poses = tracked_poses(200);
  const motion::FacePose& open = most_open(poses, true);
  const motion::FacePose& closed = most_open(poses, false);
  ASSERT_GT(mouth_opening(open.points), mouth_opening(closed.points) + 0.1);
  int open_pixels = mouth_inside_pixels(renderer->render(open), renderer->frame_landmarks(open));
  renderer->reset();
  int closed_pixels = mouth_inside_pixels(renderer->render(closed), renderer->frame_landmarks(closed));
  EXPECT_GT(open_pixels, 4 * closed_pixels + 50) << "open " << open_pixels << ", closed " << closed_pixels;
}

TEST(Render, TheCropChoiceHoldsStillOnASteadyTarget) {
  std::unique_ptr<Renderer> renderer = make_photoreal_renderer(shared().model);
  motion::FacePose pose = tracked_poses(10)[5];
  std::mt19937 random(5);
  std::normal_distribution<float> noise(0, 0.3f);  // a third of a canonical pixel: tracker noise
  renderer->render(pose);
  int first = current_mouth_crop(*renderer);
  ASSERT_GE(first, 0);
  int switches = 0, previous = first;
  for (int i = 0; i < 50; ++i) {
    motion::FacePose jittered = pose;
    for (int k = 48; k < 68; ++k) jittered.points[k] += cv::Point2f(noise(random), noise(random));
    renderer->render(jittered);
    switches += current_mouth_crop(*renderer) != previous;
    previous = current_mouth_crop(*renderer);
  }
  EXPECT_EQ(switches, 0);
  // And the very same pose gives the very same frame.
  renderer->reset();
  cv::Mat a = renderer->render(pose).clone();
  cv::Mat b = renderer->render(pose).clone();
  EXPECT_EQ(cv::norm(a, b, cv::NORM_INF), 0);
}

TEST(Render, TheLibraryIsKeptAndReused) {
  const std::filesystem::path json = shared().avatar / "models" / "render" / "model.json";
  ASSERT_TRUE(std::filesystem::exists(json));
  EXPECT_TRUE(std::filesystem::exists(json.parent_path() / "reference.png"));
  EXPECT_TRUE(std::filesystem::exists(json.parent_path() / "mouths.jpg"));
  auto written = std::filesystem::last_write_time(json);
  // How long a load takes is bench_render's figure ("load s"); here, that it read the library back.
  auto again = load_photoreal_model(shared().avatar);
  EXPECT_EQ(std::filesystem::last_write_time(json), written) << "a second load rebuilt the library";
  EXPECT_EQ(describe(*again).dump(), describe(*shared().model).dump());
  nlohmann::json d = describe(*again);
  EXPECT_GT(d["mouth_crops"].get<int>(), 20);
  // Other options are another library: it is built again.
  PhotorealOptions smaller;
  smaller.size = 256;
  auto other = load_photoreal_model(shared().avatar, smaller);
  EXPECT_EQ(describe(*other)["size"], 256);
  EXPECT_NE(std::filesystem::last_write_time(json), written);
}

TEST(Render, AnUnpreparedAvatarIsRefusedWithWhatToRun) {
  test::TempDir dir;
  try {
    load_photoreal_model(dir.path());
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dself prepare"), std::string::npos) << e.what();
  }
  std::filesystem::path avatar = test::copy_avatar(dir.path());
  std::filesystem::remove_all(avatar / "faces");
  try {
    load_photoreal_model(avatar);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dself prepare"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace dself::render
