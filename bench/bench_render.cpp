// The photoreal renderer's speed on one core (the target: 50 fps at 512x512), at 256 and
// 512 pixels, on a prepared avatar: the person's own tracked mouth shapes with head motion.
// Prints a table; asserts nothing.
//   bench_render [AVATAR]   (default: $DSELF_AVATAR; a prepared avatar; its models/render/ is rebuilt)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "face/face_track.h"
#include "render/detail/model.h"
#include "render/render.h"

namespace {

using namespace dself;

std::vector<motion::FacePose> tracked_poses(const std::filesystem::path& avatar, int count) {
  std::vector<motion::FacePose> poses;
  for (const auto& entry : std::filesystem::directory_iterator(avatar / "faces")) {
    face::FaceTrack track = face::read_landmarks(entry.path() / "landmarks.bin");
    for (size_t i = 0; i < track.frames.size() && static_cast<int>(poses.size()) < count; ++i) {
      const face::TrackedFrame& f = track.frames[i];
      if (!(f.flags & face::kFaceFound)) continue;
      motion::FacePose pose;
      for (int k = 0; k < face::kLandmarkCount; ++k) pose.points[k] = render::apply(render::to_matrix(f.to_canonical), f.points[k]);
      double t = static_cast<double>(i) / 25;
      pose.head.roll_deg = static_cast<float>(2 * std::sin(t));
      pose.head.shift_x = static_cast<float>(3 * std::sin(0.7 * t));
      poses.push_back(pose);
    }
  }
  return poses;
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("DSELF_AVATAR");
  std::filesystem::path avatar = argc > 1 ? argv[1] : env ? env : "";
  if (avatar.empty() || !std::filesystem::exists(avatar / "faces")) {
    std::fprintf(stderr, "usage: bench_render AVATAR (a prepared avatar; or set DSELF_AVATAR)\n");
    return 1;
  }
  cv::setNumThreads(1);
  std::vector<motion::FacePose> poses = tracked_poses(avatar, 500);
  if (poses.empty()) {
    std::fprintf(stderr, "bench_render: no tracked face in %s\n", avatar.c_str());
    return 1;
  }
  std::printf("photoreal renderer, one core (cv::setNumThreads(1)), %zu frames of the person's own mouth shapes\n\n",
              poses.size());
  std::printf("%-6s %8s %8s %10s %10s %8s %8s\n", "size", "build s", "load s", "ms/frame", "fps", "crops", "target");
  for (int size : {256, 512}) {
    dself::render::PhotorealOptions options;
    options.size = size;
    std::filesystem::remove_all(avatar / "models" / "render");
    auto start = std::chrono::steady_clock::now();
    dself::render::load_photoreal_model(avatar, options);
    double build_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    start = std::chrono::steady_clock::now();
    auto model = dself::render::load_photoreal_model(avatar, options);
    double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    auto renderer = dself::render::make_photoreal_renderer(model);
    for (int i = 0; i < 10; ++i) renderer->render(poses[static_cast<size_t>(i) % poses.size()]);  // warm up
    renderer->reset();
    start = std::chrono::steady_clock::now();
    for (const auto& pose : poses) renderer->render(pose);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double fps = static_cast<double>(poses.size()) / s;
    std::printf("%-6d %8.2f %8.2f %10.2f %10.1f %8d %8s\n", size, build_s, load_s, 1000 * s / static_cast<double>(poses.size()), fps,
                dself::render::describe(*model)["mouth_crops"].get<int>(), size == 512 ? ">= 50" : "");
  }
  std::printf("\nbuild s: the library made from the videos and kept in models/render/; load s: read back from there.\n");
  return 0;
}
