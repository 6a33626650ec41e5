#include "face/identity.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <opencv2/imgproc.hpp>

namespace dself::face {
namespace {

constexpr int kAlignedSize = 64;

// ref: Ojala, Pietikäinen & Mäenpää 2002, "Multiresolution gray-scale and rotation invariant
// texture classification with local binary patterns": the 58 patterns with at most two 0/1
// transitions around the circle get a bin each, all others share one.
const std::array<int, 256>& uniform_bins() {
  static const std::array<int, 256> table = [] {
    std::array<int, 256> t{};
    int next = 0;
    for (int code = 0; code < 256; ++code) {
      int transitions = 0;
      for (int bit = 0; bit < 8; ++bit) transitions += ((code >> bit) & 1) != ((code >> ((bit + 1) % 8)) & 1);
      t[code] = transitions <= 2 ? next++ : kLbpBins - 1;
    }
    return t;
  }();
  return table;
}

void normalise(float* values, int count) {
  double sum = 0;
  for (int i = 0; i < count; ++i) sum += static_cast<double>(values[i]) * values[i];
  if (sum <= 0) return;
  auto scale = static_cast<float>(1 / std::sqrt(sum));
  for (int i = 0; i < count; ++i) values[i] *= scale;
}

}  // namespace

std::vector<float> face_descriptor(const cv::Mat& bgr, const std::array<cv::Point2f, kLandmarkCount>& p) {
  // Align: eye centres and the nose tip to fixed places, as the canonical face frame does.
  const float s = kAlignedSize;
  cv::Point2f src[3] = {centroid(p, 36, 42), centroid(p, 42, 48), p[30]};
  cv::Point2f dst[3] = {{0.30f * s, 0.35f * s}, {0.70f * s, 0.35f * s}, {0.5f * s, 0.60f * s}};
  cv::Mat affine = cv::getAffineTransform(src, dst);
  cv::Mat aligned;
  cv::warpAffine(bgr, aligned, affine, cv::Size(kAlignedSize, kAlignedSize), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  cv::Mat gray;
  cv::cvtColor(aligned, gray, cv::COLOR_BGR2GRAY);
  cv::equalizeHist(gray, gray);  // lighting changes the level, not the texture

  std::vector<float> d(kDescriptorSize, 0.0f);
  const auto& bins = uniform_bins();
  const int cell = kAlignedSize / 4;
  static const int dy[8] = {-1, -1, -1, 0, 1, 1, 1, 0}, dx[8] = {-1, 0, 1, 1, 1, 0, -1, -1};
  for (int y = 1; y < kAlignedSize - 1; ++y) {
    for (int x = 1; x < kAlignedSize - 1; ++x) {
      uchar centre = gray.at<uchar>(y, x);
      int code = 0;
      for (int k = 0; k < 8; ++k) code |= (gray.at<uchar>(y + dy[k], x + dx[k]) >= centre) << k;
      int c = std::min(3, y / cell) * 4 + std::min(3, x / cell);
      d[c * kLbpBins + bins[code]] += 1;
    }
  }
  for (int c = 0; c < kGridCells; ++c) {
    float total = 0;
    for (int b = 0; b < kLbpBins; ++b) total += d[c * kLbpBins + b];
    // Square roots of the shares (the Hellinger kernel): frequent codes do not swamp rare ones.
    for (int b = 0; b < kLbpBins; ++b) d[c * kLbpBins + b] = total > 0 ? std::sqrt(d[c * kLbpBins + b] / total) : 0;
  }
  normalise(d.data(), kLbpBins * kGridCells);

  // Colour of the middle of the face (cheeks, nose, forehead): hue 8 x saturation 4.
  cv::Mat hsv;
  cv::cvtColor(aligned(cv::Rect(kAlignedSize / 4, kAlignedSize / 4, kAlignedSize / 2, kAlignedSize / 2)), hsv,
               cv::COLOR_BGR2HSV);
  float* colour = d.data() + kLbpBins * kGridCells;
  for (int y = 0; y < hsv.rows; ++y) {
    for (int x = 0; x < hsv.cols; ++x) {
      const cv::Vec3b& v = hsv.at<cv::Vec3b>(y, x);
      colour[std::min(7, v[0] * 8 / 180) * 4 + std::min(3, v[1] / 64)] += 1;
    }
  }
  for (int i = 0; i < kColourBins; ++i) colour[i] = std::sqrt(colour[i]);
  normalise(colour, kColourBins);
  for (int i = 0; i < kColourBins; ++i) colour[i] *= kColourWeight;
  return d;
}

float descriptor_distance(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
  if (aa <= 0 || bb <= 0) return 1;
  return static_cast<float>(1 - ab / std::sqrt(aa * bb));
}

std::vector<int> cluster_identities(const std::vector<TrackAppearance>& tracks, const ClusterOptions& options) {
  struct Group {
    std::vector<size_t> members;
    std::vector<double> sum;  // weighted sum of the members' descriptors
    std::vector<float> mean;
  };
  auto overlap = [&](size_t i, size_t j) {
    const auto &a = tracks[i], &b = tracks[j];
    return a.source == b.source && a.first_frame < b.end_frame && b.first_frame < a.end_frame;
  };
  std::vector<Group> groups;
  for (size_t i = 0; i < tracks.size(); ++i) {
    if (tracks[i].weight < options.min_frames || tracks[i].descriptor.empty()) continue;
    Group g{{i}, std::vector<double>(tracks[i].descriptor.size()), {}};
    for (size_t k = 0; k < g.sum.size(); ++k) g.sum[k] = tracks[i].descriptor[k] * static_cast<double>(tracks[i].weight);
    g.mean = tracks[i].descriptor;
    groups.push_back(std::move(g));
  }
  auto cannot_link = [&](const Group& a, const Group& b) {
    for (size_t i : a.members) {
      for (size_t j : b.members) {
        if (overlap(i, j)) return true;
      }
    }
    return false;
  };
  while (groups.size() > 1) {
    float best = std::numeric_limits<float>::max();
    size_t bi = 0, bj = 0;
    for (size_t i = 0; i < groups.size(); ++i) {
      for (size_t j = i + 1; j < groups.size(); ++j) {
        float d = descriptor_distance(groups[i].mean, groups[j].mean);
        if (d < best && !cannot_link(groups[i], groups[j])) best = d, bi = i, bj = j;
      }
    }
    if (best > options.max_distance) break;
    Group& a = groups[bi];
    Group& b = groups[bj];
    a.members.insert(a.members.end(), b.members.begin(), b.members.end());
    for (size_t k = 0; k < a.sum.size(); ++k) a.sum[k] += b.sum[k];
    a.mean.assign(a.sum.begin(), a.sum.end());
    groups.erase(groups.begin() + static_cast<std::ptrdiff_t>(bj));
  }
  std::vector<int> label(tracks.size(), -1);
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t i : groups[g].members) label[i] = static_cast<int>(g);
  }
  // Short tracks join the nearest group they do not contradict, if it is near enough.
  for (size_t i = 0; i < tracks.size(); ++i) {
    if (label[i] >= 0 || tracks[i].descriptor.empty()) continue;
    float best = options.max_distance;
    for (size_t g = 0; g < groups.size(); ++g) {
      bool clash = false;
      for (size_t j : groups[g].members) clash = clash || overlap(i, j);
      float d = descriptor_distance(tracks[i].descriptor, groups[g].mean);
      if (!clash && d <= best) best = d, label[i] = static_cast<int>(g);
    }
  }
  return label;
}

}  // namespace dself::face
