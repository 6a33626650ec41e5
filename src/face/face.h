// Faces: dlib's HOG frontal face detector and its 68-point shape predictor (iBUG 300-W layout:
// jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, outer lips 48-59, inner lips 60-67).
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <opencv2/core.hpp>
#include <span>
#include <vector>

namespace dself::face {

constexpr int kLandmarkCount = 68;

// One face: its 68 landmarks and the detector's box, in the pixels of the image given.
struct FaceLandmarks {
  std::array<cv::Point2f, kLandmarkCount> points;
  cv::Rect box;
  double score = 0;  // detector confidence (HOG SVM margin); higher is surer
};

struct DetectOptions {
  double detect_scale = 1.0;  // find boxes on the image resized by this factor (0.5: 4x faster);
                              // landmarks are always fitted at full resolution
  int upsample_count = 0;     // times the detector doubles the image first (finds smaller faces)
  double threshold = 0.0;     // detector score threshold; lower finds more (and falser) faces
};

// Where Debian's libdlib-data installs the 68-point model.
std::filesystem::path default_predictor_path();

// Loads the detector and the shape predictor once; detect() and fit() may then be called on
// many images. Not safe to share between threads (dlib's detector keeps scratch buffers).
class FaceDetector {
 public:
  // Throws EnvironmentError when the predictor file is missing or unreadable.
  explicit FaceDetector(const std::filesystem::path& predictor = default_predictor_path());
  ~FaceDetector();
  FaceDetector(FaceDetector&&) noexcept;
  FaceDetector& operator=(FaceDetector&&) noexcept;

  // All frontal faces in an 8-bit BGR (or gray) image, best score first.
  std::vector<FaceLandmarks> detect(const cv::Mat& image, const DetectOptions& options = {}) const;

  // The 68 landmarks of the face inside `box` (e.g. a box tracked from the previous frame).
  FaceLandmarks fit(const cv::Mat& image, const cv::Rect& box) const;

 private:
  struct Models;
  std::unique_ptr<Models> models_;
};

// Distance between the eye centres (means of points 36-41 and 42-47): the unit in which
// landmark errors are given (DESIGN.md §4).
double inter_ocular_distance(std::span<const cv::Point2f> points);

// Mean of a range of landmarks, e.g. an eye: centroid(points, 36, 42).
cv::Point2f centroid(std::span<const cv::Point2f> points, int first, int end);

}  // namespace dself::face
