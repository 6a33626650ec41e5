#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "face/detail/track_geometry.h"
#include "face/detail/track_select.h"

namespace dself::face::track::detail {

namespace {

// Only frames good enough to show: the person, big enough, frontal and sharp.
bool presentable(const FrameTrack& frame) {
  return (frame.flags & (kFaceFound | kSmall | kNotFrontal | kBlurry)) == kFaceFound;
}

// Mouth bins: the inner-lip gap in steps of 0.05 IOD (closed to wide open, 8 bins), and the
// mouth's width in steps of 0.08 IOD around a typical 0.85 IOD (rounded to spread, 6 bins).
constexpr float kOpeningStep = 0.05f;
constexpr int kOpeningBins = 8;
constexpr float kWidthStep = 0.08f;
constexpr float kWidthCentre = 0.85f;
constexpr int kWidthBins = 6;

int mouth_bin(float opening, float width) {
  int o = std::clamp(static_cast<int>(opening / kOpeningStep), 0, kOpeningBins - 1);
  int w = std::clamp(static_cast<int>(std::floor((width - kWidthCentre) / kWidthStep)) + kWidthBins / 2, 0,
                     kWidthBins - 1);
  return o * kWidthBins + w;
}

}  // namespace

Similarity mouth_crop_transform(const Similarity& to_canonical, const TrackOptions& options) {
  cv::Rect2f rect = mouth_rect(options.canonical_size, options.mouth_crop_size);
  Similarity t = to_canonical;
  t.tx -= rect.x;
  t.ty -= rect.y;
  return t;
}

ReferencePicker::ReferencePicker(const TrackOptions& options, int64_t frame_count)
    : options_(options), frame_count_(std::max<int64_t>(frame_count, 1)) {}

void ReferencePicker::offer(int64_t index, const cv::Mat& bgr, const FrameTrack& frame, int segment) {
  if (!presentable(frame) || options_.reference_count <= 0) return;
  float opening = mouth_opening(frame.points, frame.iod_px);
  float eyes = eye_openness(frame.points);
  if (opening > options_.reference_max_opening || eyes < options_.reference_min_eyes) return;
  // Sharp, frontal and as closed-mouthed as can be.
  double frontal = 1 - (std::abs(frame.pose.yaw_deg) + std::abs(frame.pose.pitch_deg)) / 90.0;
  double closed = 1 - opening / std::max(1e-3, options_.reference_max_opening) * 0.5;
  double score = std::log1p(frame.blur_score) * frontal * closed;
  // Frames past the estimated count (a container that undercounts) join the last part.
  int64_t part = std::min<int64_t>(options_.reference_count - 1, index * options_.reference_count / frame_count_);
  auto found = best_.find(part);
  if (found != best_.end() && found->second.score >= score) return;
  Candidate c;
  c.frame.frame = index;
  c.frame.time_s = frame.time_s;
  c.frame.image = bgr.clone();
  c.frame.points = frame.points;
  c.frame.mouth_opening = opening;
  c.frame.eye_openness = eyes;
  c.frame.blur_score = frame.blur_score;
  c.score = score;
  c.segment = segment;
  best_[part] = std::move(c);
}

std::vector<ReferenceFrame> ReferencePicker::take(const std::vector<bool>& keep_segment) {
  std::vector<ReferenceFrame> out;
  for (auto& [part, c] : best_) {
    if (c.segment >= 0 && c.segment < static_cast<int>(keep_segment.size()) && keep_segment[c.segment]) {
      out.push_back(std::move(c.frame));
    }
  }
  best_.clear();
  return out;
}

MouthCollector::MouthCollector(const TrackOptions& options) : options_(options) {}

void MouthCollector::offer(int64_t index, const cv::Mat& bgr, const FrameTrack& frame, int segment) {
  if (!presentable(frame) || options_.max_mouth_crops <= 0 || options_.mouth_crops_per_bin <= 0) return;
  float opening = mouth_opening(frame.points, frame.iod_px);
  float width = mouth_width(frame.points, frame.iod_px);
  auto& bin = bins_[mouth_bin(opening, width)];
  // A bin keeps its sharpest crops; a full bin takes a new one only if it beats the worst.
  float score = frame.blur_score;
  if (static_cast<int>(bin.size()) >= options_.mouth_crops_per_bin && score <= bin.back().score) return;
  Candidate c;
  c.crop.frame = index;
  c.crop.time_s = frame.time_s;
  c.crop.to_crop = mouth_crop_transform(frame.to_canonical, options_);
  cv::warpAffine(bgr, c.crop.image, c.crop.to_crop.matrix(), options_.mouth_crop_size, cv::INTER_AREA,
                 cv::BORDER_REPLICATE);
  for (int k = 0; k < kLandmarkCount; ++k) c.crop.points[k] = c.crop.to_crop.apply(frame.points[k]);
  c.crop.opening = opening;
  c.crop.width = width;
  c.score = score;
  c.segment = segment;
  auto at = std::upper_bound(bin.begin(), bin.end(), score, [](float s, const Candidate& x) { return s > x.score; });
  bin.insert(at, std::move(c));
  if (static_cast<int>(bin.size()) > options_.mouth_crops_per_bin) bin.pop_back();
}

std::vector<MouthCrop> MouthCollector::take(const std::vector<bool>& keep_segment) {
  std::vector<std::vector<MouthCrop>> kept;
  size_t total = 0;
  for (auto& [key, bin] : bins_) {
    std::vector<MouthCrop> crops;
    for (auto& c : bin) {
      if (c.segment >= 0 && c.segment < static_cast<int>(keep_segment.size()) && keep_segment[c.segment]) {
        crops.push_back(std::move(c.crop));
      }
    }
    total += crops.size();
    if (!crops.empty()) kept.push_back(std::move(crops));
  }
  bins_.clear();
  // Over the cap: trim the fullest bins first, so that rare shapes keep theirs.
  auto cap = static_cast<size_t>(std::max(0, options_.max_mouth_crops));
  while (total > cap) {
    auto fullest = std::max_element(kept.begin(), kept.end(), [](const auto& x, const auto& y) { return x.size() < y.size(); });
    fullest->pop_back();
    --total;
  }
  std::vector<MouthCrop> out;
  for (auto& crops : kept) {
    for (auto& c : crops) out.push_back(std::move(c));
  }
  std::stable_sort(out.begin(), out.end(), [](const MouthCrop& x, const MouthCrop& y) { return x.opening < y.opening; });
  return out;
}

}  // namespace dself::face::track::detail
