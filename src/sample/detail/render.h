// Drawing the sample person: the portrait warped so that its landmarks move to a pose's.
#pragma once

#include <array>
#include <opencv2/core.hpp>
#include <vector>

#include "face/face.h"
#include "sample/detail/motion.h"
#include "sample/detail/portrait.h"

namespace dself::sample {

// Piecewise-affine warp on a fixed Delaunay triangulation of the rest landmarks plus a ring of
// fixed points around the face; the mouth's inside drawn where the lips part; then the head's
// motion as one affine warp of the whole canvas into the frame.
class Renderer {
 public:
  explicit Renderer(const Portrait& portrait);
  // The frame (size x size, 8-bit BGR) for a pose; valid until the next call.
  const cv::Mat& render(const Pose& pose);

 private:
  void warp_face(const Landmarks& face);
  void draw_mouth(const Landmarks& face);

  const Portrait& portrait_;
  std::vector<cv::Point2f> anchors_;           // the ring of fixed points
  std::vector<std::array<int, 3>> triangles_;  // indices: < 68 landmarks, then anchors_
  cv::Rect region_;                            // the part of the canvas the warp can change
  cv::Mat identity_x_, identity_y_;            // remap maps over region_ that change nothing
  cv::Mat map_x_, map_y_;
  cv::Mat canvas_;  // this frame's canvas
  cv::Mat frame_;
};

// The framing in which dlib follows the commanded landmarks best. Each is rendered in a few
// probe poses (mouth wide, spread, rounded; eyes shut; head turned and scaled as Motion moves
// it) and its landmarks found again: dlib's boxes come in discrete sizes and its landmarks
// drift with how the face fits the box, so at some face sizes small motions flip the box.
Portrait steadiest_framing(const std::vector<Portrait>& framings, const face::FaceDetector& detector);

}  // namespace dself::sample
