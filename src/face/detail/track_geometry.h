// Face geometry shared by the face track's parts: the canonical face frame, similarity fits,
// mouth and eye measures, sharpness and head pose. Internal to dself_face.
#pragma once

#include <array>
#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "face/track.h"

namespace dself::face::track::detail {

// Landmarks that move with the head but not with speech, blinks or brows: the nose (27-31, 33,
// 35) and the eye corners (36, 39, 42, 45).
constexpr std::array<int, 11> kStablePoints = {27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45};

// The mean face's stable points in units of the inter-ocular distance, origin midway between
// the eye centres, x right, y down.
std::array<cv::Point2f, kStablePoints.size()> stable_template();

// Least-squares similarity taking src onto dst (same length, at least 2 points).
Similarity fit_similarity(std::span<const cv::Point2f> src, std::span<const cv::Point2f> dst);

// The stable points of a shape, in kStablePoints order.
std::array<cv::Point2f, kStablePoints.size()> stable_points(const Landmarks& points);

// Image -> canonical face frame of `size` pixels square: the mean face's eye midpoint at
// (0.5, 0.38) * size with an inter-ocular distance of 0.28 * size.
Similarity to_canonical(const Landmarks& points, int size);

// The mean face's stable points in image pixels as the shape's own stable points place it, and
// how far (RMS, in IODs) the shape's stable points lie from them: large for a degenerate fit.
double shape_residual_iod(const Landmarks& points);

// Where the mouth crop is cut from the canonical frame: a fixed rectangle centred on the mean
// face's mouth.
cv::Rect2f mouth_rect(int canonical_size, cv::Size crop_size);

float mouth_opening(const Landmarks& points, float iod_px);  // inner-lip gap (62-66) / IOD
float mouth_width(const Landmarks& points, float iod_px);    // mouth corners (48-54) / IOD
float eye_openness(const Landmarks& points);                 // eye aspect ratio, both eyes

// Variance of the Laplacian of the face, aligned to a half-size canonical frame first, so that
// the score does not depend on the face's size in the video.
float blur_score(const cv::Mat& gray, const Similarity& to_canonical, int canonical_size);

// Head pose by cv::solvePnP on a generic 3-D face and a pinhole camera (focal = image width).
HeadPose head_pose(const Landmarks& points, int width, int height);

}  // namespace dself::face::track::detail
