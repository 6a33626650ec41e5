// Who is who (issue 15): an appearance descriptor of a face, and faces grouped by identity.
// Why these features: docs/FACES.md, "Who is who".
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include <opencv2/core.hpp>

#include "face/face.h"

namespace dself::face {

// Uniform LBP (8 neighbours, radius 1: 58 uniform codes + 1 for the rest) in a 4 x 4 grid over
// the face aligned on its eyes and nose (64 px square), each cell's histogram normalised; then
// a hue-saturation histogram (8 x 4) of the face's middle; both halves L2-normalised and
// weighted (kColourWeight for the colour).
constexpr int kLbpBins = 59;
constexpr int kGridCells = 16;
constexpr int kColourBins = 32;
constexpr int kDescriptorSize = kLbpBins * kGridCells + kColourBins;
constexpr float kColourWeight = 0.5f;

// The descriptor of the face with these landmarks in an 8-bit BGR frame.
std::vector<float> face_descriptor(const cv::Mat& bgr, const std::array<cv::Point2f, kLandmarkCount>& points);

// 1 - cosine similarity of two descriptors (0: the same; about 0.1 for one person's frames,
// more than 0.25 between different people: docs/FACES.md).
float descriptor_distance(const std::vector<float>& a, const std::vector<float>& b);

// What clustering needs of a track.
struct TrackAppearance {
  std::vector<float> descriptor;  // mean over the track's sampled frames, normalised
  int64_t source = 0;             // tracks of one source that overlap in time are different people
  int64_t first_frame = 0;
  int64_t end_frame = 0;          // exclusive
  int64_t weight = 0;             // frames (bigger tracks pull the group's mean more)
};

struct ClusterOptions {
  float max_distance = 0.08f;  // groups whose means are farther apart stay apart
  int64_t min_frames = 10;     // shorter tracks do not start a group; they join the nearest one
};

// Groups tracks by identity (centroid-linkage agglomerative clustering, never joining two
// tracks seen at the same time in one source). Returns a group per track, 0..K-1, or -1 for a
// short track near no group.
std::vector<int> cluster_identities(const std::vector<TrackAppearance>& tracks, const ClusterOptions& options = {});

}  // namespace dself::face
