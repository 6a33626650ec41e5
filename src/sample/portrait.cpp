#include "sample/detail/portrait.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>

#include "core/error.h"
#include "core/log.h"

namespace dself::sample {

namespace {

constexpr double kFaceCentreHeight = 0.45;  // where the landmarks' centre sits, / frame height
constexpr double kMarginFraction = 0.08;    // canvas beyond the frame on each side, / frame size
constexpr int kLargestDetectSide = 1200;    // larger portraits are searched at this size

std::vector<face::FaceLandmarks> find_faces(const cv::Mat& image, const face::FaceDetector& detector) {
  face::DetectOptions options;
  int longest = std::max(image.cols, image.rows);
  options.detect_scale = std::min(1.0, static_cast<double>(kLargestDetectSide) / longest);
  std::vector<face::FaceLandmarks> faces = detector.detect(image, options);
  if (faces.empty() && longest * options.detect_scale < 0.75 * kLargestDetectSide) {
    options.upsample_count = 1;  // small portraits: look for smaller faces too
    faces = detector.detect(image, options);
  }
  return faces;
}

face::FaceLandmarks find_one_face(const cv::Mat& image, const face::FaceDetector& detector,
                                  const std::filesystem::path& path) {
  std::vector<face::FaceLandmarks> faces = find_faces(image, detector);
  if (faces.empty()) {
    throw InputError(
        fmt::format("found no face in {} (--face): the sample person needs a portrait with one clearly visible, "
                    "upright, frontal face; give another image with --face",
                    path.string()));
  }
  if (faces.size() > 1) {
    throw InputError(
        fmt::format("found {} faces in {} (--face): the sample person needs a portrait of exactly one person; "
                    "crop the image to one face or give another with --face",
                    faces.size(), path.string()));
  }
  return faces.front();
}

// The portrait scaled so that the jaw is `face_fraction` of the frame's width, and the canvas
// cut around it (edges replicated where the portrait is too small); `face` moved along.
Portrait crop_around(const cv::Mat& image, face::FaceLandmarks& face, int size, double face_fraction) {
  Portrait portrait;
  portrait.size = size;
  portrait.face_fraction = face_fraction;
  portrait.margin = 2 * static_cast<int>(std::lround(kMarginFraction * size / 2));
  int side = size + 2 * portrait.margin;
  double jaw_width = cv::norm(face.points[0] - face.points[16]);
  double scale = face_fraction * size / std::max(jaw_width, 1.0);
  cv::Mat scaled;
  cv::resize(image, scaled, cv::Size(), scale, scale, scale < 1 ? cv::INTER_AREA : cv::INTER_CUBIC);
  cv::Point2f centre = face::centroid(face.points, 0, face::kLandmarkCount);
  // Whole-pixel shift: a copy, no second resampling. cv::resize maps pixel centres p to
  // (p + 0.5) * scale - 0.5.
  double shift_x = std::round(portrait.margin + 0.5 * size - (centre.x + 0.5) * scale + 0.5);
  double shift_y = std::round(portrait.margin + kFaceCentreHeight * size - (centre.y + 0.5) * scale + 0.5);
  cv::Matx23d shift(1, 0, shift_x, 0, 1, shift_y);
  cv::warpAffine(scaled, portrait.canvas, shift, cv::Size(side, side), cv::INTER_NEAREST, cv::BORDER_REPLICATE);
  for (cv::Point2f& p : face.points) {
    p = cv::Point2f(static_cast<float>((p.x + 0.5) * scale - 0.5 + shift_x),
                    static_cast<float>((p.y + 0.5) * scale - 0.5 + shift_y));
  }
  return portrait;
}

// dlib's landmarks of the face as it appears in the frame at rest, in canvas pixels.
std::optional<Landmarks> landmarks_in_frame(const Portrait& portrait, const face::FaceDetector& detector) {
  cv::Mat view = portrait.canvas(cv::Rect(portrait.margin, portrait.margin, portrait.size, portrait.size));
  std::vector<face::FaceLandmarks> faces = detector.detect(view);
  if (faces.empty()) return std::nullopt;
  cv::Point2f offset(static_cast<float>(portrait.margin), static_cast<float>(portrait.margin));
  Landmarks points;
  for (int i = 0; i < face::kLandmarkCount; ++i) points[i] = faces.front().points[i] + offset;
  return points;
}

// Mean distance between two sets of landmarks, in units of the first's inter-ocular distance.
double landmark_error(const Landmarks& a, const Landmarks& b) {
  double sum = 0;
  for (int i = 0; i < face::kLandmarkCount; ++i) sum += cv::norm(a[i] - b[i]);
  return sum / face::kLandmarkCount / face::inter_ocular_distance(a);
}

}  // namespace

cv::Mat read_portrait(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw InputError(fmt::format("cannot read the portrait {} (--face): no such file", path.string()));
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw InputError(fmt::format("cannot read the portrait {} (--face): not a file", path.string()));
  }
  cv::Mat image = cv::imread(path.string(), cv::IMREAD_COLOR);
  if (image.empty()) {
    throw InputError(
        fmt::format("{} (--face) is not an image OpenCV can read: give a JPEG or PNG portrait", path.string()));
  }
  return image;
}

std::vector<Portrait> frame_portrait(const cv::Mat& image, const std::filesystem::path& path, int size,
                                     const face::FaceDetector& detector) {
  constexpr double kFractions[] = {0.44, 0.46, 0.48, 0.50, 0.52, 0.54, 0.56};
  constexpr double kFarOff = 0.10;  // of the inter-ocular distance: dlib fitted another shape
  face::FaceLandmarks face = find_one_face(image, detector, path);
  std::vector<Portrait> framings;
  for (double fraction : kFractions) {
    face::FaceLandmarks moved = face;
    Portrait portrait = crop_around(image, moved, size, fraction);
    std::optional<Landmarks> seen = landmarks_in_frame(portrait, detector);
    if (!seen) continue;
    Landmarks expected;
    std::copy(moved.points.begin(), moved.points.end(), expected.begin());
    double error = landmark_error(expected, *seen);
    spdlog::debug(
        "sample: face at {:.0f}% of the frame width: dlib's landmarks {:.1f}% of the inter-ocular "
        "distance from the portrait's",
        100 * fraction, 100 * error);
    if (error > kFarOff) continue;
    portrait.rest = *seen;
    portrait.inter_ocular_px = face::inter_ocular_distance(*seen);
    framings.push_back(std::move(portrait));
  }
  if (framings.empty()) {
    throw InputError(
        fmt::format("dlib no longer finds the face in {} (--face) once it is framed at {} pixels: "
                    "try a larger --size or a sharper portrait",
                    path.string(), size));
  }
  return framings;
}

}  // namespace dself::sample
