// The portrait the sample person is made from: its one face found, and the picture framed so
// that the face fills about half of the frame's width.
#pragma once

#include <array>
#include <filesystem>
#include <opencv2/core.hpp>
#include <vector>

#include "face/face.h"

namespace dself::sample {

using Landmarks = std::array<cv::Point2f, face::kLandmarkCount>;

// The frame is cut from a larger canvas so that small head motion never shows an edge.
struct Portrait {
  cv::Mat canvas;              // 8-bit BGR, (size + 2 * margin) pixels square
  int size = 0;                // output frame width = height
  int margin = 0;              // canvas pixels around the frame on each side
  double face_fraction = 0;    // jaw width (points 0-16) / frame width
  Landmarks rest;              // dlib's landmarks of the face in the frame at rest, canvas pixels
  double inter_ocular_px = 0;  // of `rest`
};

// Reads the image. Throws InputError naming --face when it is missing or not an image.
cv::Mat read_portrait(const std::filesystem::path& path);

// The portrait framed at several face sizes (jaw 44-56% of the frame's width), each with dlib's
// own landmarks of the face in the frame. Framings where dlib loses the face, or finds it far
// from where the portrait has it, are left out. Throws InputError when the image has no face
// or several (saying how many and what to do), or no framing keeps it.
std::vector<Portrait> frame_portrait(const cv::Mat& image, const std::filesystem::path& path, int size,
                                     const face::FaceDetector& detector);

}  // namespace dself::sample
