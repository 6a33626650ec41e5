#include "face/detail/track_geometry.h"

#include <algorithm>
#include <cmath>

#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>

namespace dself::face::track {

float Similarity::scale() const { return std::hypot(a, b); }

Similarity Similarity::inverse() const {
  // (a, b) is s * (cos r, sin r); the inverse rotates by -r and scales by 1/s.
  float n = a * a + b * b;
  Similarity inv;
  inv.a = a / n;
  inv.b = -b / n;
  inv.tx = -(inv.a * tx - inv.b * ty);
  inv.ty = -(inv.b * tx + inv.a * ty);
  return inv;
}

namespace detail {

namespace {

constexpr float kCanonicalEyeX = 0.5f;    // eye midpoint, share of the canonical frame
constexpr float kCanonicalEyeY = 0.38f;
constexpr float kCanonicalIod = 0.28f;    // inter-ocular distance, share of the canonical frame
constexpr float kTemplateMouthY = 1.08f;  // mean face's mouth centre below the eyes, IODs

// Depth of the stable points (IODs, + away from the camera; outer eye corners at 0) for the
// head pose: the nose stands about 35 mm in front of the outer eye corners on an adult face
// with a 63 mm inter-ocular distance. ref: Farkas, "Anthropometry of the head and face" (1994).
constexpr std::array<float, kStablePoints.size()> kStableDepth = {-0.20f, -0.30f, -0.42f, -0.55f, -0.30f,
                                                                  -0.36f, -0.30f, 0.0f,   -0.15f, -0.15f, 0.0f};

}  // namespace

std::array<cv::Point2f, kStablePoints.size()> stable_template() {
  // Symmetrised mean of dlib's fits on frontal faces; eye centres (means of 36-41, 42-47) at
  // x = -0.5 and 0.5.
  return {{{0.0f, -0.05f},
           {0.0f, 0.14f},
           {0.0f, 0.33f},
           {0.0f, 0.52f},
           {-0.25f, 0.62f},
           {0.0f, 0.70f},
           {0.25f, 0.62f},
           {-0.68f, 0.02f},
           {-0.31f, 0.01f},
           {0.31f, 0.01f},
           {0.68f, 0.02f}}};
}

// ref: Umeyama 1991, "Least-squares estimation of transformation parameters between two point
// patterns", the 2-D similarity case in closed form.
Similarity fit_similarity(std::span<const cv::Point2f> src, std::span<const cv::Point2f> dst) {
  cv::Point2d ms(0, 0), md(0, 0);
  for (size_t i = 0; i < src.size(); ++i) ms += cv::Point2d(src[i]), md += cv::Point2d(dst[i]);
  ms *= 1.0 / static_cast<double>(src.size());
  md *= 1.0 / static_cast<double>(dst.size());
  double dot = 0, cross = 0, norm = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    cv::Point2d s = cv::Point2d(src[i]) - ms, d = cv::Point2d(dst[i]) - md;
    dot += s.x * d.x + s.y * d.y;
    cross += s.x * d.y - s.y * d.x;
    norm += s.x * s.x + s.y * s.y;
  }
  Similarity t;
  if (norm <= 0) return t;
  double a = dot / norm, b = cross / norm;
  t.a = static_cast<float>(a);
  t.b = static_cast<float>(b);
  t.tx = static_cast<float>(md.x - (a * ms.x - b * ms.y));
  t.ty = static_cast<float>(md.y - (b * ms.x + a * ms.y));
  return t;
}

std::array<cv::Point2f, kStablePoints.size()> stable_points(const Landmarks& points) {
  std::array<cv::Point2f, kStablePoints.size()> out;
  for (size_t i = 0; i < kStablePoints.size(); ++i) out[i] = points[kStablePoints[i]];
  return out;
}

Similarity to_canonical(const Landmarks& points, int size) {
  auto mean = stable_template();
  float s = static_cast<float>(size);
  for (auto& p : mean) p = {(kCanonicalEyeX + kCanonicalIod * p.x) * s, (kCanonicalEyeY + kCanonicalIod * p.y) * s};
  auto image = stable_points(points);
  return fit_similarity(image, mean);
}

double shape_residual_iod(const Landmarks& points) {
  auto mean = stable_template();
  auto image = stable_points(points);
  Similarity t = fit_similarity(mean, image);  // IOD units -> image pixels
  double iod = t.scale();
  if (iod <= 1e-3) return 1e9;
  double sum = 0;
  for (size_t i = 0; i < mean.size(); ++i) {
    cv::Point2f d = t.apply(mean[i]) - image[i];
    sum += d.x * d.x + d.y * d.y;
  }
  return std::sqrt(sum / static_cast<double>(mean.size())) / iod;
}

cv::Rect2f mouth_rect(int canonical_size, cv::Size crop_size) {
  float s = static_cast<float>(canonical_size);
  cv::Point2f centre(kCanonicalEyeX * s, (kCanonicalEyeY + kCanonicalIod * kTemplateMouthY) * s);
  return {centre.x - crop_size.width / 2.0f, centre.y - crop_size.height / 2.0f, static_cast<float>(crop_size.width),
          static_cast<float>(crop_size.height)};
}

float mouth_opening(const Landmarks& points, float iod_px) {
  return iod_px > 0 ? static_cast<float>(cv::norm(points[62] - points[66])) / iod_px : 0;
}

float mouth_width(const Landmarks& points, float iod_px) {
  return iod_px > 0 ? static_cast<float>(cv::norm(points[48] - points[54])) / iod_px : 0;
}

float eye_openness(const Landmarks& points) {
  // ref: Soukupová & Čech 2016, "Real-time eye blink detection using facial landmarks" (EAR).
  auto ear = [&](int o) {
    double lids = cv::norm(points[o + 1] - points[o + 5]) + cv::norm(points[o + 2] - points[o + 4]);
    return lids / (2 * cv::norm(points[o] - points[o + 3]) + 1e-6);
  };
  return static_cast<float>((ear(36) + ear(42)) / 2);
}

float blur_score(const cv::Mat& gray, const Similarity& to_canonical, int canonical_size) {
  int half = std::max(16, canonical_size / 2);
  Similarity t = to_canonical;
  float k = static_cast<float>(half) / static_cast<float>(canonical_size);
  t.a *= k, t.b *= k, t.tx *= k, t.ty *= k;
  cv::Mat aligned, laplacian;
  cv::warpAffine(gray, aligned, t.matrix(), cv::Size(half, half), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  // The inner face only (brows to chin, cheek to cheek): no background, no hair.
  cv::Rect inner(half / 5, half / 4, half * 3 / 5, half * 3 / 5);
  cv::Laplacian(aligned(inner), laplacian, CV_32F);
  cv::Scalar mean, stddev;
  cv::meanStdDev(laplacian, mean, stddev);
  return static_cast<float>(stddev[0] * stddev[0]);
}

HeadPose head_pose(const Landmarks& points, int width, int height) {
  auto mean = stable_template();
  std::vector<cv::Point3f> model;
  std::vector<cv::Point2f> image;
  for (size_t i = 0; i < kStablePoints.size(); ++i) {
    model.emplace_back(mean[i].x, mean[i].y, kStableDepth[i]);
    image.push_back(points[kStablePoints[i]]);
  }
  double focal = width;
  cv::Matx33d camera(focal, 0, width / 2.0, 0, focal, height / 2.0, 0, 0, 1);
  // Start from a face looking at the camera at the distance its size implies; without the guess
  // the solver can land on the mirrored pose behind the camera.
  Similarity t = fit_similarity(stable_template(), stable_points(points));
  double iod_px = std::max(1e-3f, t.scale());
  double z = focal / iod_px;
  cv::Vec3d rvec(0, 0, 0);
  cv::Vec3d tvec((t.tx - width / 2.0) / iod_px, (t.ty - height / 2.0) / iod_px, z);
  if (!cv::solvePnP(model, image, camera, cv::noArray(), rvec, tvec, true, cv::SOLVEPNP_ITERATIVE)) return {};
  cv::Matx33d rotation, r, q;
  cv::Rodrigues(rvec, rotation);
  cv::Vec3d euler = cv::RQDecomp3x3(rotation, r, q);  // degrees about x, y, z
  // Model axes: x right, y down, z away from the camera. A face turning to the image's right
  // rotates about -y (its nose, in front, moves right); tilting down rotates about +x.
  return {static_cast<float>(-euler[1]), static_cast<float>(euler[0]), static_cast<float>(euler[2])};
}

}  // namespace detail
}  // namespace dself::face::track
