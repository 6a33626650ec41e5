// Landmark smoothing for the face track. Offline, so every window is centred on its frame and
// nothing lags. The head's motion and the face's shape are smoothed apart: each frame's shape is
// taken into the mean face's frame by the similarity its stable points give, smoothed there per
// region (little at the lips, so lip sync keeps its timing; more at the jaw's sides and brows,
// where dlib's fits wander most and faces move least), and put back by the smoothed motion.
#include <cmath>
#include <vector>

#include "face/detail/track_geometry.h"
#include "face/track.h"

namespace dself::face::track {

namespace {

// Centred Gaussian weights, sigma = radius / 2, cut at the radius.
std::vector<double> kernel(int radius) {
  std::vector<double> w(2 * radius + 1);
  double sigma = std::max(0.5, radius / 2.0);
  for (int d = -radius; d <= radius; ++d) w[d + radius] = std::exp(-0.5 * d * d / (sigma * sigma));
  return w;
}

int radius_of(int point, const TrackOptions& options) {
  if (point >= 48 || (point >= 5 && point <= 11)) return options.mouth_smooth_radius;  // lips, chin
  if (point <= 16 || (point >= 17 && point <= 26)) return options.contour_smooth_radius;  // jaw, brows
  return options.smooth_radius;  // nose, eyes
}

// frames [begin, end) all have the face.
void smooth_run(std::vector<FrameTrack>& frames, int64_t begin, int64_t end, const TrackOptions& options) {
  const int64_t n = end - begin;
  std::vector<Similarity> to_image(n);
  std::vector<Landmarks> shape(n);
  for (int64_t i = 0; i < n; ++i) {
    const Landmarks& p = frames[begin + i].points;
    to_image[i] = detail::fit_similarity(detail::stable_template(), detail::stable_points(p));
    Similarity to_face = to_image[i].inverse();
    for (int k = 0; k < kLandmarkCount; ++k) shape[i][k] = to_face.apply(p[k]);
  }
  std::vector<double> head = kernel(std::max(0, options.head_smooth_radius));
  std::vector<std::vector<double>> kernels(kLandmarkCount);
  for (int k = 0; k < kLandmarkCount; ++k) kernels[k] = kernel(std::max(0, radius_of(k, options)));
  for (int64_t i = 0; i < n; ++i) {
    // The head's motion: a, b, tx, ty averaged (a point's image is linear in them).
    int r = static_cast<int>(head.size() / 2);
    double sum[4] = {0, 0, 0, 0}, weights = 0;
    for (int64_t j = std::max<int64_t>(0, i - r); j <= std::min(n - 1, i + r); ++j) {
      double w = head[j - i + r];
      sum[0] += w * to_image[j].a, sum[1] += w * to_image[j].b, sum[2] += w * to_image[j].tx, sum[3] += w * to_image[j].ty;
      weights += w;
    }
    Similarity motion;
    motion.a = static_cast<float>(sum[0] / weights), motion.b = static_cast<float>(sum[1] / weights);
    motion.tx = static_cast<float>(sum[2] / weights), motion.ty = static_cast<float>(sum[3] / weights);
    for (int k = 0; k < kLandmarkCount; ++k) {
      const std::vector<double>& w = kernels[k];
      int rk = static_cast<int>(w.size() / 2);
      cv::Point2d p(0, 0);
      double total = 0;
      for (int64_t j = std::max<int64_t>(0, i - rk); j <= std::min(n - 1, i + rk); ++j) {
        p += w[j - i + rk] * cv::Point2d(shape[j][k]);
        total += w[j - i + rk];
      }
      frames[begin + i].points[k] = motion.apply(cv::Point2f(p * (1.0 / total)));
    }
  }
}

}  // namespace

void smooth_landmarks(std::vector<FrameTrack>& frames, const TrackOptions& options) {
  auto n = static_cast<int64_t>(frames.size());
  for (int64_t begin = 0; begin < n;) {
    if (!(frames[begin].flags & kFaceFound)) {
      ++begin;
      continue;
    }
    int64_t end = begin;
    while (end < n && (frames[end].flags & kFaceFound)) ++end;
    smooth_run(frames, begin, end, options);
    begin = end;
  }
}

}  // namespace dself::face::track
