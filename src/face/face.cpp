#include "face/face.h"

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace dself::face {

struct FaceDetector::Models {
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  dlib::shape_predictor predictor;
};

namespace {

cv::Mat to_gray(const cv::Mat& image) {
  if (image.empty() || image.depth() != CV_8U) {
    throw InputError("face detection needs a non-empty 8-bit image");
  }
  if (image.channels() == 1) return image;
  cv::Mat gray;
  cv::cvtColor(image, gray, image.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  return gray;
}

FaceLandmarks fit_gray(dlib::shape_predictor& predictor, const cv::Mat& gray, const cv::Rect& box) {
  dlib::cv_image<unsigned char> image(gray);
  dlib::rectangle rect(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1);
  dlib::full_object_detection shape = predictor(image, rect);
  FaceLandmarks face;
  face.box = box;
  for (int i = 0; i < kLandmarkCount; ++i) {
    face.points[i] = cv::Point2f(static_cast<float>(shape.part(i).x()), static_cast<float>(shape.part(i).y()));
  }
  return face;
}

}  // namespace

std::filesystem::path default_predictor_path() { return "/usr/share/dlib/shape_predictor_68_face_landmarks.dat"; }

FaceDetector::FaceDetector(const std::filesystem::path& predictor) : models_(std::make_unique<Models>()) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(predictor, ec)) {
    throw EnvironmentError(
        fmt::format("the dlib 68-point face landmark model {} is missing: install Debian's libdlib-data "
                    "(apt-get install libdlib-data)",
                    predictor.string()));
  }
  try {
    dlib::deserialize(predictor.string()) >> models_->predictor;
  } catch (const std::exception& e) {
    throw EnvironmentError(fmt::format("cannot load the dlib face landmark model {}: {}; reinstall libdlib-data",
                                       predictor.string(), e.what()));
  }
  if (models_->predictor.num_parts() != kLandmarkCount) {
    throw EnvironmentError(
        fmt::format("{} predicts {} landmarks, not 68: use libdlib-data's "
                    "shape_predictor_68_face_landmarks.dat",
                    predictor.string(), models_->predictor.num_parts()));
  }
}

FaceDetector::~FaceDetector() = default;
FaceDetector::FaceDetector(FaceDetector&&) noexcept = default;
FaceDetector& FaceDetector::operator=(FaceDetector&&) noexcept = default;

std::vector<FaceLandmarks> FaceDetector::detect(const cv::Mat& image, const DetectOptions& options) const {
  cv::Mat gray = to_gray(image);
  cv::Mat small = gray;
  double scale = options.detect_scale > 0 ? options.detect_scale : 1.0;
  if (scale != 1.0) {
    cv::resize(gray, small, cv::Size(), scale, scale, scale < 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
  }
  dlib::array2d<unsigned char> upsampled;
  std::vector<dlib::rect_detection> detections;
  if (options.upsample_count > 0) {
    dlib::assign_image(upsampled, dlib::cv_image<unsigned char>(small));
    for (int i = 0; i < options.upsample_count; ++i) dlib::pyramid_up(upsampled);
    models_->detector(upsampled, detections, options.threshold);
  } else {
    models_->detector(dlib::cv_image<unsigned char>(small), detections, options.threshold);
  }
  // Boxes back into the full-resolution image.
  double to_full = 1.0 / (scale * std::pow(2.0, options.upsample_count));
  std::vector<FaceLandmarks> faces;
  for (const auto& detection : detections) {
    const dlib::rectangle& r = detection.rect;
    cv::Rect box(static_cast<int>(std::lround(r.left() * to_full)), static_cast<int>(std::lround(r.top() * to_full)),
                 static_cast<int>(std::lround(r.width() * to_full)),
                 static_cast<int>(std::lround(r.height() * to_full)));
    FaceLandmarks face = fit_gray(models_->predictor, gray, box);
    face.score = detection.detection_confidence;
    faces.push_back(face);
  }
  std::stable_sort(faces.begin(), faces.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  return faces;
}

FaceLandmarks FaceDetector::fit(const cv::Mat& image, const cv::Rect& box) const {
  return fit_gray(models_->predictor, to_gray(image), box);
}

cv::Point2f centroid(std::span<const cv::Point2f> points, int first, int end) {
  cv::Point2f sum(0, 0);
  for (int i = first; i < end; ++i) sum += points[i];
  return sum * (1.0f / static_cast<float>(end - first));
}

double inter_ocular_distance(std::span<const cv::Point2f> points) {
  cv::Point2f d = centroid(points, 36, 42) - centroid(points, 42, 48);
  return std::hypot(d.x, d.y);
}

}  // namespace dself::face
